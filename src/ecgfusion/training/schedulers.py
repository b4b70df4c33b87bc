"""The Noam learning-rate schedule ("Attention is all you need"), as the paper trains with it.

lr(step) = base_lr * d_model**-0.5 * min(step**-0.5, step * warmup**-1.5), step counted from 1:
linear warm-up for ``warmup`` steps, peak base_lr * (d_model * warmup)**-0.5 at step == warmup,
then decay as 1/sqrt(step). The paper pairs it with Adam(betas=(0.9, 0.999)); the optimiser is
the trainer's choice, this module only shapes its learning rate.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

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
