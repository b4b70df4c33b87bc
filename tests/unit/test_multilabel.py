"""Record-level metrics: thresholds come from validation only; AUROC and F1 by hand.

The example (one class) is built so that tuning on the test part would pick another threshold
(0.5, test F1 6/7) than validation does (0.6, test F1 2/5): a pipeline that peeks at the test
part cannot pass.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ecgfusion.data.ptbxl import PtbxlRecords
from ecgfusion.errors import ShapeError
from ecgfusion.evaluation.multilabel import (
    DEFAULT_THRESHOLD,
    choose_thresholds,
    f1_curve,
    macro_f1,
    record_metrics,
)
from ecgfusion.models.base import ModelOutput
from ecgfusion.training.config import validate_config
from ecgfusion.training.record_data import RecordDataModule
from ecgfusion.training.tasks.record_classification import score_records

VAL_P = [0.9, 0.8, 0.7, 0.6, 0.3, 0.2]
VAL_Y = [1, 1, 0, 1, 0, 0]
TEST_P = [0.95, 0.65, 0.55, 0.5, 0.1]
TEST_Y = [1, 0, 1, 1, 0]


def col(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)[:, None]


def test_f1_curve_by_hand():
    thresholds, f1_pos, f1_neg = f1_curve(torch.tensor(VAL_P), torch.tensor(VAL_Y))
    assert thresholds.tolist() == pytest.approx(VAL_P)
    # TP/FP/FN at ">= t": (1,0,2) (2,0,1) (2,1,1) (3,1,0) (3,2,0) (3,3,0)
    assert f1_pos.tolist() == pytest.approx([2 / 4, 4 / 5, 4 / 6, 6 / 7, 6 / 8, 6 / 9])
    # negatives (3): TN/FN/FP (3,2,0) (3,1,0) (2,1,1) (2,0,1) (1,0,2) (0,0,3)
    assert f1_neg.tolist() == pytest.approx([6 / 8, 6 / 7, 4 / 6, 4 / 5, 2 / 4, 0.0])


def test_tied_scores_are_one_threshold():
    thresholds, f1_pos, _ = f1_curve(torch.tensor([0.7, 0.7, 0.2]), torch.tensor([1, 0, 0]))
    assert thresholds.tolist() == pytest.approx([0.7, 0.2])
    assert f1_pos.tolist() == pytest.approx([2 / 3, 2 / 4])


def test_thresholds_from_validation_differ_from_test_tuned_ones():
    val_t = choose_thresholds(col(VAL_P), col(VAL_Y))
    test_t = choose_thresholds(col(TEST_P), col(TEST_Y))
    assert val_t.tolist() == pytest.approx([0.6])
    assert test_t.tolist() == pytest.approx([0.5])
    # At the validation threshold the test part scores 2/5; tuned on test it would be 6/7.
    assert macro_f1(col(TEST_P), col(TEST_Y), val_t) == pytest.approx(2 / 5)
    assert macro_f1(col(TEST_P), col(TEST_Y), test_t) == pytest.approx(6 / 7)


def test_multilabel_metrics_by_hand():
    val_p = torch.tensor([VAL_P, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]], dtype=torch.float64).T
    val_y = torch.tensor([VAL_Y, [0, 0, 0, 0, 1, 1]], dtype=torch.float64).T
    test_p = torch.tensor([TEST_P, [0.1, 0.9, 0.2, 0.3, 0.4]], dtype=torch.float64).T
    test_y = torch.tensor([TEST_Y, [0, 0, 0, 0, 0]], dtype=torch.float64).T
    thresholds = choose_thresholds(val_p, val_y)
    assert thresholds.tolist() == pytest.approx([0.6, 0.5])
    m = record_metrics(test_p, test_y, thresholds, ["A", "B"])
    # AUROC of A: 4 of the 6 (positive, negative) pairs ranked right; B has no positive.
    assert m["per_class"]["A"]["auroc"] == pytest.approx(4 / 6)
    assert m["per_class"]["B"]["auroc"] is None
    assert m["macro_auroc"] == pytest.approx(4 / 6)
    # A: TP 1, FP 1, FN 2 -> F1 2/5; B: never true, predicted once -> F1 0.
    assert m["per_class"]["A"]["f1"] == pytest.approx(2 / 5)
    assert m["per_class"]["B"]["f1"] == 0.0 and m["per_class"]["B"]["sensitivity"] is None
    assert m["macro_f1"] == pytest.approx(1 / 5)
    assert m["subset_accuracy"] == pytest.approx(2 / 5)  # records 1 and 5 are all right
    assert m["thresholds"] == pytest.approx({"A": 0.6, "B": 0.5})


def test_binary_threshold_maximises_macro_f1_and_accuracy_by_hand():
    # Balanced objective: t=0.8 and t=0.6 tie at (4/5 + 6/7) / 2; the higher one wins.
    t = choose_thresholds(col(VAL_P), col(VAL_Y), balanced=True)
    assert t.tolist() == pytest.approx([0.8])
    m = record_metrics(col(TEST_P), col(TEST_Y), t, ["normal", "abnormal"], binary=True)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["per_class"]["abnormal"]["f1"] == pytest.approx(2 / 4)
    assert m["per_class"]["normal"]["f1"] == pytest.approx(4 / 6)
    assert m["macro_f1"] == pytest.approx((2 / 4 + 4 / 6) / 2)
    assert m["confusion_matrix"] == [[2, 0], [2, 1]]
    assert m["macro_auroc"] == pytest.approx(4 / 6)


def test_class_without_both_labels_keeps_default_threshold():
    t = choose_thresholds(col([0.2, 0.9]), col([0, 0]))
    assert t.tolist() == [DEFAULT_THRESHOLD]


def test_shape_errors_say_expected_and_got():
    with pytest.raises(ShapeError, match=r"\[n, classes\].*\(3, 2\) and \(3, 1\)"):
        choose_thresholds(torch.zeros(3, 2), torch.zeros(3, 1))
    with pytest.raises(ShapeError, match="need 2 thresholds"):
        macro_f1(torch.zeros(3, 2), torch.zeros(3, 2), torch.tensor([0.5]))


class ScoresFromMeta(nn.Module):
    """Stand-in model whose probabilities are the first metadata columns."""

    n_classes = 5
    inputs = ("x", "meta")

    def forward(self, x, meta):
        return ModelOutput(torch.logit(meta[:, :5].double()).float(), meta)


def test_score_records_takes_thresholds_from_the_validation_part():
    probs = np.full((2 + len(VAL_P) + len(TEST_P), 10), 0.5, dtype=np.float32)
    targets = np.zeros((len(probs), 5), dtype=np.float32)
    probs[2:8, 0], targets[2:8, 0] = VAL_P, VAL_Y
    probs[8:, 0], targets[8:, 0] = TEST_P, TEST_Y
    targets[:, 1] = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]
    n = len(probs)
    records = PtbxlRecords(
        signal=np.zeros((n, 12, 1000), dtype=np.float32),
        metadata=probs,
        targets=targets,
        binary=np.ones(n, dtype=np.int64),
        ecg_id=np.arange(1, n + 1),
        patient_id=np.arange(1, n + 1),
        strat_fold=np.array([1, 2] + [9] * 6 + [10] * 5),
        fs=100.0,
    )
    config = validate_config(
        {
            "data": {"dataset": "ptbxl", "task": "superclasses", "protocol": "strat-fold"},
            "model": {"name": "multimodal"},
            "trainer": {"accelerator": "cpu", "eval_batch_size": 4},
        }
    )
    dm = RecordDataModule(records, "superclasses", batch_size=4, eval_batch_size=4)
    test, val, _ = score_records(ScoresFromMeta(), dm, config)
    assert test["thresholds"]["NORM"] == pytest.approx(0.6, abs=1e-6)  # not 0.5 (test-tuned)
    assert test["per_class"]["NORM"]["f1"] == pytest.approx(2 / 5)
    assert val["per_class"]["NORM"]["f1"] == pytest.approx(6 / 7)
    assert test["per_class"]["NORM"]["auroc"] == pytest.approx(4 / 6)
