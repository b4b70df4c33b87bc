"""Record-level metrics: macro AUROC, and F1 at thresholds chosen on validation only.

A multi-label model's scores need a decision threshold per class, and the best one depends on
each class's prevalence. Choosing it on the test part would report a score no user could get on
new data, so :func:`choose_thresholds` only ever sees validation scores and the test part is
scored at those thresholds. AUROC is threshold-free and comes from torchmetrics.

Scores are probabilities [n, C] with {0, 1} targets [n, C]. The binary task is one column,
P(abnormal), judged as two classes (normal, abnormal): its threshold maximises their macro-F1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torchmetrics.functional.classification import binary_auroc

from ecgfusion.errors import ShapeError
from ecgfusion.evaluation.report import (
    METRICS_FILE,
    REPORT_FILE,
    format_value,
    markdown_table,
    mean_of_known,
)
from ecgfusion.io import atomic_write_text

#: Threshold where a class cannot be tuned (no positive or no negative validation example).
DEFAULT_THRESHOLD = 0.5


def _check(probs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    probs, targets = probs.detach().double().cpu(), targets.detach().double().cpu()
    if probs.ndim != 2 or probs.shape != targets.shape:
        raise ShapeError(
            f"probabilities and targets must both be [n, classes], got {tuple(probs.shape)} "
            f"and {tuple(targets.shape)}"
        )
    if len(probs) == 0:
        raise ShapeError("cannot compute metrics on an empty part")
    return probs, targets


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """num / den, 0 where den is 0 (F1 of a class never predicted and never true)."""
    return torch.where(den > 0, num / den.clamp(min=1e-12), torch.zeros_like(num))


def f1_curve(scores: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(thresholds, F1 of the positives, F1 of the negatives) for "positive when score >= t".

    The candidate thresholds are the distinct scores, highest first: any other threshold gives
    the same predictions as one of them on these scores.
    """
    order = torch.argsort(scores, descending=True, stable=True)
    s, y = scores[order].double(), targets[order].double()
    # The last position of each run of equal scores: a threshold cannot split ties.
    last = torch.ones(len(s), dtype=torch.bool)
    last[:-1] = s[:-1] != s[1:]
    tp, fp = torch.cumsum(y, 0)[last], torch.cumsum(1 - y, 0)[last]
    pos = y.sum()
    fn, tn = pos - tp, (len(y) - pos) - fp
    return s[last], _ratio(2 * tp, 2 * tp + fp + fn), _ratio(2 * tn, 2 * tn + fn + fp)


def choose_thresholds(probs: Tensor, targets: Tensor, balanced: bool = False) -> Tensor:
    """Per class, the validation score that maximises F1 (ties: the highest threshold).

    ``balanced`` maximises the mean F1 of positives and negatives instead (the binary task's
    macro-F1). A class without both positive and negative examples keeps DEFAULT_THRESHOLD.
    Pass validation scores only.
    """
    probs, targets = _check(probs, targets)
    out = torch.full((probs.shape[1],), DEFAULT_THRESHOLD, dtype=torch.float64)
    for c in range(probs.shape[1]):
        n_pos = int(targets[:, c].sum())
        if n_pos == 0 or n_pos == len(targets):
            continue
        thresholds, f1_pos, f1_neg = f1_curve(probs[:, c], targets[:, c])
        objective = (f1_pos + f1_neg) / 2 if balanced else f1_pos
        out[c] = thresholds[int(torch.argmax(objective))]
    return out


def per_class_auroc(probs: Tensor, targets: Tensor) -> list[float | None]:
    """AUROC of each column; None for a column without both positives and negatives."""
    probs, targets = _check(probs, targets)
    n_pos = targets.sum(dim=0)
    usable = (n_pos > 0) & (n_pos < len(targets))
    return [
        float(binary_auroc(probs[:, c].float(), targets[:, c].long())) if ok else None
        for c, ok in enumerate(usable.tolist())
    ]


def _counts(preds: Tensor, targets: Tensor) -> dict[str, Tensor]:
    return {
        "tp": (preds * targets).sum(0),
        "fp": (preds * (1 - targets)).sum(0),
        "fn": ((1 - preds) * targets).sum(0),
    }


def _class_stats(tp: float, fp: float, fn: float) -> dict[str, Any]:
    """Sensitivity, PPV and F1 of one class; None where undefined (never true / never predicted)."""
    support, predicted = tp + fn, tp + fp
    return {
        "support": int(support),
        "predicted": int(predicted),
        "sensitivity": tp / support if support else None,
        "ppv": tp / predicted if predicted else None,
        "f1": 2 * tp / (support + predicted) if support + predicted else None,
    }


def macro_f1(probs: Tensor, targets: Tensor, thresholds: Tensor, binary: bool = False) -> float:
    """Macro-F1 at ``thresholds``; for ``binary`` the mean F1 of normal and abnormal."""
    return _thresholded(probs, targets, thresholds, binary)["macro_f1"]


def _thresholded(
    probs: Tensor, targets: Tensor, thresholds: Tensor, binary: bool
) -> dict[str, Any]:
    probs, targets = _check(probs, targets)
    thresholds = torch.as_tensor(thresholds, dtype=torch.float64).reshape(-1)
    if len(thresholds) != probs.shape[1]:
        raise ShapeError(f"need {probs.shape[1]} thresholds (one per class), got {len(thresholds)}")
    if binary and probs.shape[1] != 1:
        raise ShapeError(f"the binary task has one score column, P(abnormal); got {probs.shape[1]}")
    preds = (probs >= thresholds).double()
    if binary:
        # Two classes from one column: "normal" is the complement of "abnormal".
        preds, targets = torch.cat([1 - preds, preds], 1), torch.cat([1 - targets, targets], 1)
    counts = _counts(preds, targets)
    stats = [
        _class_stats(float(counts["tp"][c]), float(counts["fp"][c]), float(counts["fn"][c]))
        for c in range(preds.shape[1])
    ]
    out: dict[str, Any] = {"stats": stats, "macro_f1": mean_of_known([s["f1"] for s in stats])}
    if binary:
        out["accuracy"] = float((preds[:, 1] == targets[:, 1]).double().mean())
        y, p = targets[:, 1].long(), preds[:, 1].long()
        out["confusion_matrix"] = [
            [int(((y == t) & (p == q)).sum()) for q in (0, 1)] for t in (0, 1)
        ]
    else:
        out["subset_accuracy"] = float((preds == targets).all(dim=1).double().mean())
    return out


def record_metrics(
    probs: Tensor,
    targets: Tensor,
    thresholds: Tensor,
    class_names: Sequence[str],
    binary: bool = False,
) -> dict[str, Any]:
    """All metrics of one part as a JSON-able dict, at the given (validation-chosen) thresholds.

    ``class_names`` are the score columns' names, or (normal, abnormal) for ``binary``.
    """
    thresholds = torch.as_tensor(thresholds, dtype=torch.float64).reshape(-1)
    at = _thresholded(probs, targets, thresholds, binary)
    default = _thresholded(probs, targets, torch.full_like(thresholds, DEFAULT_THRESHOLD), binary)
    auroc = per_class_auroc(probs, targets)
    names = list(class_names)
    if len(names) != len(at["stats"]):
        raise ShapeError(f"got {len(names)} class names for {len(at['stats'])} classes")
    per_class = {name: dict(stats) for name, stats in zip(names, at["stats"], strict=True)}
    if binary:
        # One ROC curve: P(abnormal) ranks the abnormal records above the normal ones.
        per_class[names[1]]["auroc"] = auroc[0]
        per_class[names[1]]["threshold"] = float(thresholds[0])
        threshold_map = {f"P({names[1]})": float(thresholds[0])}
    else:
        for name, value, t in zip(names, auroc, thresholds.tolist(), strict=True):
            per_class[name]["auroc"] = value
            per_class[name]["threshold"] = t
        threshold_map = dict(zip(names, thresholds.tolist(), strict=True))
    out: dict[str, Any] = {
        "n": len(probs),
        "class_names": names,
        "macro_auroc": mean_of_known(auroc),
        "macro_f1": at["macro_f1"],
        "macro_f1_at_0.5": default["macro_f1"],
        "thresholds": threshold_map,
        "per_class": per_class,
    }
    for key in ("accuracy", "subset_accuracy", "confusion_matrix"):
        if key in at:
            out[key] = at[key]
    if "accuracy" in default:
        out["accuracy_at_0.5"] = default["accuracy"]
    return out


# --------------------------------------------------------------------------- report


#: Scalar metrics of a record run, in table order, with their display names.
RECORD_HEADLINE = (
    ("macro_auroc", "Macro AUROC"),
    ("macro_f1", "Macro-F1 (validation-chosen thresholds)"),
    ("accuracy", "Accuracy (validation-chosen threshold)"),
    ("subset_accuracy", "Exact-match accuracy (validation-chosen thresholds)"),
    ("macro_f1_at_0.5", "Macro-F1 at threshold 0.5"),
    ("accuracy_at_0.5", "Accuracy at threshold 0.5"),
)


def record_headline(metrics: dict[str, Any]) -> list[tuple[str, float]]:
    """(display name, value) of the scalar metrics this run has."""
    return [(name, metrics[key]) for key, name in RECORD_HEADLINE if key in metrics]


def render_record_report(result: dict[str, Any]) -> str:
    """report.md of a record run from the dict metrics.json holds."""
    data, metrics, run = result["data"], result["metrics"], result.get("run", {})
    timing = result.get("timing", {})
    out = [
        f"# {run.get('model', 'model')} on {data['dataset']} ({data['task']}) — "
        f"{data['split_label']}",
        "",
        f"**{data['note']}**",
        "",
        f"- Task: `{data['task']}` — {data['task_label']}",
        f"- Branches: {', '.join(run.get('branches', [])) or 'n/a'}; loss: {run.get('loss')}",
        f"- Input: {data['n_leads']} leads × {data['n_samples']} samples "
        f"({data['sampling_rate']:g} Hz), {data['n_meta']} metadata features",
        f"- Training seed `{run.get('seed')}`, best epoch {run.get('best_epoch')} "
        f"(validation macro-F1 at its own thresholds {format_value(run.get('best_val_macro_f1'))})",
        "- Thresholds are chosen on the validation part (fold 9) only, then applied to the test "
        "part (fold 10).",
        "",
        "## Records per part",
        "",
    ]
    parts = list(data["counts"])
    classes = list(next(iter(data["counts"].values())))
    out.append(
        markdown_table(
            ["Class", *parts], [[c, *(data["counts"][p][c] for p in parts)] for c in classes]
        )
    )
    out += ["", f"## Test metrics (n = {metrics['n']})", ""]
    out.append(markdown_table(["Metric", "Value"], record_headline(metrics)))
    out += ["", "## Per class (test, at the validation-chosen thresholds)", ""]
    rows = [
        [
            name,
            pc["support"],
            pc["predicted"],
            pc.get("auroc"),
            pc.get("threshold"),
            pc["sensitivity"],
            pc["ppv"],
            pc["f1"],
        ]
        for name, pc in metrics["per_class"].items()
    ]
    headers = ["Class", "Support", "Predicted", "AUROC", "Threshold", "Sensitivity", "PPV", "F1"]
    out.append(markdown_table(headers, rows))
    validation = result.get("validation")
    if validation:
        out += ["", "## Validation (where the thresholds come from)", ""]
        out.append(markdown_table(["Metric", "Value"], record_headline(validation)))
    if timing:
        out += ["", "## Timing", ""]
        rows = [
            ["Training (s)", _seconds(timing.get("train_seconds"))],
            ["Epochs trained", timing.get("epochs_trained")],
            ["Test inference (s)", _seconds(timing.get("test_inference_seconds"))],
            ["Device", timing.get("device")],
            ["Torch threads", timing.get("torch_threads")],
        ]
        out.append(markdown_table(["What", "Value"], [r for r in rows if r[1] is not None]))
    figures = [f for f in result.get("figures", []) if f]
    if figures:
        out += ["", "## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures]
    return "\n".join(out) + "\n"


def _seconds(value: float | None) -> str | None:
    return None if value is None else f"{value:,.1f}"


def write_record_report(run_dir: str | os.PathLike, result: dict[str, Any]) -> None:
    run_dir = Path(run_dir)
    atomic_write_text(run_dir / METRICS_FILE, json.dumps(result, indent=2) + "\n")
    atomic_write_text(run_dir / REPORT_FILE, render_record_report(result))
