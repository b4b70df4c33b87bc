"""The Noam schedule: warm-up, peak and decay as in "Attention is all you need"."""

from __future__ import annotations

import pytest
import torch

from ecgfusion.errors import ConfigError
from ecgfusion.training.schedulers import make_noam, noam_factor, noam_lambda


def test_noam_formula_at_a_few_steps():
    d, warmup = 128, 4000
    assert noam_factor(1, d, warmup) == pytest.approx(d**-0.5 * warmup**-1.5)
    assert noam_factor(2000, d, warmup) == pytest.approx(d**-0.5 * 2000 * warmup**-1.5)
    assert noam_factor(warmup, d, warmup) == pytest.approx((d * warmup) ** -0.5)
    assert noam_factor(16000, d, warmup) == pytest.approx(d**-0.5 * 16000**-0.5)
    steps = range(1, 3 * warmup)
    assert max(steps, key=lambda s: noam_factor(s, d, warmup)) == warmup


def test_lambda_lr_steps_the_schedule_once_per_optimiser_step():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=2.0, betas=(0.9, 0.999))
    scheduler = make_noam(optimizer, d_model=64, warmup=10)
    seen = []
    for _ in range(30):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [2.0 * noam_factor(step, 64, 10) for step in range(1, 31)]
    assert seen == pytest.approx(expected)
    assert seen.index(max(seen)) == 9  # the 10th optimiser step is the peak
    assert noam_lambda(64, 10)(0) == noam_factor(1, 64, 10)


def test_noam_rejects_nonsense():
    with pytest.raises(ConfigError, match="warmup >= 1"):
        noam_lambda(128, 0)
