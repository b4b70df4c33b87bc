"""Per-class scores of run folders on their validation part (never the test part).

Usage: python valscore.py RUN_DIR [RUN_DIR ...]   (all runs must share one beat set)
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import torch

from ecgfusion.evaluation.metrics import classification_metrics
from ecgfusion.models import load_model
from ecgfusion.training.config import load_config
from ecgfusion.training.scoring import predict_scores
from ecgfusion.training.tasks.select import task_for


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main(runs: list[str]) -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    beats = None
    for run in runs:
        config = load_config(f"{run}/config.yaml")
        task = task_for(config)
        beats = beats if beats is not None else task.load_data(config)
        dm = task.datamodule(config, beats, parts=("train", "val"))
        x, y = dm.tensors["val"]
        scores = predict_scores(load_model(f"{run}/model.pt"), x, 1024, torch.device("cpu"))
        m = classification_metrics(scores, y, dm.class_names)
        pc = m["per_class"]
        f1_nsv = np.mean([pc[c]["f1"] or 0 for c in "NSV"])
        print(
            f"{run}: val acc {m['accuracy']:.4f} macroF1 {m['macro_f1']:.4f} F1(NSV) "
            f"{f1_nsv:.4f} S Se/+P {fmt(pc['S']['sensitivity'])}/{fmt(pc['S']['ppv'])} "
            f"V Se/+P {fmt(pc['V']['sensitivity'])}/{fmt(pc['V']['ppv'])}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
