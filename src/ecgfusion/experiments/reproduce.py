"""`ecgfusion reproduce`: the paper's Experiments 1 and 2, stage by stage, resumable.

Each stage is an ordinary `ecgfusion train` run of a config in ``configs/`` (the paper's Table II)
with the preset's budget applied as overrides, so a reproduced number can always be re-made with
one `ecgfusion train` command. A stage whose run folder already holds metrics for the same config
is reused; an interrupted one continues from its last checkpoint.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgfusion.errors import ConfigError
from ecgfusion.experiments.published import NOTES, ORIGINAL, REPRODUCTION
from ecgfusion.io import atomic_write_text

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
DATASETS = ("mitdb", "ptbxl-beats")
#: User-facing protocol names per dataset (PTB-XL: its folds keep patients apart).
PROTOCOLS = {
    "beat-random": {"mitdb": "beat-random", "ptbxl-beats": "beat-random"},
    "inter-patient": {"mitdb": "inter-patient", "ptbxl-beats": "strat-fold"},
}
CONFIG_SUFFIX = {"mitdb": "mitdb", "ptbxl-beats": "ptbxl"}


@dataclass(frozen=True)
class Stage:
    key: str
    title: str
    config: str
    kind: str  # "1d" | "2d" | "fusion"
    experiments: tuple[int, ...]
    overrides: tuple[str, ...] = ()
    joint: bool = False


STAGES: tuple[Stage, ...] = (
    Stage("cnn_transformer_1d", "1D CNN-Transformer", "cnn_transformer_1d", "1d", (1,)),
    Stage("cnn_2d", "2D CNN (spectrogram)", "cnn_2d", "2d", (1,)),
    Stage("late_fusion", "Hybrid: late fusion", "late_fusion", "fusion", (1, 2)),
    Stage(
        "intermediate_concat", "Intermediate fusion: concat", "intermediate_concat", "fusion", (2,)
    ),
    Stage("intermediate_sum", "Intermediate fusion: sum", "intermediate_sum", "fusion", (2,)),
    Stage(
        "intermediate_weighted_sum",
        "Intermediate fusion: weighted sum",
        "intermediate_weighted_sum",
        "fusion",
        (2,),
    ),
    Stage(
        "late_fusion_joint",
        "Late fusion, backbones trained jointly",
        "late_fusion",
        "fusion",
        (2,),
        ("model.params.freeze=false",),
        joint=True,
    ),
    Stage(
        "intermediate_concat_joint",
        "Intermediate concat, backbones trained jointly",
        "intermediate_concat",
        "fusion",
        (2,),
        ("model.params.freeze=false",),
        joint=True,
    ),
)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    overrides: dict[str, tuple[str, ...]]  # by stage kind, plus "joint" for jointly trained fusions
    joint: bool


PRESETS: dict[str, Preset] = {
    "quick": Preset(
        "quick",
        "a real but short run (minutes on 2 CPU cores): 16,000 training and 4,000 validation "
        "beats, 2-3 epochs, bf16 autocast; the test part is complete. The 1D CNN-Transformer is "
        "far from converged at this budget",
        {
            "1d": (
                "data.max_train_beats=16000",
                "data.max_val_beats=4000",
                "trainer.max_epochs=3",
                # Batch 64 with Table II's Noam factor 0.1 learned fastest of those measured on
                # this budget (Noam 0.1 @ 64: val macro-F1 0.38 after 2 epochs; Noam 0.4:
                # collapsed to N; AdamW 1e-3 constant: 0.03 after 1 epoch). Warm-up = the
                # 16,000 beats Table II's 4,000 x 16 warm-up would cover, at batch 64.
                "trainer.batch_size=64",
                "optim.warmup=250",
                "trainer.precision=bf16-mixed",
            ),
            "2d": (
                "data.max_train_beats=16000",
                "data.max_val_beats=4000",
                "trainer.max_epochs=2",
                "trainer.batch_size=64",
                "trainer.precision=bf16-mixed",
            ),
            "fusion": (
                "data.max_train_beats=16000",
                "data.max_val_beats=4000",
                "trainer.max_epochs=3",
                "trainer.batch_size=256",
            ),
        },
        joint=False,
    ),
    "cpu": Preset(
        "cpu",
        "the whole training part, bf16 autocast, early stopping on validation macro-F1; about "
        "1.5 h per dataset x protocol on one CPU core (two run side by side on 2 cores)",
        {
            # Epoch budgets from measured single-core bf16 rates (1D 423 beats/s at batch 128,
            # 2D 325 at 128): 12 + 8 epochs of MIT-BIH's 87,600 training beats = ~80 min.
            "1d": (
                "trainer.max_epochs=12",
                "trainer.batch_size=128",
                "optim.warmup=500",  # the same number of beats as Table II's 4,000 x 16
                "trainer.early_stopping.patience=3",
                "trainer.precision=bf16-mixed",
            ),
            "2d": (
                "trainer.max_epochs=8",
                "trainer.batch_size=64",
                "trainer.early_stopping.patience=3",
                "trainer.precision=bf16-mixed",
            ),
            "fusion": ("trainer.max_epochs=10", "trainer.batch_size=256"),
            "joint": (
                "trainer.max_epochs=1",
                "trainer.batch_size=128",
                "trainer.precision=bf16-mixed",
            ),
        },
        joint=True,
    ),
    "paper": Preset(
        "paper",
        "the paper's Table II settings (150 / 30 / 10 epochs, batch 16); meant for a GPU",
        {"joint": ()},
        joint=True,
    ),
}


def config_path(stage: Stage, dataset: str) -> Path:
    path = CONFIG_DIR / f"{stage.config}_{CONFIG_SUFFIX[dataset]}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"{path} not found; `ecgfusion reproduce` reads the paper's configs from the "
            "repository's configs/ folder — run it from a clone of the repository"
        )
    return path


def stage_overrides(
    stage: Stage,
    preset: Preset,
    dataset: str,
    protocol: str,
    seed: int,
    runs: Path,
    data_root: str | None,
    cache_dir: str | None,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """The stage's config overrides: protocol and seed, the preset's budget, the stage's own
    keys, the backbone runs of a fusion, then ``extra`` (the user's --set, applied last)."""
    out = [f"data.protocol={protocol}", "data.seed=0", f"trainer.seed={seed}"]
    out += list(preset.overrides.get(stage.kind, ()))
    if stage.joint:
        out += list(preset.overrides.get("joint", ()))
    out += list(stage.overrides)
    if stage.kind == "fusion":
        out += [
            f"model.backbones.backbone_1d={runs / 'cnn_transformer_1d'}",
            f"model.backbones.backbone_2d={runs / 'cnn_2d'}",
        ]
    if data_root is not None:
        out.append(f"data.data_root={data_root}")
    if cache_dir is not None:
        out.append(f"data.cache_dir={cache_dir}")
    return out + list(extra)


def _fmt(values: list[float | None], digits: int = 4) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def _published(table: dict, dataset: str, stage: str, key: str) -> str:
    value = table.get((dataset, stage), {}).get(key)
    return "–" if value is None else f"{value:.4f}"


@dataclass
class StageResult:
    stage: Stage
    runs: list[dict]  # metrics.json of each seed
    run_dirs: list[Path]

    def values(self, *path: str) -> list[float | None]:
        return [dig(run, path) for run in self.runs]


def dig(node: object, path: tuple[str, ...]) -> object:
    """``node[path[0]][path[1]]...``, None where a key is missing."""
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _metric_table(results: list[StageResult], dataset: str) -> tuple[list[str], list[list[str]]]:
    headers = ["model", "MCC", "macro-F1", "accuracy"]
    if dataset == "mitdb":
        headers += ["SVEB Se", "SVEB +P", "VEB Se", "VEB +P"]
    headers += ["paper MCC", "paper F1", "paper acc", "repro. MCC", "repro. F1", "repro. acc"]
    rows = []
    for r in results:
        row = [r.stage.title] + [
            _fmt(r.values("metrics", k)) for k in ("mcc", "macro_f1", "accuracy")
        ]
        if dataset == "mitdb":
            row += [
                _fmt(r.values("metrics", "aami", k))
                for k in ("sveb_sensitivity", "sveb_ppv", "veb_sensitivity", "veb_ppv")
            ]
        row += [
            _published(ORIGINAL, dataset, r.stage.key, k) for k in ("mcc", "macro_f1", "accuracy")
        ]
        row += [
            _published(REPRODUCTION, dataset, r.stage.key, k)
            for k in ("mcc", "macro_f1", "accuracy")
        ]
        rows.append(row)
    return headers, rows


def _time_table(results: list[StageResult]) -> tuple[list[str], list[list[str]]]:
    headers = ["model", "epochs", "train time (s)", "test time (s)", "test beats/s", "device"]
    rows = []
    for r in results:
        # a later fusion stage on the same frozen backbones reuses their test outputs
        reused = " (head only)" if any(r.values("timing", "test_backbones_reused")) else ""
        rows.append(
            [
                r.stage.title,
                _fmt_int(r.values("timing", "epochs_trained")),
                _fmt(r.values("timing", "train_seconds"), 1),
                _fmt(r.values("timing", "test_inference_seconds"), 1) + reused,
                _fmt(r.values("timing", "test_samples_per_second"), 0) + reused,
                str(r.runs[0]["timing"].get("device", "?")),
            ]
        )
    return headers, rows


def _fmt_int(values: list) -> str:
    return "/".join(str(v) for v in values if v is not None) or "–"


def _markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _csv(headers: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(headers)
    writer.writerows(rows)
    return buf.getvalue()


def write_tables(
    out: Path, results: list[StageResult], dataset: str, protocol_label: str, context: dict
) -> dict[str, Path]:
    """experiment1/2 .md and .csv (metrics + time tables) for one dataset × protocol."""
    written = {}
    for number, title in ((1, "single models vs hybrid"), (2, "fusion methods")):
        part = [r for r in results if number in r.stage.experiments]
        if not part:
            continue
        mh, mrows = _metric_table(part, dataset)
        th, trows = _time_table(part)
        md = "\n".join(
            [
                f"# Experiment {number}: {title} — {dataset}",
                "",
                f"Protocol: **{protocol_label}**. Preset `{context['preset']}`, seeds "
                f"{context['seeds']} (mean ± std over seeds when more than one). "
                f"Test part: {context['test_beats']} beats.",
                "",
                _markdown(mh, mrows),
                "",
                f"Published numbers: {NOTES[dataset]}. '–' = not given in our sources.",
                "",
                "## Train and test time",
                "",
                _markdown(th, trows),
                "",
                f"Command: `{context['command']}`",
                "",
            ]
        )
        written[f"experiment{number}.md"] = atomic_write_text(out / f"experiment{number}.md", md)
        written[f"experiment{number}.csv"] = atomic_write_text(
            out / f"experiment{number}.csv", _csv(mh, mrows)
        )
        written[f"experiment{number}_time.csv"] = atomic_write_text(
            out / f"experiment{number}_time.csv", _csv(th, trows)
        )
    return written


def _copy_figures(out: Path, results: list[StageResult]) -> list[str]:
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    names = []
    for r in results:
        run_dir = r.run_dirs[0]
        for fig in r.runs[0].get("figures", []):
            src = run_dir / fig
            if src.is_file():
                name = f"{r.stage.key}_{fig}"
                shutil.copyfile(src, figures / name)
                names.append(name)
    return names


def _folder_readme(out: Path, context: dict, figures: list[str]) -> Path:
    lines = [
        f"# Reproduction: {context['dataset']}, {context['protocol_label']}",
        "",
        f"- dataset: `{context['dataset']}` ({context['beats']} beats, {context['n_samples']} "
        "samples at 125 Hz)",
        f"- protocol: {context['protocol_label']}",
        f"- preset: `{context['preset']}` — {context['preset_description']}",
        f"- seeds: {context['seeds']}",
        f"- epochs per stage: {context['epochs']}",
        f"- hardware: {context['hardware']}",
        f"- training + test time of all stages: {context['stage_seconds']:.0f} s "
        f"(this invocation: {context['wall_seconds']:.0f} s; finished stages are reused, "
        "so a rerun is short)",
        f"- command: `{context['command']}`",
        "",
        "Tables: [experiment1.md](experiment1.md), [experiment2.md](experiment2.md). Run folders "
        f"(configs, logs, checkpoints, model.pt): `{context['runs']}`.",
        "",
        "## Figures",
        "",
    ]
    lines += [f"![{name}](figures/{name})" for name in figures]
    return atomic_write_text(out / "README.md", "\n".join(lines) + "\n")


def _train_stage(config, run_dir: Path, beats, log: Callable[[str], None] = print) -> dict:
    from ecgfusion.training.config import CONFIG_FILE, load_config
    from ecgfusion.training.trainer import CHECKPOINT_DIR, LAST_CKPT, train

    if (run_dir / CONFIG_FILE).is_file() and load_config(run_dir / CONFIG_FILE) != config:
        # Another budget (a changed preset, a --set): its checkpoint must not be continued.
        log(f"{run_dir} holds a run of another config; training this stage again")
        shutil.rmtree(run_dir)
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if (run_dir / "metrics.json").is_file() or (run_dir / CHECKPOINT_DIR / LAST_CKPT).is_file():
            return train(config, run_dir, resume=True, beats=beats)
        shutil.rmtree(run_dir)  # stopped before its first checkpoint: nothing to keep
    return train(config, run_dir, beats=beats)


def reproduce_one(
    dataset: str,
    protocol: str,
    preset: Preset,
    seeds: int,
    out_root: Path,
    runs_root: Path,
    command: str,
    data_root: str | None = None,
    cache_dir: str | None = None,
    log: Callable[[str], None] = print,
    extra: tuple[str, ...] = (),
) -> Path:
    """All stages for one dataset × protocol; returns the results folder."""
    from ecgfusion.benchmarks.common import cpu_model
    from ecgfusion.data.cache import load_beats
    from ecgfusion.data.splits import KnownPatientOverlapWarning, make_split
    from ecgfusion.training.config import load_config

    internal = PROTOCOLS[protocol][dataset]
    name = f"{dataset}-{protocol}"
    out = out_root / preset.name / name
    start = time.perf_counter()
    log(f"[{name}] preparing beats")
    beats = load_beats(dataset, "kachuee", None, data_root, cache_dir, progress=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KnownPatientOverlapWarning)
        split = make_split(beats, internal, 0)
    stages = [s for s in STAGES if preset.joint or not s.joint]
    results: list[StageResult] = []
    epochs = {}
    for stage in stages:
        runs, dirs = [], []
        for seed in range(seeds):
            runs_dir = runs_root / preset.name / name / f"seed_{seed}"
            overrides = stage_overrides(
                stage, preset, dataset, internal, seed, runs_dir, data_root, cache_dir, extra
            )
            config = load_config(config_path(stage, dataset), overrides)
            run_dir = runs_dir / stage.key
            t0 = time.perf_counter()
            log(f"[{name}] seed {seed}: {stage.title} -> {run_dir}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", KnownPatientOverlapWarning)
                result = _train_stage(config, run_dir, beats, log)
            m = result["metrics"]
            log(
                f"[{name}] seed {seed}: {stage.title}: MCC {m['mcc']:.4f} macro-F1 "
                f"{m['macro_f1']:.4f} acc {m['accuracy']:.4f} ({time.perf_counter() - t0:.0f} s)"
            )
            runs.append(result)
            dirs.append(run_dir)
            epochs[stage.key] = config.trainer.max_epochs
        results.append(StageResult(stage, runs, dirs))
    context = {
        "dataset": dataset,
        "protocol_label": split.label,
        "preset": preset.name,
        "preset_description": preset.description,
        "seeds": list(range(seeds)),
        "test_beats": len(split.test),
        "beats": len(beats),
        "n_samples": beats.n_samples,
        "epochs": ", ".join(f"{k} {v}" for k, v in epochs.items()),
        "hardware": f"{cpu_model()}, {os.cpu_count()} cores ({platform.machine()})",
        "command": command,
        "runs": str(runs_root / preset.name / name),
        "wall_seconds": time.perf_counter() - start,
        "stage_seconds": sum(
            (run["timing"].get("train_seconds") or 0)
            + (run["timing"].get("test_inference_seconds") or 0)
            for r in results
            for run in r.runs
        ),
    }
    write_tables(out, results, dataset, split.label, context)
    figures = _copy_figures(out, results)
    _folder_readme(out, context, figures)
    summary = {
        "context": context,
        "stages": {
            r.stage.key: {
                "title": r.stage.title,
                "runs": [str(d) for d in r.run_dirs],
                "metrics": [x["metrics"] for x in r.runs],
            }
            for r in results
        },
    }
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2, default=str))
    return out


def reproduce(
    dataset: str = "mitdb",
    protocol: str = "beat-random",
    preset: str = "quick",
    seeds: int = 1,
    out: str | Path = "results",
    runs: str | Path = "runs/reproduce",
    command: str = "ecgfusion reproduce",
    data_root: str | None = None,
    cache_dir: str | None = None,
    log: Callable[[str], None] = print,
    extra: tuple[str, ...] = (),
) -> list[Path]:
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    datasets = DATASETS if dataset == "all" else (dataset,)
    protocols = tuple(PROTOCOLS) if protocol == "all" else (protocol,)
    for d in datasets:
        if d not in DATASETS:
            raise ConfigError(f"unknown dataset {d!r}; choose mitdb, ptbxl-beats or all")
    for p in protocols:
        if p not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {p!r}; choose beat-random, inter-patient or all")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    folders = []
    for d in datasets:
        for p in protocols:
            folders.append(
                reproduce_one(
                    d,
                    p,
                    PRESETS[preset],
                    seeds,
                    Path(out),
                    Path(runs),
                    command,
                    data_root,
                    cache_dir,
                    log,
                    tuple(extra),
                )
            )
    from ecgfusion.experiments.compare import write_comparison

    page = write_comparison(Path(out) / preset)  # every folder of this preset, this run's or not
    if page is not None:
        log(f"comparison of all {preset} folders: {page}")
    return folders
