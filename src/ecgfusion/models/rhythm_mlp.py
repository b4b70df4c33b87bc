"""The rhythm branch: a small MLP on a beat's RR-interval features (issue 15).

A beat's shape cannot say that it came early; its RR intervals can. This model reads only the
eight features of :mod:`ecgfusion.features.rr` (pre-RR, post-RR, local and average RR, in seconds
and divided by the record's mean RR) and is fused with the 1D and 2D models as a third view.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ecgfusion.errors import ConfigError, ShapeError
from ecgfusion.features.rr import N_RR_FEATURES
from ecgfusion.models.base import EcgModel, ModelOutput
from ecgfusion.models.registry import register_model


@register_model("rhythm_mlp")
class RhythmMLP(EcgModel):
    """BatchNorm (a learned standardisation of the features) -> [Linear -> LeakyReLU -> Dropout]
    x ``layers`` -> Linear(n_classes). Features are the last hidden layer (``hidden`` values).

    ``n_samples`` and ``sampling_rate`` are those of the beats the features belong to; the model
    does not read the samples, but it keeps the one model signature so a fusion can check that
    its branches describe the same beats.
    """

    score_head = ("head",)

    def __init__(
        self,
        n_classes: int,
        n_samples: int,
        sampling_rate: float,
        hidden: int = 32,
        layers: int = 2,
        dropout: float = 0.1,
    ):
        super().__init__(n_classes, n_samples, sampling_rate)
        if hidden < 1 or layers < 1:
            raise ConfigError(f"rhythm_mlp: hidden and layers must be >= 1, got {hidden}, {layers}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"rhythm_mlp: dropout must be in [0, 1), got {dropout}")
        blocks: list[nn.Module] = [nn.BatchNorm1d(N_RR_FEATURES)]
        width = N_RR_FEATURES
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LeakyReLU(), nn.Dropout(dropout)]
            width = hidden
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(hidden, n_classes)
        self.feature_dim = hidden

    def input_shapes(self) -> dict[str, tuple]:
        return {"rr": ("B", N_RR_FEATURES)}

    def forward(self, rr: Tensor) -> ModelOutput:
        features = self.body(check_rr(rr, self.name))
        return ModelOutput(self.head(features), features)


def check_rr(rr: Tensor, name: str) -> Tensor:
    """[B, N_RR_FEATURES] floating point, or a ShapeError with the expected and actual shape."""
    if not isinstance(rr, Tensor):
        raise ShapeError(
            f"{name} expects RR features as a tensor [batch, {N_RR_FEATURES}], got {type(rr)}"
        )
    if rr.dim() != 2 or rr.shape[1] != N_RR_FEATURES:
        raise ShapeError(
            f"{name} expects RR features of shape [batch, {N_RR_FEATURES}] "
            f"(ecgfusion.features.rr.RR_FEATURE_NAMES), got {tuple(rr.shape)}"
        )
    if not torch.is_floating_point(rr):
        raise ShapeError(f"{name} expects floating-point RR features, got dtype {rr.dtype}")
    return rr
