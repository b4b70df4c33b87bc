"""What every task's scoring shares: batched eval-mode scores, and how close a recomputed
metric tree must be to the stored one."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ecgfusion.models.base import model_inputs


@torch.no_grad()
def predict_scores(
    model: nn.Module, x: Tensor | dict[str, Tensor], batch_size: int, device: torch.device
) -> Tensor:
    """Class scores [n, C] in float32 on the CPU, batch by batch, model in eval mode.

    ``x``: the beats, or a dict of named inputs of which the model reads the ones it names."""
    named = model_inputs(model, x if isinstance(x, dict) else {"x": x})
    n = len(next(iter(named.values())))
    model.eval().to(device)
    return torch.cat(
        [
            model(**{k: v[s : s + batch_size].to(device) for k, v in named.items()})
            .scores.float()
            .cpu()
            for s in range(0, n, batch_size)
        ]
    )


#: Largest difference of a recomputed metric (a rate) or count from the stored one that still
#: reproduces it: a borderline beat may change class on another CPU, nothing more.
METRICS_TOLERANCE = 2e-3


def metrics_difference(new: Any, old: Any) -> float:
    """The largest difference between two metric trees: rates as they are, counts as a fraction
    of the count; infinity where their structure or names differ."""
    if isinstance(new, dict) and isinstance(old, dict):
        if new.keys() != old.keys():
            return float("inf")
        return max((metrics_difference(new[k], old[k]) for k in new), default=0.0)
    if isinstance(new, list) and isinstance(old, list):
        if len(new) != len(old):
            return float("inf")
        return max((metrics_difference(a, b) for a, b in zip(new, old, strict=True)), default=0.0)
    numbers = (int, float)
    if isinstance(new, numbers) and isinstance(old, numbers) and not isinstance(new, bool):
        if new == old or (new != new and old != old):  # equal, or both NaN
            return 0.0
        if isinstance(new, int) and isinstance(old, int):
            return abs(new - old) / max(abs(old), 1000)
        return abs(float(new) - float(old))
    return 0.0 if new == old else float("inf")
