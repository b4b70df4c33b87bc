"""Time to accuracy: validation accuracy and macro-F1 against training time and epochs.

For the 1D CNN-Transformer, the 2D CNN and the hybrid, under the ``paper`` recipe (Table II) and
the tuned ``cpu`` recipe, in the same process, one after the other on the same MIT-BIH beats
(beat-random split, seed 0). Each of the six fits gets the same wall-time budget; it validates
several times per epoch, and every validation is a point of its curve: (training seconds, wall
seconds, fractional epoch, val accuracy, val macro-F1). The same-run ratios are the paper
recipe's time to first reach 97 % and 98 % validation accuracy over the cpu recipe's.

Each run is the stage's config as ``ecgfusion reproduce`` builds it (Table-II YAML + the preset's
section for the stage kind), with these changes, about measuring, not about how a model learns:

- ``trainer.max_time_s``: the budget (Lightning's timer, which counts the validations too);
- ``trainer.val_per_epoch``: enough validations for ~``TARGET_POINTS`` points in the budget (from
  the training rate measured by a short probe of the recipe's model, batch and precision);
- ``data.max_val_beats`` = 4,000 (validation stays cheap; same cap for every run);
- ``trainer.early_stopping`` off: it would end runs at different times for reasons unrelated to
  how fast they learn; the curve shows the recipe until the budget ends;
- ``trainer.num_threads``: the same for every run (this process's torch threads).

The recipe's ``trainer.max_epochs`` is kept: schedules such as cosine or one-cycle are laid out
over it, so raising it would change the recipe. The budget is meant to end every run first; a run
that finishes the recipe's epochs earlier ends there (its row shows fewer training seconds).
``--tiny`` also sets ``data.max_beats`` = 400 (a smoke run of the same code).

The hybrid is the late-fusion model trained end to end from scratch (``freeze: false``, no
trained backbones: both are built fresh, with the 1D and 2D stages' dropout). The presets' fusion
sections are recipes for a head on frozen, trained backbones, so the hybrid uses the recipe's
``1d`` section (optimiser, schedule, batch, precision) instead: a backbone recipe.

Times to a threshold are **training seconds**: wall seconds since training started minus the
time spent in validation passes and the checkpointing after them. The recipes validate at
different intervals, so their wall times carry different evaluation overheads; the raw wall time
of every point is in the curves too.

The curves themselves (the recorder, the time to a threshold and the ratios of two, the CSV and
the plot) are :mod:`ecgfusion.benchmarks.convergence_curves`; this module chooses, configures and
runs the fits and assembles the benchmark's rows, ratios and notes.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgfusion.benchmarks.common import BenchResult
from ecgfusion.benchmarks.convergence_curves import (
    MODELS,
    RECIPES,
    THRESHOLDS,
    CurveRecorder,
    first_reach,
    time_ratio,
    write_outputs,
)
from ecgfusion.errors import ConfigError

FULL_BUDGET_S = 300.0
TINY_BUDGET_S = 2.5
#: Tiny mode: a 400-beat subset of MIT-BIH (256 training, 64 validation beats).
TINY_MAX_BEATS = 400
VAL_BEATS = 4000
#: Validations wanted per run. More points resolve the time to a threshold more finely, but each
#: costs a validation pass (4,000 beats) out of the budget.
TARGET_POINTS = 10
#: Share of the budget assumed to go to training when choosing val_per_epoch (the rest:
#: validation passes, checkpoints, the data loader).
TRAIN_SHARE = 0.75
#: Seconds of the probe that measures each recipe's training rate, and the most beats per probe
#: step (tiny mode: a rough rate is enough, and a batch-128 step of the hybrid takes a second).
PROBE_S = {False: 2.0, True: 0.2}
PROBE_MAX_BATCH = {False: None, True: 16}
COLUMNS = [
    "model",
    "recipe",
    "batch",
    "precision",
    "val/epoch",
    "points",
    "epochs",
    "train s",
    "beats/s",
    "s to 97%",
    "epochs to 97%",
    "s to 98%",
    "epochs to 98%",
    "best acc",
    "best F1",
    "last acc",
    "last F1",
]

#: What `ecgfusion bench` passes in (budget, output folder) while it runs the benchmarks; see
#: :func:`options`.
_OPTIONS: dict[str, Any] = {"budget_s": None, "out_dir": None}


@contextlib.contextmanager
def options(budget_s: float | None = None, out_dir: str | Path | None = None) -> Iterator[None]:
    """The budget per run and the folder for the plot and CSV while the block runs.

    The harness calls every benchmark as ``run(tiny, data_root)``; `ecgfusion bench --budget S
    --out DIR` wraps its loop in this so that the curves land next to ``convergence.json``.
    """
    before = dict(_OPTIONS)
    _OPTIONS.update(budget_s=budget_s, out_dir=out_dir)
    try:
        yield
    finally:
        _OPTIONS.update(before)


# --------------------------------------------------------------------------- configs


def choose_val_per_epoch(
    beats_per_s: float, n_train: int, batch: int, budget_s: float, points: int = TARGET_POINTS
) -> int:
    """Validations per epoch for about ``points`` of them in ``budget_s`` at the measured rate,
    at most one per training batch."""
    steps_per_epoch = max(1, math.ceil(n_train / batch))
    epochs = TRAIN_SHARE * budget_s * beats_per_s / n_train
    wanted = math.ceil(points / epochs) if epochs > 0 else steps_per_epoch
    return int(min(max(1, wanted), steps_per_epoch))


def run_config(
    model: str,
    preset,
    budget_s: float,
    threads: int,
    tiny: bool,
    data_root: str | None,
    val_per_epoch: int = 1,
):
    """The run config of one model under one preset, with the benchmark's measuring changes."""
    from ecgfusion.experiments.reproduce import stage_config
    from ecgfusion.experiments.stages import STAGES
    from ecgfusion.training.config import validate_config

    stages = {s.key: s for s in STAGES}
    extra = (
        f"trainer.max_time_s={budget_s}",
        f"trainer.val_per_epoch={val_per_epoch}",
        "trainer.early_stopping=null",
        f"trainer.num_threads={threads}",
        f"data.max_beats={TINY_MAX_BEATS}" if tiny else f"data.max_val_beats={VAL_BEATS}",
    )
    runs = Path(tempfile.gettempdir())  # fusion stages' backbone folders: unused here

    def build(key: str):
        return stage_config(
            stages[key], preset, "mitdb", "beat-random", 0, runs, data_root, None, extra
        )

    if model != "hybrid":
        return build(MODELS[model][0])
    one_d, two_d = build("cnn_transformer_1d"), build("cnn_2d")
    raw = one_d.model_dump(mode="json")
    raw["model"] = {
        "name": MODELS["hybrid"][0],
        "params": {
            "freeze": False,
            "backbone_1d_params": dict(one_d.model.params),
            "backbone_2d_params": dict(two_d.model.params),
        },
    }
    return validate_config(raw, f"hybrid from scratch with preset {preset.name!r}'s 1d recipe")


def probe_rate(
    config,
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    seconds: float,
    max_batch: int | None = None,
) -> float:
    """Training beats/s of the config's model at its batch size (at most ``max_batch``) and
    precision: Adam steps on real beats for about ``seconds`` after one untimed step. Only used
    to space the validations."""
    from ecgfusion.benchmarks.train import Variant, make_step
    from ecgfusion.models import create_model
    from ecgfusion.runtime import training_precision

    torch.manual_seed(0)
    model = create_model(
        config.model.name,
        n_classes=n_classes,
        n_samples=x.shape[1],
        sampling_rate=125.0,
        **config.model.params,
    )
    bf16 = training_precision(config.trainer.precision) == "bf16-mixed"
    step = make_step(model, Variant(bf16=bf16))
    batch = min(config.trainer.batch_size, max_batch or len(x), len(x))
    xb, yb = x[:batch], y[:batch]
    step(xb, yb)
    steps, start = 0, time.perf_counter()
    while steps < 2 or time.perf_counter() - start < seconds:
        step(xb, yb)
        steps += 1
    return steps * batch / (time.perf_counter() - start)


def train_size(config, beats) -> int:
    from ecgfusion.training.datamodule import prepare_split

    return len(prepare_split(config.data, beats).index["train"])


# --------------------------------------------------------------------------- the benchmark


def run(
    tiny: bool = False,
    data_root: str | None = None,
    budget_s: float | None = None,
    recipes: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
) -> BenchResult:
    """Six budgeted fits (3 models x 2 recipes); ``recipes`` are preset names or YAML paths (the
    first is the slow reference, drawn dashed), ``out_dir`` gets the plot and the CSV."""
    from ecgfusion.data.cache import load_beats
    from ecgfusion.experiments.presets import load_preset
    from ecgfusion.training.trainer import fit_validation

    budget = float(budget_s or _OPTIONS["budget_s"] or (TINY_BUDGET_S if tiny else FULL_BUDGET_S))
    out_dir = out_dir or _OPTIONS["out_dir"]
    recipes = tuple(recipes or RECIPES)
    presets = [load_preset(r) for r in recipes]  # a missing preset fails before any training
    if len({p.name for p in presets}) != 2 or len(presets) != 2:
        raise ConfigError(
            f"convergence compares two recipes with different names, got {', '.join(recipes)}"
        )
    threads = torch.get_num_threads()
    beats = load_beats("mitdb", data_root=data_root)
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(len(beats), size=1024, replace=False))
    x_probe = torch.from_numpy(np.array(beats.signals[pick], dtype=np.float32))
    y_probe = torch.from_numpy(np.array(beats.labels[pick], dtype=np.int64))
    n_classes = len(beats.class_names)

    result = BenchResult(
        "convergence",
        "Time to accuracy: validation accuracy / macro-F1 against training time and epochs",
        tiny,
        list(COLUMNS),
        params={
            "budget_s_per_run": budget,
            "threads": threads,
            "recipes": [p.name for p in presets],
            "thresholds": list(THRESHOLDS),
            "time_basis": "train_s: wall seconds since training start minus validation passes",
            "val_beats": None if tiny else VAL_BEATS,
            "max_beats": TINY_MAX_BEATS if tiny else None,
        },
    )
    curves: list[dict[str, Any]] = []
    by_run: dict[tuple[str, str], list[dict[str, float]]] = {}
    rates: dict[tuple[str, str], float] = {}
    # Models outer, recipes inner: a change in machine load hits both recipes of a model alike.
    for model in MODELS:
        for preset in presets:
            config = run_config(model, preset, budget, threads, tiny, data_root)
            n_train = train_size(config, beats)
            with _threads(threads):
                probed = probe_rate(
                    config, x_probe, y_probe, n_classes, PROBE_S[tiny], PROBE_MAX_BATCH[tiny]
                )
            k = choose_val_per_epoch(probed, n_train, config.trainer.batch_size, budget)
            config = run_config(model, preset, budget, threads, tiny, data_root, k)
            recorder = CurveRecorder()
            with tempfile.TemporaryDirectory(prefix="ecgfusion-convergence-") as tmp:
                fit_validation(config, Path(tmp) / "run", data=beats, callbacks=[recorder])
            points = recorder.points
            by_run[model, preset.name] = points
            batch = config.trainer.batch_size
            rate = recorder.steps * batch / recorder.train_s if recorder.train_s > 0 else 0.0
            rates[model, preset.name] = rate
            row: dict[str, Any] = {
                "model": model,
                "recipe": preset.name,
                "batch": batch,
                "precision": config.trainer.precision,
                "val/epoch": k,
                "points": len(points),
                "epochs": round(recorder.epochs, 4),
                "train s": round(recorder.train_s, 3),
                "beats/s": rate,
            }
            for threshold in THRESHOLDS:
                hit = first_reach(points, threshold)
                pct = f"{round(threshold * 100)}%"
                row[f"s to {pct}"] = None if hit is None else hit["train_s"]
                row[f"epochs to {pct}"] = None if hit is None else hit["epoch"]
            if points:
                row["best acc"] = max(p["val_acc"] for p in points)
                row["best F1"] = max(p["val_macro_f1"] for p in points)
                row["last acc"] = points[-1]["val_acc"]
                row["last F1"] = points[-1]["val_macro_f1"]
            result.rows.append(row)
            curves.append(
                {
                    "model": model,
                    "title": MODELS[model][1],
                    "recipe": preset.name,
                    "batch": batch,
                    "precision": config.trainer.precision,
                    "val_per_epoch": k,
                    "n_train": n_train,
                    "probe_beats_per_s": round(probed, 1),
                    "train_s": round(recorder.train_s, 3),
                    "steps": recorder.steps,
                    "points": points,
                }
            )

    slow, fast = presets[0].name, presets[-1].name
    details = []
    for model in MODELS:
        for threshold in THRESHOLDS:
            value, kind = time_ratio(by_run[model, slow], by_run[model, fast], threshold)
            what = f"{model}: {slow} vs {fast} time to {threshold:.0%} val acc"
            details.append({"model": model, "threshold": threshold, "ratio": value, "kind": kind})
            if value is None:
                result.notes.append(f"{what}: {kind} within the {budget:g} s budget")
            elif kind == "measured":
                result.ratios[what] = value
            else:
                result.ratios[f"{what} ({kind}: {_unreached(kind, slow, fast)})"] = value
        if rates[model, slow] > 0 and rates[model, fast] > 0:
            result.ratios[f"{model}: {fast} vs {slow} training beats/s"] = (
                rates[model, fast] / rates[model, slow]
            )
    result.params["time_to_accuracy"] = details
    result.params["curves"] = curves
    result.notes += [
        f"each of the {len(MODELS) * len(presets)} runs: {budget:g} s wall budget (validations "
        f"included), {threads} torch thread(s), MIT-BIH beat-random seed 0, "
        + (
            f"a {TINY_MAX_BEATS}-beat subset (tiny)"
            if tiny
            else f"validation capped at {VAL_BEATS:,} beats"
        ),
        "times are training seconds (validation passes and their checkpoints excluded) at the "
        "first validation reaching the threshold; the true crossing lies between that validation "
        "and the one before it",
        "epochs = optimiser steps / batches per epoch of the recipe's training part",
        "hybrid = late fusion trained jointly from scratch with the recipe's 1d section",
        f"a ratio > 1: the {fast} recipe gets there faster; a lower bound means the {slow} "
        "recipe did not get there within the budget",
    ]
    if out_dir is not None:
        files = write_outputs(curves, Path(out_dir), thresholds=THRESHOLDS, slow=slow)
        result.notes.append("curves: " + ", ".join(str(f) for f in files))
    return result


def _unreached(kind: str, slow: str, fast: str) -> str:
    return f"{slow if kind == 'lower bound' else fast} not reached in budget"


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
