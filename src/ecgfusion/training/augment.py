"""Light augmentation of training beats: amplitude, baseline, timing and noise, per beat.

Each change keeps the label (a beat scaled by 10 %, lifted a little, moved by two samples or
with a little noise is still the same beat), and together they make the model rely less on a
patient's exact amplitude and baseline. Operates on a batch [B, n_samples] in place of a copy.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ecgfusion.training.config import AugmentConfig


def shift_beats(x: Tensor, shifts: Tensor) -> Tensor:
    """Move beat i by ``shifts[i]`` samples (positive: later), filling with zeros.

    The kachuee beats are zero-padded at the end, so zero is what lies outside a beat.
    """
    n = x.shape[1]
    source = torch.arange(n, device=x.device)[None, :] - shifts[:, None]
    inside = (source >= 0) & (source < n)
    return torch.where(inside, x.gather(1, source.clamp(0, n - 1)), torch.zeros((), dtype=x.dtype))


def augment_beats(
    x: Tensor, config: AugmentConfig, generator: torch.Generator | None = None
) -> Tensor:
    """A changed copy of the batch ``x`` [B, n_samples]; ``x`` itself is never written."""
    if x.dim() != 2:
        raise ValueError(f"augment_beats expects beats [batch, n_samples], got {tuple(x.shape)}")
    b = x.shape[0]

    def uniform(half_width: float) -> Tensor:
        u = torch.rand(b, 1, generator=generator, device=x.device, dtype=x.dtype)
        return (2 * u - 1) * half_width

    out = x
    if config.shift:
        shifts = torch.randint(
            -config.shift, config.shift + 1, (b,), generator=generator, device=x.device
        )
        out = shift_beats(out, shifts)
    if config.amplitude:
        out = out * (1 + uniform(config.amplitude))
    if config.offset:
        out = out + uniform(config.offset)
    if config.noise:
        out = out + config.noise * torch.randn(
            out.shape, generator=generator, device=x.device, dtype=x.dtype
        )
    return out if out is not x else x.clone()
