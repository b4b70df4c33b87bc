"""Figures of a run: learning curves (as the paper's Figs. 3-14) and the confusion matrix.

Matplotlib runs on the Agg backend so plotting works on a headless machine and in tests.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ecgfusion.io import atomic_path  # noqa: E402

CURVES_FILE = "learning_curves.png"
CONFUSION_FILE = "confusion_matrix.png"


def _version_number(path: Path) -> int:
    match = re.search(r"(\d+)$", path.parent.name)
    return int(match.group(1)) if match else -1


def epoch_history(log_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per epoch from the CSV logs of every training session of a run.

    A resumed run writes a new ``version_N`` folder; a later session's value for an epoch wins, so
    the epoch cut short by a kill is replaced by its rerun.
    """
    files = sorted(Path(log_dir).glob("version_*/metrics.csv"), key=_version_number)
    frames = []
    for order, file in enumerate(files):
        frame = pd.read_csv(file)
        if "epoch" not in frame or frame.empty:
            continue
        frame["_session"] = order
        frames.append(frame)
    if not frames:
        return pd.DataFrame()
    log = pd.concat(frames, ignore_index=True).dropna(subset=["epoch"])
    log["epoch"] = log["epoch"].astype(int)
    metric_cols = [c for c in log.columns if c not in ("epoch", "step", "_session")]
    rows = {}
    for epoch, group in log.groupby("epoch", sort=True):
        last = group[group["_session"] == group["_session"].max()]
        rows[epoch] = {c: last[c].dropna().iloc[-1] for c in metric_cols if last[c].notna().any()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("epoch")


def _save(fig: plt.Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_learning_curves(
    history: pd.DataFrame, path: str | os.PathLike, title: str = ""
) -> Path | None:
    """Train/validation loss and accuracy per epoch; None when nothing was logged."""
    panels = [
        ("Loss", "train_loss", "val_loss"),
        ("Accuracy", "train_acc", "val_acc"),
    ]
    if history.empty or not any(c in history for _, *cols in panels for c in cols):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = history.index.to_numpy() + 1
    for ax, (name, train_col, val_col) in zip(axes, panels, strict=True):
        for col, label in ((train_col, "train"), (val_col, "validation")):
            if col in history:
                values = history[col].to_numpy(dtype=float)
                ax.plot(epochs, values, marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name.lower())
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, Path(path))


def plot_confusion_matrix(
    confusion: Sequence[Sequence[int]],
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str = "",
) -> Path:
    """Counts in the cells, colour by row share (sensitivity), so rare classes stay visible."""
    counts = np.asarray(confusion, dtype=np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    size = 1.2 + 0.8 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, labels=list(class_names))
    ax.set_yticks(ticks, labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            colour = "white" if share[i, j] > 0.5 else "black"
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", color=colour, fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, Path(path))
