"""`ecgfusion reproduce`: the paper's Experiments 1 and 2, stage by stage, resumable.

Each stage is an ordinary `ecgfusion train` run of a config in ``configs/`` (the paper's Table II)
with the preset's budget applied as overrides, so a reproduced number can always be re-made with
one `ecgfusion train` command. A stage whose run folder already holds metrics for the same config
is reused; an interrupted one continues from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import platform
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ecgfusion.errors import ConfigError
from ecgfusion.experiments.presets import Preset, deep_merge, load_preset
from ecgfusion.experiments.published import NOTES, ORIGINAL, REPRODUCTION
from ecgfusion.experiments.stages import (
    CONFIG_DIR,
    CONFIG_SUFFIX,
    DATASETS,
    INDEPENDENT_KINDS,
    PROTOCOLS,
    Stage,
    preset_stages,
)
from ecgfusion.experiments.tables import (
    dig,
    joined_ints,
    markdown_table,
    mean_std,
    published_value,
)
from ecgfusion.io import atomic_path, atomic_write_text, sweep_stale_temporaries
from ecgfusion.training.config import RunConfig, apply_override, read_yaml_file, validate_config


def config_path(stage: Stage, dataset: str) -> Path:
    path = CONFIG_DIR / f"{stage.config}_{CONFIG_SUFFIX[dataset]}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"{path} not found; `ecgfusion reproduce` reads the paper's configs from the "
            "repository's configs/ folder — run it from a clone of the repository"
        )
    return path


def stage_config(
    stage: Stage,
    preset: Preset,
    dataset: str,
    protocol: str,
    seed: int,
    runs: Path,
    data_root: str | None,
    cache_dir: str | None,
    extra: tuple[str, ...] = (),
) -> RunConfig:
    """The stage's run config: its Table-II YAML, then protocol and seed, the preset's section
    for its kind, the stage's own keys, the runs it builds on, then ``extra`` (the user's --set,
    applied last)."""
    path = config_path(stage, dataset)
    raw = read_yaml_file(path)
    fixed: dict = {"data": {"protocol": protocol, "seed": 0}, "trainer": {"seed": seed}}
    if stage.kind == "fusion":
        fixed["model"] = {
            "backbones": {
                "backbone_1d": str(runs / "cnn_transformer_1d"),
                "backbone_2d": str(runs / "cnn_2d"),
            }
        }
    if stage.init_from is not None:
        fixed = deep_merge(fixed, {"model": {"init_from": str(runs / stage.init_from)}})
    for key, value in (("data_root", data_root), ("cache_dir", cache_dir)):
        if value is not None:
            fixed["data"][key] = value
    raw = deep_merge(raw, fixed)
    raw = deep_merge(raw, preset.section(stage.kind, joint=stage.joint))
    raw = deep_merge(raw, stage.overrides)
    for text in extra:
        apply_override(raw, text)
    source = f"{path} with preset {preset.name!r}" + (" and --set overrides" if extra else "")
    return validate_config(raw, source)


@dataclass
class StageResult:
    stage: Stage
    runs: list[dict]  # metrics.json of each seed
    run_dirs: list[Path]

    def values(self, *path: str) -> list[float | None]:
        return [dig(run, path) for run in self.runs]


def _metric_table(results: list[StageResult], dataset: str) -> tuple[list[str], list[list[str]]]:
    headers = ["model", "MCC", "macro-F1", "accuracy"]
    if dataset == "mitdb":
        headers += ["SVEB Se", "SVEB +P", "VEB Se", "VEB +P"]
    headers += ["paper MCC", "paper F1", "paper acc", "repro. MCC", "repro. F1", "repro. acc"]
    rows = []
    for r in results:
        row = [r.stage.title] + [
            mean_std(r.values("metrics", k)) for k in ("mcc", "macro_f1", "accuracy")
        ]
        if dataset == "mitdb":
            row += [
                mean_std(r.values("metrics", "aami", k))
                for k in ("sveb_sensitivity", "sveb_ppv", "veb_sensitivity", "veb_ppv")
            ]
        row += [
            published_value(ORIGINAL, dataset, r.stage.key, k)
            for k in ("mcc", "macro_f1", "accuracy")
        ]
        row += [
            published_value(REPRODUCTION, dataset, r.stage.key, k)
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
                joined_ints(r.values("timing", "epochs_trained")),
                mean_std(r.values("timing", "train_seconds"), 1),
                mean_std(r.values("timing", "test_inference_seconds"), 1) + reused,
                mean_std(r.values("timing", "test_samples_per_second"), 0) + reused,
                str(r.runs[0]["timing"].get("device", "?")),
            ]
        )
    return headers, rows


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
                markdown_table(mh, mrows),
                "",
                f"Published numbers: {NOTES[dataset]}. '–' = not given in our sources.",
                "",
                "## Train and test time",
                "",
                markdown_table(th, trows),
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
                with atomic_path(figures / name) as tmp:  # never a half-copied PNG
                    shutil.copyfile(src, tmp)
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
    """Train a stage, or continue / reuse what its folder holds. A folder of another config
    (what it computes differs, not just paths or threads) is kept aside, never deleted."""
    from ecgfusion.io import set_aside
    from ecgfusion.training import trainer
    from ecgfusion.training.config import CONFIG_FILE, config_differences, load_config

    if (run_dir / CONFIG_FILE).is_file():
        changed = config_differences(load_config(run_dir / CONFIG_FILE), config)
        if changed:
            aside = set_aside(run_dir, "replaced")
            log(
                f"{run_dir} held a run of another config ({', '.join(changed)}); kept it as "
                f"{aside} and training this stage again"
            )
    last = run_dir / trainer.CHECKPOINT_DIR / trainer.LAST_CKPT
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if (run_dir / "metrics.json").is_file() or last.is_file():
            return trainer.train(config, run_dir, resume=True, beats=beats)
        aside = set_aside(run_dir, "unfinished")  # stopped before its first checkpoint
        log(f"{run_dir} stopped before its first epoch ended; kept it as {aside}, starting again")
    return trainer.train(config, run_dir, beats=beats)


def _train_stage_in_process(config: RunConfig, run_dir: Path, threads: int) -> dict:
    """A stage in a worker process of its own (spawned, so no state is shared): its own beats
    from the Parquet cache, ``threads`` torch threads."""
    import torch

    from ecgfusion.data.splits import KnownPatientOverlapWarning

    torch.set_num_threads(threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KnownPatientOverlapWarning)
        return _train_stage(config, run_dir, None, print)


def _run_stages(
    jobs: list[tuple[Stage, RunConfig, Path]],
    beats,
    workers: int,
    log: Callable[[str], None],
) -> list[dict]:
    """Train ``jobs`` (no stage depending on another), in ``workers`` processes when > 1."""
    from ecgfusion.data.splits import KnownPatientOverlapWarning

    if workers <= 1 or len(jobs) <= 1:
        out = []
        for _stage, config, run_dir in jobs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", KnownPatientOverlapWarning)
                out.append(_train_stage(config, run_dir, beats, log))
        return out
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    # Pool's exit terminates the workers, so an error or a stop of this process (SIGTERM is
    # turned into SystemExit here) never leaves a stage training on in the background.
    with _sigterm_as_exit(), context.Pool(min(workers, len(jobs)), _die_with_parent) as pool:
        pending = [
            pool.apply_async(_train_stage_in_process, (config, run_dir, threads))
            for _stage, config, run_dir in jobs
        ]
        return [p.get() for p in pending]


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    import signal

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _die_with_parent() -> None:
    """Worker initialiser: on Linux, end this worker when the process that started it dies, even
    by SIGKILL (prctl PR_SET_PDEATHSIG); elsewhere a no-op."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


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
    jobs: int | None = None,
) -> Path:
    """All stages for one dataset × protocol; returns the results folder.

    Seed by seed: the independent stages (1D, 2D, baseline) first, side by side in
    ``jobs`` (default: the preset's) processes, then the fusions that load them, in order.
    """
    from ecgfusion.data.cache import load_beats
    from ecgfusion.data.splits import KnownPatientOverlapWarning, make_split
    from ecgfusion.runtime import cpu_model

    internal = PROTOCOLS[protocol][dataset]
    name = f"{dataset}-{protocol}"
    out = out_root / preset.name / name
    workers = preset.jobs if jobs is None else jobs
    start = time.perf_counter()
    log(f"[{name}] preparing beats")
    beats = load_beats(dataset, "kachuee", None, data_root, cache_dir, progress=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KnownPatientOverlapWarning)
        split = make_split(beats, internal, 0)
    stages = preset_stages(preset)
    by_stage: dict[str, tuple[list[dict], list[Path]]] = {s.key: ([], []) for s in stages}
    epochs = {}
    for seed in range(seeds):
        runs_dir = runs_root / preset.name / name / f"seed_{seed}"
        planned = []
        for stage in stages:
            config = stage_config(
                stage, preset, dataset, internal, seed, runs_dir, data_root, cache_dir, extra
            )
            planned.append((stage, config, runs_dir / stage.key))
            epochs[stage.key] = config.trainer.max_epochs
        first = [job for job in planned if job[0].kind in INDEPENDENT_KINDS]
        rest = [job for job in planned if job[0].kind not in INDEPENDENT_KINDS]
        groups = [(first, workers)] if first else []
        groups += [([job], 1) for job in rest]
        for group, n in groups:
            for stage, _config, run_dir in group:
                log(f"[{name}] seed {seed}: {stage.title} -> {run_dir}")
            t0 = time.perf_counter()
            for (stage, _config, run_dir), result in zip(
                group, _run_stages(group, beats, n, log), strict=True
            ):
                m = result["metrics"]
                log(
                    f"[{name}] seed {seed}: {stage.title}: MCC {m['mcc']:.4f} macro-F1 "
                    f"{m['macro_f1']:.4f} acc {m['accuracy']:.4f} "
                    f"({time.perf_counter() - t0:.0f} s)"
                )
                by_stage[stage.key][0].append(result)
                by_stage[stage.key][1].append(run_dir)
    results = [StageResult(s, *by_stage[s.key]) for s in stages]
    context = {
        "dataset": dataset,
        "protocol_label": split.label,
        "preset": preset.name,
        "preset_description": " ".join(preset.description.split()),
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
    jobs: int | None = None,
) -> list[Path]:
    """``preset``: a name in configs/presets/ or the path of a preset YAML file."""
    chosen = load_preset(preset)
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
    for folder in (Path(out) / chosen.name, Path(runs) / chosen.name):
        swept = sweep_stale_temporaries(folder, depth=5)  # a killed process's temporaries
        if swept:
            log(f"removed {len(swept)} unfinished temporaries a killed run left in {folder}")
    folders = []
    for d in datasets:
        for p in protocols:
            folders.append(
                reproduce_one(
                    d,
                    p,
                    chosen,
                    seeds,
                    Path(out),
                    Path(runs),
                    command,
                    data_root,
                    cache_dir,
                    log,
                    tuple(extra),
                    jobs,
                )
            )
    from ecgfusion.experiments.compare import write_comparison

    # every folder of this preset, this run's or not
    page = write_comparison(Path(out) / chosen.name)
    if page is not None:
        log(f"comparison of all {chosen.name} folders: {page}")
    return folders
