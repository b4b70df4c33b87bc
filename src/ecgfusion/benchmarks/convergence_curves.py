"""The curves of the time-to-accuracy benchmark (:mod:`ecgfusion.benchmarks.convergence`).

A curve is one point per validation of a budgeted fit: training seconds (validation passes and
their checkpoints excluded), wall seconds, fractional epoch, optimiser step, val accuracy and
val macro-F1. This module records them during a fit (:class:`CurveRecorder`, a Lightning
callback), reads them (the first point at a threshold, and one recipe's time to it over
another's, measured or as a bound) and writes them out (``convergence_curves.csv`` and the
``convergence.png`` panels). Choosing and running the fits is the benchmark module's job.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

#: The recipes compared by default; the first is the slow reference, drawn dashed.
RECIPES = ("paper", "cpu")
#: short name -> (stage key in ecgfusion.experiments.stages.STAGES, title)
MODELS = {
    "1D": ("cnn_transformer_1d", "1D CNN-Transformer"),
    "2D": ("cnn_2d", "2D CNN"),
    "hybrid": ("late_fusion", "hybrid (late fusion, joint from scratch)"),
}
#: Validation accuracies whose first crossing is timed.
THRESHOLDS = (0.97, 0.98)
PLOT_FILE = "convergence.png"
CURVES_FILE = "convergence_curves.csv"
CURVE_FIELDS = ("train_s", "wall_s", "epoch", "step", "val_acc", "val_macro_f1")


# --------------------------------------------------------------------------- curves


class CurveRecorder(Callback):
    """One point per validation: training and wall seconds at its start, fractional epoch
    (optimiser steps / batches per epoch) and the validation accuracy and macro-F1.

    The clock starts at ``on_train_start`` (after the sanity check, as Lightning's timer). Time
    from a validation's start to the next training batch (the validation, its checkpoints and
    logging) is a pause: it counts in ``wall_s``, not in ``train_s``.
    """

    def __init__(self) -> None:
        self.points: list[dict[str, float]] = []
        self.train_s = 0.0  # training seconds of the whole fit, set at its end
        self.steps = 0
        self.batches_per_epoch = 1
        self._t0: float | None = None
        self._paused = 0.0
        self._pause_start: float | None = None
        self._at: tuple[float, float] | None = None

    def _resume(self) -> None:
        if self._pause_start is not None:
            self._paused += time.perf_counter() - self._pause_start
            self._pause_start = None

    def on_train_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._resume()

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self._t0 is None:
            return
        self._resume()
        now = time.perf_counter()
        self._pause_start = now
        self._at = (now - self._t0 - self._paused, now - self._t0)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self._at is None:
            return
        metrics = trainer.callback_metrics
        if "val_acc" not in metrics or "val_macro_f1" not in metrics:
            return
        train_s, wall_s = self._at
        self._at = None
        self.points.append(
            {
                "train_s": round(train_s, 3),
                "wall_s": round(wall_s, 3),
                "epoch": round(trainer.global_step / max(1, trainer.num_training_batches), 4),
                "step": int(trainer.global_step),
                "val_acc": float(metrics["val_acc"]),
                "val_macro_f1": float(metrics["val_macro_f1"]),
            }
        )

    def on_train_end(self, trainer, pl_module) -> None:
        self._resume()
        if self._t0 is not None:
            self.train_s = time.perf_counter() - self._t0 - self._paused
        self.steps = int(trainer.global_step)
        self.batches_per_epoch = max(1, int(trainer.num_training_batches))

    @property
    def epochs(self) -> float:
        return self.steps / self.batches_per_epoch


def first_reach(
    curve: Sequence[dict[str, float]], threshold: float, key: str = "val_acc"
) -> dict[str, float] | None:
    """The first point of ``curve`` with ``key`` >= ``threshold``; None when none gets there."""
    return next((p for p in curve if p[key] >= threshold), None)


def time_ratio(
    slow: Sequence[dict[str, float]],
    fast: Sequence[dict[str, float]],
    threshold: float,
    time_key: str = "train_s",
) -> tuple[float | None, str]:
    """``slow``'s time to first reach ``threshold`` over ``fast``'s, and what the number is.

    "measured": both reached it. "lower bound": only ``fast`` did; ``slow`` had not by its last
    point, so its time is more than that point's and the ratio at least last / fast. "upper
    bound": only ``slow`` did; the ratio is at most slow / ``fast``'s last point. "not reached":
    neither did (or a curve is empty), no ratio.
    """
    a, b = first_reach(slow, threshold), first_reach(fast, threshold)
    if a is not None and b is not None:
        kind, num, den = "measured", a[time_key], b[time_key]
    elif b is not None and slow:
        kind, num, den = "lower bound", slow[-1][time_key], b[time_key]
    elif a is not None and fast:
        kind, num, den = "upper bound", a[time_key], fast[-1][time_key]
    else:
        return None, "not reached"
    if num <= 0 or den <= 0:
        return None, kind
    return num / den, kind


# --------------------------------------------------------------------------- outputs


def curves_csv(curves: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["model", "recipe", *CURVE_FIELDS])
    for curve in curves:
        for point in curve["points"]:
            writer.writerow([curve["model"], curve["recipe"], *(point[f] for f in CURVE_FIELDS)])
    return out.getvalue()


def write_outputs(
    curves: Sequence[dict[str, Any]],
    out_dir: Path,
    thresholds: Sequence[float] = THRESHOLDS,
    slow: str = RECIPES[0],
) -> list[Path]:
    """``convergence_curves.csv`` and ``convergence.png`` in ``out_dir``; returns their paths."""
    from ecgfusion.io import atomic_write_text

    csv_path = atomic_write_text(out_dir / CURVES_FILE, curves_csv(curves))
    return [csv_path, plot_curves(curves, out_dir / PLOT_FILE, thresholds, slow)]


def plot_curves(
    curves: Sequence[dict[str, Any]],
    path: Path,
    thresholds: Sequence[float] = THRESHOLDS,
    slow: str = RECIPES[0],
) -> Path:
    """2 x 2 panels: val accuracy and macro-F1 against training seconds (top) and epochs
    (bottom); a colour per model, the ``slow`` recipe dashed, the other solid; the accuracy
    thresholds as dotted lines on the accuracy panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ecgfusion.io import atomic_path

    colours = {model: f"C{i}" for i, model in enumerate(MODELS)}
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), sharey="col")
    panels = (
        (axes[0, 0], "train_s", "val_acc", "training time (s, validations excluded)"),
        (axes[0, 1], "train_s", "val_macro_f1", "training time (s, validations excluded)"),
        (axes[1, 0], "epoch", "val_acc", "epochs"),
        (axes[1, 1], "epoch", "val_macro_f1", "epochs"),
    )
    for ax, xkey, ykey, xlabel in panels:
        for curve in curves:
            points = curve["points"]
            if not points:
                continue
            ax.plot(
                [p[xkey] for p in points],
                [p[ykey] for p in points],
                linestyle="--" if curve["recipe"] == slow else "-",
                marker=".",
                color=colours.get(curve["model"], "k"),
                label=f"{curve['model']}, {curve['recipe']}",
            )
        if ykey == "val_acc":
            for threshold in thresholds:
                ax.axhline(threshold, color="grey", linestyle=":", linewidth=1)
                ax.annotate(
                    f"{threshold:.0%}",
                    (1.0, threshold),
                    xycoords=("axes fraction", "data"),
                    xytext=(2, 0),
                    textcoords="offset points",
                    fontsize=7,
                    color="grey",
                    va="center",
                )
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation " + ("accuracy" if ykey == "val_acc" else "macro-F1"))
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Time to accuracy on MIT-BIH (beat-random): {slow} recipe dashed")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
