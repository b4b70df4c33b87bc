"""Test-set metrics, all from torchmetrics so training logs and reports agree on definitions.

Macro averages skip classes that are neither in the targets nor in the predictions (torchmetrics'
and scikit-learn's convention): a reduced subset without F beats must not score F as 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_auroc,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_matthews_corrcoef,
    multiclass_precision,
    multiclass_recall,
)

from ecgfusion.data.labels import AAMI_CLASSES
from ecgfusion.errors import ShapeError

#: The AAMI EC57 view of a 5-class result: the two arrhythmia groups a clinician looks at.
AAMI_GROUPS = {"sveb": "S", "veb": "V"}


def _check(scores: Tensor, targets: Tensor, n_classes: int) -> None:
    if scores.ndim != 2 or scores.shape[1] != n_classes:
        raise ShapeError(
            f"scores must be [n, {n_classes}] (one column per class), got {tuple(scores.shape)}"
        )
    if targets.ndim != 1 or targets.shape[0] != scores.shape[0]:
        raise ShapeError(
            f"targets must be [n] with n={scores.shape[0]}, got {tuple(targets.shape)}"
        )


def macro_auroc(probs: Tensor, targets: Tensor, n_classes: int) -> float | None:
    """One-vs-rest AUROC averaged over the classes present in the targets.

    A class with no positive (or no negative) example has no ROC curve; it is left out instead of
    counting as 0 or NaN. None when no class has a curve.
    """
    present = torch.bincount(targets, minlength=n_classes)
    usable = (present > 0) & (present < len(targets))
    if not bool(usable.any()):
        return None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No positive samples", category=UserWarning)
        per_class = multiclass_auroc(probs, targets, num_classes=n_classes, average="none")
    return float(per_class[usable].mean())


def classification_metrics(
    scores: Tensor, targets: Tensor, class_names: Sequence[str]
) -> dict[str, Any]:
    """All test metrics of one run as a JSON-able dict.

    ``scores`` are logits or probabilities [n, C] (softmax is applied when rows do not sum to 1);
    predictions are their argmax. Per-class sensitivity is recall, PPV is precision.
    """
    n_classes = len(class_names)
    scores = scores.detach().float().cpu()
    targets = targets.detach().long().cpu()
    _check(scores, targets, n_classes)
    if len(targets) == 0:
        raise ShapeError("cannot compute metrics on an empty test part")
    sums = scores.sum(dim=1)
    is_prob = bool((scores >= 0).all()) and torch.allclose(sums, torch.ones_like(sums), atol=1e-4)
    probs = scores if is_prob else torch.softmax(scores, dim=1)
    preds = probs.argmax(dim=1)
    kw = {"num_classes": n_classes}
    recall = multiclass_recall(preds, targets, average="none", **kw)
    precision = multiclass_precision(preds, targets, average="none", **kw)
    f1 = multiclass_f1_score(preds, targets, average="none", **kw)
    confusion = multiclass_confusion_matrix(preds, targets, **kw)
    support = confusion.sum(dim=1)
    predicted = confusion.sum(dim=0)
    # Undefined ratios (no true beats of a class, or none predicted) are None, not a fake 0.
    per_class = {
        name: {
            "support": int(support[i]),
            "predicted": int(predicted[i]),
            "sensitivity": float(recall[i]) if support[i] > 0 else None,
            "ppv": float(precision[i]) if predicted[i] > 0 else None,
            "f1": float(f1[i]) if support[i] + predicted[i] > 0 else None,
        }
        for i, name in enumerate(class_names)
    }
    out: dict[str, Any] = {
        "n": int(len(targets)),
        "accuracy": float(multiclass_accuracy(preds, targets, average="micro", **kw)),
        "macro_f1": float(multiclass_f1_score(preds, targets, average="macro", **kw)),
        "weighted_f1": float(multiclass_f1_score(preds, targets, average="weighted", **kw)),
        "mcc": float(multiclass_matthews_corrcoef(preds, targets, **kw)),
        "auroc_macro_ovr": macro_auroc(probs, targets, n_classes),
        "class_names": list(class_names),
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
    }
    if tuple(class_names) == AAMI_CLASSES:
        out["aami"] = {
            f"{group}_{stat}": per_class[cls][key]
            for group, cls in AAMI_GROUPS.items()
            for stat, key in (("sensitivity", "sensitivity"), ("ppv", "ppv"))
        }
    return out


#: Scalar metrics in the order tables show them, with their display names.
HEADLINE = (
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro-F1"),
    ("weighted_f1", "Weighted-F1"),
    ("mcc", "MCC"),
    ("auroc_macro_ovr", "Macro AUROC (OvR)"),
)


#: Display names of every key :func:`headline` returns.
METRIC_NAMES: dict[str, str] = {
    **dict(HEADLINE),
    "sveb_sensitivity": "SVEB sensitivity",
    "sveb_ppv": "SVEB +P",
    "veb_sensitivity": "VEB sensitivity",
    "veb_ppv": "VEB +P",
}


def headline(metrics: dict[str, Any]) -> dict[str, float | None]:
    """The scalar metrics (plus AAMI SVEB/VEB when present), flat, for tables and summaries."""
    out: dict[str, float | None] = {key: metrics.get(key) for key, _ in HEADLINE}
    out.update(metrics.get("aami", {}))
    return out
