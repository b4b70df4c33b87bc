"""`ecgfusion train CONFIG` and `ecgfusion evaluate RUN_DIR`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ecgfusion.cli.common import console, writable_path
from ecgfusion.errors import ConfigError


def default_run_dir(config_path: Path) -> Path:
    return Path("runs") / f"{config_path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def _value_table(title: str, rows: list[tuple[str, float | None]]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, "n/a" if value is None else f"{value:.4f}")
    return table


def _metrics_table(title: str, metrics: dict[str, Any]) -> Table:
    from ecgfusion.evaluation.metrics import METRIC_NAMES, headline

    return _value_table(title, [(METRIC_NAMES[k], v) for k, v in headline(metrics).items()])


def _summary_table(summary: dict[str, Any], records: bool) -> Table:
    from ecgfusion.evaluation.metrics import METRIC_NAMES
    from ecgfusion.evaluation.multilabel import RECORD_HEADLINE

    names = dict(RECORD_HEADLINE) if records else METRIC_NAMES
    table = Table(title=f"{summary['model']} — {summary['data']['split_label']}")
    table.add_column("metric")
    table.add_column(f"mean ± std ({len(summary['seeds'])} seeds)", justify="right")
    for key, ms in summary["metrics"].items():
        table.add_row(names[key], f"{ms['mean']:.4f} ± {ms['std']:.4f}")
    return table


def _records_table(title: str, metrics: dict[str, Any]) -> Table:
    from ecgfusion.evaluation.multilabel import record_headline

    thresholds = [(f"threshold {k} (from validation)", v) for k, v in metrics["thresholds"].items()]
    return _value_table(title, [*record_headline(metrics), *thresholds])


def _result_table(title: str, metrics: dict[str, Any], records: bool) -> Table:
    return _records_table(title, metrics) if records else _metrics_table(title, metrics)


def _is_record_config(cfg: Any) -> bool:
    from ecgfusion.training.config import RECORD_DATASETS

    return cfg.data.dataset in RECORD_DATASETS


def _check_run_files(run_dir: Path, cfg: Any) -> None:
    """Read each model.pt and metrics.json of a run before its test part is loaded: a corrupt or
    truncated file is one error line now, not a traceback after the scoring."""
    from ecgfusion.evaluation.report import METRICS_FILE, read_metrics
    from ecgfusion.models.io import read_model_file
    from ecgfusion.training.rundir import MODEL_FILE, seed_dir

    folders = [seed_dir(run_dir, s) for s in cfg.seeds] if cfg.seeds else [run_dir]
    for folder in folders:
        if (folder / MODEL_FILE).is_file():
            read_model_file(folder / MODEL_FILE)
        if (folder / METRICS_FILE).is_file():
            read_metrics(folder)


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_command(
        config: Annotated[
            Path | None, typer.Argument(help="Run config YAML (see configs/).", show_default=False)
        ] = None,
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", help="Override a config key: --set optim.lr=1e-3 (repeatable)."),
        ] = None,
        run_dir: Annotated[
            Path | None,
            typer.Option("--run-dir", help="Run folder (default: runs/<config>-<timestamp>)."),
        ] = None,
        resume: Annotated[
            Path | None,
            typer.Option("--resume", help="Continue the run in this folder from its last epoch."),
        ] = None,
        runs: Annotated[
            int | None,
            typer.Option("--runs", min=1, help="Repeat over N seeds (trainer.seed, +1, ...)."),
        ] = None,
    ) -> None:
        """Train a model from a run config and write metrics, report and plots to the run folder."""
        from ecgfusion.training.config import CONFIG_FILE, load_config
        from ecgfusion.training.trainer import train

        if resume is not None:
            if config is not None or run_dir is not None or runs is not None:
                raise ConfigError(
                    "--resume RUN_DIR reads the run's own config.yaml; do not also give CONFIG, "
                    "--run-dir or --runs"
                )
            if not resume.is_dir():
                raise ConfigError(f"--resume {resume}: run folder does not exist")
            cfg = load_config(resume / CONFIG_FILE, set_ or [])
            target = resume
        else:
            if config is None:
                raise ConfigError("give a run config (e.g. configs/cnn_2d_mitdb.yaml) or --resume")
            cfg = load_config(config, set_ or [])
            if runs is not None:
                cfg.seeds = [cfg.trainer.seed + i for i in range(runs)]
            target = writable_path(run_dir or default_run_dir(config), "--run-dir")
        console.print(f"run folder: {target}")
        records = _is_record_config(cfg)
        result = train(cfg, target, resume=resume is not None)
        if "summary" in result:
            console.print(_summary_table(result["summary"], records))
            console.print(f"wrote {target / 'summary.md'} and one folder per seed")
            return
        data, timing = result["data"], result["timing"]
        what = f"{cfg.model.name} ({data['task']})" if records else cfg.model.name
        console.print(_result_table(f"{what} — {data['split_label']}", result["metrics"], records))
        if records:
            console.print(data["note"], soft_wrap=True)
        speed = "records" if records else f"beats at {timing['test_samples_per_second']} beats/s"
        console.print(
            f"trained {timing['epochs_trained']} epoch(s) in {timing['train_seconds']:.1f} s; "
            f"test {result['metrics']['n']} {speed} on {timing['device']}"
        )
        console.print(f"wrote {target / 'metrics.json'}, report.md, plots and model.pt")

    @app.command("evaluate")
    def evaluate_command(
        run_dir: Annotated[
            Path | None, typer.Argument(help="A run folder written by `ecgfusion train`.")
        ] = None,
        pretrained: Annotated[
            str | None,
            typer.Option(help="A shipped pretrained model instead (see src/ecgfusion/pretrained)."),
        ] = None,
    ) -> None:
        """Recompute a run's test metrics from its model.pt and check them against metrics.json."""
        from ecgfusion.inference.loading import resolve_run_dir
        from ecgfusion.training.config import CONFIG_FILE, load_config
        from ecgfusion.training.rundir import seed_dir
        from ecgfusion.training.scoring import METRICS_TOLERANCE
        from ecgfusion.training.trainer import evaluate

        if pretrained is not None or run_dir is None:
            run_dir = resolve_run_dir(run_dir, pretrained)

        config_file = run_dir / CONFIG_FILE
        cfg = load_config(config_file) if config_file.is_file() else None
        if cfg is not None:
            _check_run_files(run_dir, cfg)
        records = cfg is not None and _is_record_config(cfg)
        result = evaluate(run_dir)
        runs = result.get("runs", {None: result})
        failed = []
        for seed, res in runs.items():
            where = run_dir if seed is None else seed_dir(run_dir, seed)
            console.print(_result_table(f"{where} — {res['split_label']}", res["metrics"], records))
            if "note" in res:
                console.print(res["note"], soft_wrap=True)
            if res["reproduced"] is None:
                console.print("no metrics.json to compare with")
            elif res["difference"] == 0:
                console.print("reproduces metrics.json exactly")
            elif res["reproduced"]:
                console.print(
                    f"reproduces metrics.json within {METRICS_TOLERANCE:g} (largest difference "
                    f"{res['difference']:.2g})"
                )
            else:
                failed.append(str(where))
        if failed:
            console.print(f"[red]differs from metrics.json:[/red] {', '.join(failed)}")
            raise typer.Exit(1)
