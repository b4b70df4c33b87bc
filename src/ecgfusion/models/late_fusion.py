"""Late fusion: a learned per-class blend of the branches' scores."""

from __future__ import annotations

import torch
from torch import nn

from ecgfusion.models.base import EcgModel, ModelOutput
from ecgfusion.models.fusion import FusionModel
from ecgfusion.models.registry import register_model


@register_model("late_fusion")
class LateFusion(FusionModel):
    """scores = w1 * O_TE + w2 * O_TFR (+ w3 * O_RR with ``rhythm``), each w a learnable vector
    of size n_classes.

    Every weight starts at ``weight_init`` (default 1 / number of branches: the plain average),
    so an untrained head already scores like an ensemble. Features are the branches' features
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
        weight_init: float | None = None,
        rhythm: bool = False,
        backbone_rr: EcgModel | None = None,
        backbone_rr_params: dict | None = None,
    ):
        modules = (backbone_1d, backbone_2d, backbone_rr)  # in BRANCHES order
        params = (backbone_1d_params, backbone_2d_params, backbone_rr_params)
        super().__init__(n_classes, n_samples, sampling_rate, modules, params, freeze, rhythm)
        n = len(self.branch_keys)
        init = 1.0 / n if weight_init is None else float(weight_init)
        # w1, w2 (and w3): the names the two-branch checkpoints have always used.
        for i in range(1, n + 1):
            setattr(self, f"w{i}", nn.Parameter(torch.full((n_classes,), init)))
        self.feature_dim = sum(b.feature_dim for b in self.branches)

    def fuse(self, *outputs: ModelOutput) -> ModelOutput:
        self.check_outputs(*outputs)
        scores = sum(getattr(self, f"w{i}") * out.scores for i, out in enumerate(outputs, 1))
        return ModelOutput(scores, torch.cat([out.features for out in outputs], dim=1))
