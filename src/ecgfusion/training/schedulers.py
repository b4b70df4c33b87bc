"""Learning-rate schedules, all stepped once per optimiser step.

Noam ("Attention is all you need") is the paper's; warm-up + cosine and one-cycle are the
recipes that converge in the few thousand steps a CPU budget allows (issue 12).

The Noam schedule:

lr(step) = base_lr * d_model**-0.5 * min(step**-0.5, step * warmup**-1.5), step counted from 1:
linear warm-up for ``warmup`` steps, peak base_lr * (d_model * warmup)**-0.5 at step == warmup,
then decay as 1/sqrt(step). The paper pairs it with Adam(betas=(0.9, 0.999)); the optimiser is
the trainer's choice, this module only shapes its learning rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from ecgfusion.errors import ConfigError


def noam_factor(step: int, d_model: int = 128, warmup: int = 4000) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (1-based)."""
    step = max(int(step), 1)
    return d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)


def noam_lambda(d_model: int = 128, warmup: int = 4000) -> Callable[[int], float]:
    """``lr_lambda`` for LambdaLR, which passes 0 before the first step: so step = index + 1."""
    if d_model < 1 or warmup < 1:
        raise ConfigError(
            f"noam schedule needs d_model >= 1 and warmup >= 1, got d_model={d_model}, "
            f"warmup={warmup}"
        )

    def factor(index: int) -> float:
        return noam_factor(index + 1, d_model, warmup)

    return factor


def make_noam(optimizer: Optimizer, d_model: int = 128, warmup: int = 4000) -> LambdaLR:
    """LambdaLR stepping once per optimiser step (call ``scheduler.step()`` after each)."""
    return LambdaLR(optimizer, lr_lambda=noam_lambda(d_model, warmup))


def warmup_cosine_factor(step: int, total: int, warmup: int) -> float:
    """Multiplier at 0-based ``step`` of ``total``: linear 0 -> 1 over ``warmup`` steps, then
    half a cosine down to 0 at the last step."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_schedule(
    optimizer: Optimizer,
    name: str,
    total_steps: int,
    warmup_fraction: float = 0.1,
    d_model: int = 128,
    noam_warmup: int = 4000,
) -> LRScheduler:
    """The named schedule over ``total_steps`` optimiser steps; each param group keeps its own
    peak (its lr as configured), so a fusion's backbones can run at a fraction of the head's."""
    total = max(1, int(total_steps))
    if name == "noam":
        return make_noam(optimizer, d_model=d_model, warmup=noam_warmup)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if name == "warmup_cosine":
        warmup = int(round(warmup_fraction * total))
        return LambdaLR(optimizer, lambda step: warmup_cosine_factor(step, total, warmup))
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=total + 1,  # Lightning may step once more at the very end
            pct_start=max(warmup_fraction, 1e-3),
            anneal_strategy="cos",
        )
    raise ConfigError(
        f"optim.scheduler: unknown schedule {name!r}; choose noam, cosine, warmup_cosine or "
        "onecycle"
    )
