"""Intermediate fusion: both backbones' feature vectors projected to one width and merged."""

from __future__ import annotations

import torch
from torch import nn

from ecgfusion.errors import ConfigError
from ecgfusion.models.base import EcgModel, ModelOutput
from ecgfusion.models.fusion import FusionModel
from ecgfusion.models.registry import register_model

MODES = ("concat", "sum", "weighted_sum")


@register_model("intermediate_fusion")
class IntermediateFusion(FusionModel):
    """H_TE -> Linear(., hidden), H_TFR -> Linear(., hidden); merged by ``mode``; Linear -> scores.

    concat gives 2 * hidden features, sum and weighted_sum (two learnable scalars, init 0.5) give
    hidden. The backbones' own score heads never reach the output here, so they are frozen even
    with ``freeze=False`` (otherwise they would sit in the optimiser with no gradient).
    """

    def __init__(
        self,
        n_classes: int,
        n_samples: int,
        sampling_rate: float,
        backbone_1d: EcgModel | None = None,
        backbone_2d: EcgModel | None = None,
        backbone_1d_params: dict | None = None,
        backbone_2d_params: dict | None = None,
        freeze: bool = True,
        mode: str = "concat",
        hidden: int = 64,
    ):
        if mode not in MODES:
            raise ConfigError(
                f"intermediate_fusion: unknown mode {mode!r}; allowed: {', '.join(MODES)}"
            )
        backbones = (backbone_1d, backbone_2d, backbone_1d_params, backbone_2d_params)
        super().__init__(n_classes, n_samples, sampling_rate, *backbones, freeze)
        self.mode = mode
        for backbone in (self.backbone_1d, self.backbone_2d):
            for name in backbone.score_head:
                getattr(backbone, name).requires_grad_(False)
        self.proj_1d = nn.Linear(self.backbone_1d.feature_dim, hidden)
        self.proj_2d = nn.Linear(self.backbone_2d.feature_dim, hidden)
        if mode == "weighted_sum":
            self.alpha = nn.Parameter(torch.full((2,), 0.5))
        self.feature_dim = 2 * hidden if mode == "concat" else hidden
        self.head = nn.Linear(self.feature_dim, n_classes)

    def fuse(self, out_1d: ModelOutput, out_2d: ModelOutput) -> ModelOutput:
        self.check_outputs(out_1d, out_2d)
        h1 = self.proj_1d(out_1d.features)
        h2 = self.proj_2d(out_2d.features)
        if self.mode == "concat":
            fused = torch.cat([h1, h2], dim=1)
        elif self.mode == "sum":
            fused = h1 + h2
        else:
            fused = self.alpha[0] * h1 + self.alpha[1] * h2
        return ModelOutput(self.head(fused), fused)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, freeze={self.freeze}"
