"""Ship a trained run as a pretrained model: weights, config, metrics and a JSON model card.

A pretrained folder is a run folder without checkpoints or logs, so everything that reads a run
folder (`evaluate`, `predict`, `export`) reads it too. Machine-specific paths are dropped from the
config: the data is found the usual way (--data-root, $ECGFUSION_DATA, ../shared/datasets).
"""

from __future__ import annotations

import json
import platform
import shutil
from datetime import UTC, datetime
from pathlib import Path

import torch

import ecgfusion
from ecgfusion.errors import DataError
from ecgfusion.inference.loading import PRETRAINED_DIR
from ecgfusion.io import atomic_write_text

COPIED = ("model.pt", "metrics.json", "report.md", "learning_curves.png", "confusion_matrix.png")


def publish_pretrained(
    run_dir: str | Path, name: str, preset: str, command: str, dest: str | Path | None = None
) -> Path:
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
    staging = target.with_name(f".{name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
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
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
