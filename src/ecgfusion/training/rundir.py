"""The run folder: its file names, when a new run may write into it, what a resume continues,
and the seed sub-folders. A run folder holds everything needed to judge, resume or reuse a run::

    config.yaml            the resolved config (what --resume and evaluate read back)
    checkpoints/best.ckpt  best validation macro-F1;  checkpoints/last.ckpt  end of the last epoch
    model.pt               best weights via ecgfusion.models.save_model (fusion configs load it)
    metrics.json report.md learning_curves.png confusion_matrix.png   logs/version_N/metrics.csv
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ecgfusion.errors import ConfigError, DataError
from ecgfusion.evaluation.plots import (
    CONFUSION_FILE,
    CURVES_FILE,
    epoch_history,
    plot_confusion_matrix,
    plot_learning_curves,
)
from ecgfusion.evaluation.report import METRICS_FILE, read_metrics
from ecgfusion.training.config import (
    CONFIG_FILE,
    RESUMABLE_KEYS,
    RUNTIME_KEYS,
    RunConfig,
    config_differences,
    load_config,
)

MODEL_FILE = "model.pt"
CHECKPOINT_DIR = "checkpoints"
LAST_CKPT = "last.ckpt"
BEST_NAME = "best"
LOG_DIR = "logs"
METRICS_FORMAT = "ecgfusion-metrics/1"


def model_file(run_dir: Path) -> Path:
    file = run_dir / MODEL_FILE
    if not file.is_file():
        raise DataError(
            f"{file} not found: the run did not finish; continue it with "
            f"'ecgfusion train --resume {run_dir}'"
        )
    return file


def finished_result(run_dir: Path, config: RunConfig) -> dict[str, Any] | None:
    """The stored result when this exact config already finished in ``run_dir``."""
    metrics_file, config_file = run_dir / METRICS_FILE, run_dir / CONFIG_FILE
    if not (metrics_file.is_file() and config_file.is_file()):
        return None
    if config_differences(load_config(config_file), config):
        return None
    return read_metrics(run_dir)


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """A resume needs the folder; a new run must not write into someone else's results."""
    if resume:
        if not run_dir.is_dir():
            raise DataError(f"run folder {run_dir} does not exist; nothing to resume")
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run folder {run_dir} is a file; choose another --run-dir")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise ConfigError(
            f"run folder {run_dir} is not empty; continue it with 'ecgfusion train --resume "
            f"{run_dir}' or choose another --run-dir"
        )


def resume_point(run_dir: Path, config: RunConfig, resume: bool) -> dict[str, Any] | None:
    """On a resume, the stored result when this exact config already finished; otherwise None,
    once it is sure there is a last checkpoint to continue from."""
    if not resume:
        return None
    check_resumable(run_dir, config)
    finished = finished_result(run_dir, config)
    if finished is not None:
        return finished
    last = run_dir / CHECKPOINT_DIR / LAST_CKPT
    if not last.is_file():
        raise DataError(
            f"{last} not found: the run stopped before its first epoch ended; start it again"
        )
    return None


def check_resumable(run_dir: Path, config: RunConfig) -> None:
    """A resume continues the checkpoint's weights, optimiser and schedule state: a change to
    anything but the budget (or where it runs) would be recorded and silently not applied."""
    stored = run_dir / CONFIG_FILE
    if not stored.is_file():
        return
    changed = config_differences(load_config(stored), config, RUNTIME_KEYS + RESUMABLE_KEYS)
    if changed:
        raise ConfigError(
            f"--resume {run_dir}: {', '.join(changed)} cannot change on a resume (the checkpoint "
            "holds the weights, optimiser and schedule of the stored config; a resume may change "
            f"only {', '.join(RESUMABLE_KEYS)}): start a new run, with "
            f"--set model.init_from={run_dir} to begin from this run's weights"
        )


def write_figures(
    run_dir: Path, title: str, metrics: dict[str, Any], class_names: Sequence[str]
) -> list[str]:
    """Learning curves (from the CSV logs) and, when the metrics have one, the confusion matrix."""
    figures = []
    if plot_learning_curves(epoch_history(run_dir / LOG_DIR), run_dir / CURVES_FILE, title):
        figures.append(CURVES_FILE)
    if "confusion_matrix" in metrics:
        plot_confusion_matrix(
            metrics["confusion_matrix"], class_names, run_dir / CONFUSION_FILE, title
        )
        figures.append(CONFUSION_FILE)
    return figures


def seed_dir(run_dir: Path, seed: int) -> Path:
    return run_dir / f"seed_{seed}"


def read_run_config(run_dir: Path) -> RunConfig:
    if not run_dir.is_dir():
        raise DataError(f"run folder {run_dir} does not exist")
    file = run_dir / CONFIG_FILE
    if not file.is_file():
        raise DataError(f"{file} not found; {run_dir} is not an ecgfusion run folder")
    return load_config(file)
