"""Test metrics against values worked out by hand on small confusion matrices."""

from __future__ import annotations

import math

import pytest
import torch

from ecgfusion.data.labels import AAMI_CLASSES
from ecgfusion.errors import ShapeError
from ecgfusion.evaluation.metrics import classification_metrics, headline


def from_confusion(confusion: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, targets) whose argmax reproduces ``confusion`` (rows true, columns predicted)."""
    targets, preds = [], []
    for true, row in enumerate(confusion):
        for pred, count in enumerate(row):
            targets += [true] * count
            preds += [pred] * count
    logits = 4.0 * torch.nn.functional.one_hot(torch.tensor(preds), len(confusion)).float()
    return logits, torch.tensor(targets)


# Rows true a, b, c; columns predicted a, b, c.
#         a  b  c   | support
#   a  [  5, 1, 0 ] |  6
#   b  [  2, 3, 1 ] |  6
#   c  [  0, 1, 4 ] |  5
#   predicted 7  5  5  -> n = 17, correct = 5 + 3 + 4 = 12
CONFUSION = [[5, 1, 0], [2, 3, 1], [0, 1, 4]]


def test_three_class_confusion_by_hand():
    m = classification_metrics(*from_confusion(CONFUSION), ["a", "b", "c"])
    assert m["confusion_matrix"] == CONFUSION
    assert m["n"] == 17
    assert m["accuracy"] == pytest.approx(12 / 17)
    # sensitivity = TP / support: 5/6, 3/6, 4/5 ; PPV = TP / predicted: 5/7, 3/5, 4/5
    pc = m["per_class"]
    assert [pc[c]["sensitivity"] for c in "abc"] == pytest.approx([5 / 6, 1 / 2, 4 / 5])
    assert [pc[c]["ppv"] for c in "abc"] == pytest.approx([5 / 7, 3 / 5, 4 / 5])
    # F1 = 2TP / (2TP + FP + FN): a 10/(10+2+1) = 10/13, b 6/(6+2+3) = 6/11, c 8/(8+1+1) = 4/5
    f1 = [10 / 13, 6 / 11, 4 / 5]
    assert [pc[c]["f1"] for c in "abc"] == pytest.approx(f1)
    assert m["macro_f1"] == pytest.approx(sum(f1) / 3)  # 0.70490
    assert m["weighted_f1"] == pytest.approx((6 * f1[0] + 6 * f1[1] + 5 * f1[2]) / 17)
    # Multiclass MCC (Gorodkin): (c*s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2))
    # c = 12, s = 17, t = (6, 6, 5), p = (7, 5, 5): (204 - 97) / sqrt((289 - 99)(289 - 97))
    assert m["mcc"] == pytest.approx(107 / math.sqrt(190 * 192), abs=1e-6)  # 0.56022
    assert [pc[c]["support"] for c in "abc"] == [6, 6, 5]
    assert [pc[c]["predicted"] for c in "abc"] == [7, 5, 5]
    assert "aami" not in m


def test_probabilities_and_logits_agree():
    logits, targets = from_confusion(CONFUSION)
    from_logits = classification_metrics(logits, targets, ["a", "b", "c"])
    from_probs = classification_metrics(torch.softmax(logits, 1), targets, ["a", "b", "c"])
    assert from_logits == from_probs


def test_auroc_by_hand():
    # Class 1 scores of the two positives 0.9, 0.4 and of the two negatives 0.6, 0.1:
    # of the 4 (positive, negative) pairs, 3 are ranked right -> AUROC 3/4. Class 0 uses
    # 1 - p, the same ranking reversed with the roles swapped: also 3/4.
    p1 = torch.tensor([0.9, 0.4, 0.6, 0.1])
    probs = torch.stack([1 - p1, p1], dim=1)
    targets = torch.tensor([1, 1, 0, 0])
    metrics = classification_metrics(probs, targets, ["n", "p"])
    assert metrics["auroc_macro_ovr"] == pytest.approx(0.75)


def test_absent_class_is_left_out_not_zero():
    # Class c is neither true nor predicted: macro-F1 averages a and b only.
    #   a [1, 1, 0]   F1 a = 2/(2+0+1) = 2/3 ; F1 b = 4/(4+1+0) = 4/5
    #   b [0, 2, 0]
    #   c [0, 0, 0]
    m = classification_metrics(*from_confusion([[1, 1, 0], [0, 2, 0], [0, 0, 0]]), ["a", "b", "c"])
    assert m["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["per_class"]["c"] == {
        "support": 0, "predicted": 0, "sensitivity": None, "ppv": None, "f1": None,
    }
    # AUROC, one-vs-rest with ties counting 1/2: class a has positives scored (high, low) and
    # negatives (low, low): pairs 1 + 1 + 1/2 + 1/2 = 3 of 4. Class b: positives (high, high),
    # negatives (low, high): also 3/4. Class c has no positive and is left out: macro = 3/4.
    assert m["auroc_macro_ovr"] == pytest.approx(0.75)


def test_aami_view_for_five_classes():
    #        N  S  V  F  Q
    conf = [[8, 1, 1, 0, 0],   # N
            [2, 3, 0, 0, 0],   # S: sensitivity 3/5, +P 3/(3+1+1) = 3/5
            [0, 1, 4, 0, 0],   # V: sensitivity 4/5, +P 4/(4+1+1) = 2/3
            [0, 0, 1, 1, 0],   # F
            [0, 0, 0, 0, 0]]   # Q absent
    m = classification_metrics(*from_confusion(conf), AAMI_CLASSES)
    assert m["aami"] == pytest.approx(
        {"sveb_sensitivity": 3 / 5, "sveb_ppv": 3 / 5, "veb_sensitivity": 4 / 5, "veb_ppv": 2 / 3}
    )
    flat = headline(m)
    assert flat["veb_ppv"] == pytest.approx(2 / 3) and flat["accuracy"] == pytest.approx(16 / 22)


def test_shape_errors():
    with pytest.raises(ShapeError, match=r"\[n, 3\]"):
        classification_metrics(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), "abc")
    with pytest.raises(ShapeError, match="targets"):
        classification_metrics(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long), "abc")
    with pytest.raises(ShapeError, match="empty"):
        classification_metrics(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), "abc")
