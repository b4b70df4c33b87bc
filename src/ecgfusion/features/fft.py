"""Frequency-domain input of the multimodal model, computed from the raw signal inside the model."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def fft_magnitude(x: Tensor, log: bool = True) -> Tensor:
    """|rfft| along the last axis ([..., n] -> [..., n // 2 + 1]), optionally log1p-compressed.

    log1p keeps the DC and low-frequency peaks from drowning the rest of the spectrum while staying
    finite at zero magnitude.
    """
    magnitude = torch.fft.rfft(x, dim=-1).abs()
    return torch.log1p(magnitude) if log else magnitude


def fft_length(n_samples: int) -> int:
    """Number of one-sided frequency bins for a signal of ``n_samples``."""
    return n_samples // 2 + 1


class FFTMagnitude(nn.Module):
    """Module form of :func:`fft_magnitude`, so the transform travels with the model."""

    def __init__(self, log: bool = True):
        super().__init__()
        self.log = bool(log)

    def forward(self, x: Tensor) -> Tensor:
        return fft_magnitude(x, log=self.log)

    def extra_repr(self) -> str:
        return f"log={self.log}"


__all__ = ["FFTMagnitude", "fft_length", "fft_magnitude"]
