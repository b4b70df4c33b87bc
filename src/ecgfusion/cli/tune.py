"""`ecgfusion tune CONFIG --space SPACE --trials N`: an Optuna study of a config's recipe."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ecgfusion.cli.common import console, positive_finite, writable_path
from ecgfusion.errors import ConfigError


def default_study_dir(config_path: Path) -> Path:
    return Path("runs") / f"tune-{config_path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def _command_line(
    config: Path,
    space: Path,
    trials: int,
    timeout: float | None,
    run_dir: Path,
    set_: list[str],
    seed: int | None,
) -> str:
    args = ["ecgfusion", "tune", str(config), "--space", str(space), "--trials", str(trials)]
    if timeout is not None:
        args += ["--timeout", f"{timeout:g}"]
    args += ["--run-dir", str(run_dir)]
    for item in set_:
        args += ["--set", item]
    if seed is not None:
        args += ["--seed", str(seed)]
    return shlex.join(args)


def _results_table(title: str, result: dict[str, Any]) -> Table:
    from ecgfusion.experiments.tune_results import format_cell

    table = Table(title=title)
    columns = result["columns"]
    for column in columns:
        numeric = column not in ("state",)
        table.add_column(column, justify="right" if numeric else "left")
    best = (result["best"] or {}).get("trial")
    for row in result["rows"]:
        style = "bold green" if row["trial"] == best else None
        table.add_row(*(format_cell(row[c], c) for c in columns), style=style)
    return table


def register(app: typer.Typer) -> None:
    @app.command("tune")
    def tune_command(
        config: Annotated[
            Path | None,
            typer.Argument(help="Base run config YAML (see configs/).", show_default=False),
        ] = None,
        space: Annotated[
            Path | None,
            typer.Option("--space", help="Search-space YAML (see configs/search/)."),
        ] = None,
        trials: Annotated[
            int | None,
            typer.Option(
                "--trials",
                help="Finished trials the study should hold (earlier runs in --run-dir count).",
            ),
        ] = None,
        timeout: Annotated[
            float | None,
            typer.Option(
                "--timeout",
                help="Start no new trial after this many seconds.",
                callback=positive_finite("3600"),
            ),
        ] = None,
        run_dir: Annotated[
            Path | None,
            typer.Option(
                "--run-dir",
                help="Study folder (default: runs/tune-<config>-<timestamp>); "
                "give an existing one to resume its study.",
            ),
        ] = None,
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", help="Override a base config key: --set trainer.max_epochs=5."),
        ] = None,
        seed: Annotated[
            int | None,
            typer.Option("--seed", min=0, help="Sampler seed (default: the space's seed)."),
        ] = None,
    ) -> None:
        """Search a config's training recipe with Optuna (TPE + median pruning) on validation.

        Trials never load the test part. Writes trials.csv/.md, best.yaml and importance.png.
        """
        from ecgfusion.experiments.search_space import load_space, with_seed
        from ecgfusion.experiments.tune import tune
        from ecgfusion.training.config import load_config

        if config is None:
            raise ConfigError("give a base run config, e.g. configs/kachuee_cnn_mitdb.yaml")
        if space is None:
            raise ConfigError("give a search space: --space configs/search/<model>.yaml")
        if trials is None:
            raise ConfigError("give the number of trials: --trials N")
        if trials < 1:
            raise ConfigError(f"--trials must be at least 1, got {trials}")
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"--timeout must be a positive number of seconds, got {timeout:g}")
        base = load_config(config, set_ or [])
        search = with_seed(load_space(space), seed)
        target = writable_path(run_dir or default_study_dir(config), "--run-dir")
        command = _command_line(config, space, trials, timeout, target, set_ or [], seed)
        result = tune(
            base,
            search,
            target,
            trials,
            timeout=timeout,
            command=command,
            progress=lambda line: console.print(line, soft_wrap=True),
            source=str(space),
        )
        counts = result["counts"]
        title = (
            f"{base.model.name}: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
            f"{counts['FAIL']} failed ({search.objective} on validation)"
        )
        console.print(_results_table(title, result))
        best = result["best"]
        if best is not None:
            console.print(
                f"best: trial {best['trial']}, {search.objective}={best['value']:.4f}; "
                f"train it with: ecgfusion train {target / 'best.yaml'}",
                soft_wrap=True,
            )
        else:
            console.print("no trial completed: no best.yaml")
        console.print(result["importance_note"], soft_wrap=True)
        console.print(f"wrote {', '.join(result['files'])} in {target}", soft_wrap=True)
