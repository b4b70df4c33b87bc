"""Ship a trained run as a pretrained model: weights, config, metrics and a JSON model card.

A pretrained folder is a run folder without checkpoints or logs, so everything that reads a run
folder (`evaluate`, `predict`, `export`) reads it too. Machine-specific paths are dropped from the
config: the data is found the usual way (--data-root, $ECGFUSION_DATA, ../shared/datasets).

Publishing is all or nothing: the folder is built in a staging folder of this call's own
(``.<name>.staging-<pid>-<random>``), the model it replaces is renamed aside to
``.<name>.replaced-<UTC time>`` (kept, never deleted: the caller is told where), and only then is
the staging folder renamed into place. Dot-folders are neither listed as models nor packaged.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch

import ecgfusion
from ecgfusion.data.rpeaks import serving_detector
from ecgfusion.errors import DataError
from ecgfusion.inference.loading import PRETRAINED_DIR
from ecgfusion.io import aside_path, atomic_write_text, chmod_as_created

COPIED = ("model.pt", "metrics.json", "report.md", "learning_curves.png", "confusion_matrix.png")


def publish_pretrained(
    run_dir: str | Path,
    name: str,
    preset: str,
    command: str,
    dest: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Publish ``run_dir`` as ``dest/name`` (default: the package's pretrained folder).

    A model already published under ``name`` is kept as the hidden sibling ``log`` names.
    """
    from ecgfusion.training.config import load_config, save_config

    run_dir = Path(run_dir)
    for needed in ("config.yaml", "model.pt", "metrics.json"):
        if not (run_dir / needed).is_file():
            raise DataError(f"{run_dir / needed} is missing; only a finished run can be published")
    config = load_config(run_dir / "config.yaml")
    config.data.data_root = None
    config.data.cache_dir = None
    config.model.init_from = None  # where training started; model.pt holds the trained weights
    if config.model.backbones is not None:
        config.model.backbones = None  # the fusion's model.pt holds its backbones
        config.model.params["freeze"] = config.model.params.get("freeze", True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    target = Path(dest or PRETRAINED_DIR) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    # This call's own staging folder: another one's (a concurrent or killed publish) is not ours.
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.staging-{os.getpid()}-", dir=target.parent))
    placed = False
    try:
        chmod_as_created(staging, 0o777)  # mkdtemp makes it private (0700)
        save_config(config, staging)
        for file in COPIED:
            if (run_dir / file).is_file():
                shutil.copyfile(run_dir / file, staging / file)
        m = metrics["metrics"]
        card = {
            "name": name,
            "model": config.model.name,
            "params": config.model.params,
            "dataset": config.data.dataset,
            "protocol": metrics["data"]["protocol"],
            "split": metrics["data"]["split_label"],
            "class_names": metrics["data"]["class_names"],
            # the R-peak detector predict serves it with (runs from before detectors had names
            # record none: their dataset decides, as it does when serving them)
            "detector": metrics["data"].get("detector")
            or serving_detector(config.data.dataset, None),
            "test_beats": m["n"],
            "metrics": {k: m[k] for k in ("accuracy", "macro_f1", "weighted_f1", "mcc")},
            "aami": m.get("aami"),
            "preset": preset,
            "epochs_trained": metrics["timing"].get("epochs_trained"),
            "train_seconds": metrics["timing"].get("train_seconds"),
            "command": command,
            "ecgfusion_version": ecgfusion.__version__,
            "torch_version": torch.__version__,
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "published": datetime.now(UTC).strftime("%Y-%m-%d"),
        }
        atomic_write_text(staging / "card.json", json.dumps(card, indent=2) + "\n")
        replaced = _swap_into_place(staging, target)
        placed = True
    except BaseException:
        if not placed:
            shutil.rmtree(staging, ignore_errors=True)  # created by this call, never finished
        raise
    if replaced is not None:
        log(f"kept the model that {target} replaced at {replaced}")
    return target


def _swap_into_place(staging: Path, target: Path) -> Path | None:
    """Rename ``staging`` to ``target``; an existing ``target`` is first renamed aside and kept.

    Returns where the replaced folder now is (None when there was none). When the second rename
    fails, the replaced folder is renamed back, so ``target`` is the old model or the new one.
    """
    if not target.exists():
        staging.rename(target)
        return None
    aside = aside_path(target, "replaced", hidden=True)
    target.rename(aside)
    try:
        staging.rename(target)
    except BaseException:
        try:
            aside.rename(target)
        except OSError as exc:
            raise OSError(
                f"publishing {target} failed and the model it replaced could not be put back; "
                f"it is kept at {aside}"
            ) from exc
        raise
    return aside
