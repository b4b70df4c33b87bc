"""In-memory batching, class weights and the seeds summary, on synthetic tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgfusion.evaluation.report import render_summary, summarise
from ecgfusion.training.datamodule import SliceSampler, batch_loader, class_weights


def test_slices_cover_every_row_once_in_a_seeded_order():
    sampler = SliceSampler(10, 4, shuffle=True, seed=3)
    epoch0 = list(sampler)
    assert [len(b) for b in epoch0] == [4, 4, 2] and len(sampler) == 3
    assert sorted(torch.cat(epoch0).tolist()) == list(range(10))
    assert [b.tolist() for b in SliceSampler(10, 4, True, 3)] == [b.tolist() for b in epoch0]
    sampler.set_epoch(1)
    assert torch.cat(list(sampler)).tolist() != torch.cat(epoch0).tolist()
    assert torch.cat(list(SliceSampler(5, 2, shuffle=False))).tolist() == [0, 1, 2, 3, 4]


def test_loader_yields_sliced_batches():
    x = torch.arange(14, dtype=torch.float32).reshape(7, 2)
    y = torch.arange(7)
    batches = list(batch_loader(x, y, 3, shuffle=True, seed=0))
    assert [len(b[1]) for b in batches] == [3, 3, 1]
    for xb, yb in batches:
        assert torch.equal(xb, x[yb])  # rows and labels stay paired


def test_class_weights_are_inverse_frequency():
    # counts 6, 3, 1, 0 of n = 10 over C = 4: w_c = 10 / (4 * count_c); absent class -> 0
    labels = np.array([0] * 6 + [1] * 3 + [2])
    expected = [10 / 24, 10 / 12, 10 / 4, 0.0]
    assert class_weights(labels, 4).tolist() == pytest.approx(expected)


def test_summary_mean_and_sample_std():
    def result(acc):
        return {
            "data": {"dataset": "mitdb", "protocol": "beat-random", "split_label": "LABEL",
                     "method": "kachuee"},
            "run": {"model": "m"},
            "metrics": {"accuracy": acc, "macro_f1": 0.5, "weighted_f1": 0.5, "mcc": 0.1,
                        "auroc_macro_ovr": None},
        }

    summary = summarise({1: result(0.8), 2: result(0.9), 3: result(1.0)})
    # mean 0.9; sample std sqrt(((-0.1)^2 + 0 + 0.1^2) / 2) = 0.1
    assert summary["metrics"]["accuracy"] == pytest.approx({"mean": 0.9, "std": 0.1, "n": 3})
    assert "auroc_macro_ovr" not in summary["metrics"]  # no value in any seed
    text = render_summary(summary)
    assert "LABEL" in text and "0.9000 ± 0.1000" in text
