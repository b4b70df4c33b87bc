"""`ecgfusion reproduce`: the paper's Experiments 1 and 2, stage by stage, resumable.

Each stage is an ordinary `ecgfusion train` run of a config in ``configs/`` (the paper's Table II)
with the preset's budget applied as overrides, so a reproduced number can always be re-made with
one `ecgfusion train` command. A stage whose run folder already holds metrics for the same config
is reused; an interrupted one continues from its last checkpoint. This module builds the stages'
configs and runs them (side by side in worker processes where the preset allows); the tables,
figures and README of the results folder are :mod:`ecgfusion.experiments.reproduce_results`.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from ecgfusion.errors import ConfigError
from ecgfusion.experiments.presets import Preset, deep_merge, load_preset
from ecgfusion.experiments.reproduce_results import StageResult, write_results
from ecgfusion.experiments.stages import (
    CONFIG_DIR,
    CONFIG_SUFFIX,
    DATASETS,
    INDEPENDENT_KINDS,
    PROTOCOLS,
    Stage,
    preset_stages,
    user_protocol,
)
from ecgfusion.io import sweep_stale_temporaries
from ecgfusion.schema import read_yaml_file
from ecgfusion.training.config import RunConfig, apply_override, validate_config


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
        if stage.rhythm:
            fixed["model"]["backbones"]["backbone_rr"] = str(runs / "rhythm_mlp")
    if stage.init_from is not None:
        fixed = deep_merge(fixed, {"model": {"init_from": str(runs / stage.init_from)}})
    for key, value in (("data_root", data_root), ("cache_dir", cache_dir)):
        if value is not None:
            fixed["data"][key] = value
    raw = deep_merge(raw, fixed)
    raw = deep_merge(
        raw,
        preset.section(stage.kind, joint=stage.joint, protocol=user_protocol(dataset, protocol)),
    )
    raw = deep_merge(raw, stage.overrides)
    for text in extra:
        apply_override(raw, text)
    source = f"{path} with preset {preset.name!r}" + (" and --set overrides" if extra else "")
    return validate_config(raw, source)


def _train_stage(config, run_dir: Path, beats, log: Callable[[str], None] = print) -> dict:
    """Train a stage, or continue / reuse what its folder holds. A folder of another config
    (what it computes differs, not just paths or threads) is kept aside, never deleted."""
    from ecgfusion.io import set_aside
    from ecgfusion.training import trainer
    from ecgfusion.training.config import CONFIG_FILE, config_differences, load_config
    from ecgfusion.training.rundir import CHECKPOINT_DIR, LAST_CKPT

    if (run_dir / CONFIG_FILE).is_file():
        changed = config_differences(load_config(run_dir / CONFIG_FILE), config)
        if changed:
            aside = set_aside(run_dir, "replaced")
            log(
                f"{run_dir} held a run of another config ({', '.join(changed)}); kept it as "
                f"{aside} and training this stage again"
            )
    last = run_dir / CHECKPOINT_DIR / LAST_CKPT
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if (run_dir / "metrics.json").is_file() or last.is_file():
            return trainer.train(config, run_dir, resume=True, data=beats)
        aside = set_aside(run_dir, "unfinished")  # stopped before its first checkpoint
        log(f"{run_dir} stopped before its first epoch ended; kept it as {aside}, starting again")
    return trainer.train(config, run_dir, data=beats)


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
    stages = preset_stages(preset, dataset)
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
    return write_results(out, results, dataset, split.label, context)


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
