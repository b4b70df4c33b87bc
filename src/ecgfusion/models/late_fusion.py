"""Late fusion: a learned per-class blend of the two backbones' scores."""

from __future__ import annotations

import torch
from torch import nn

from ecgfusion.models.base import EcgModel, ModelOutput
from ecgfusion.models.fusion import FusionModel
from ecgfusion.models.registry import register_model


@register_model("late_fusion")
class LateFusion(FusionModel):
    """scores = w1 * O_TE + w2 * O_TFR with w1, w2 learnable vectors of size n_classes.

    Both weights start at ``weight_init`` (0.5: the plain average of the two backbones), so an
    untrained head already scores like an ensemble. Features are both backbones' features
    concatenated, for analysis only.
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
        weight_init: float = 0.5,
    ):
        backbones = (backbone_1d, backbone_2d, backbone_1d_params, backbone_2d_params)
        super().__init__(n_classes, n_samples, sampling_rate, *backbones, freeze)
        self.w1 = nn.Parameter(torch.full((n_classes,), float(weight_init)))
        self.w2 = nn.Parameter(torch.full((n_classes,), float(weight_init)))
        self.feature_dim = self.backbone_1d.feature_dim + self.backbone_2d.feature_dim

    def fuse(self, out_1d: ModelOutput, out_2d: ModelOutput) -> ModelOutput:
        self.check_outputs(out_1d, out_2d)
        scores = self.w1 * out_1d.scores + self.w2 * out_2d.scores
        return ModelOutput(scores, torch.cat([out_1d.features, out_2d.features], dim=1))
