"""Intermediate fusion: the branches' feature vectors projected to one width and merged."""

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
    """H_TE -> Linear(., hidden), H_TFR -> Linear(., hidden) (and H_RR with ``rhythm``); merged
    by ``mode``; Linear -> scores.

    concat gives N * hidden features for N branches, sum and weighted_sum (N learnable scalars,
    init 0.5) give hidden. The branches' own score heads never reach the output here, so they
    are frozen even with ``freeze=False`` (otherwise they would sit in the optimiser with no
    gradient).
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
        rhythm: bool = False,
        backbone_rr: EcgModel | None = None,
        backbone_rr_params: dict | None = None,
    ):
        if mode not in MODES:
            raise ConfigError(
                f"intermediate_fusion: unknown mode {mode!r}; allowed: {', '.join(MODES)}"
            )
        modules = (backbone_1d, backbone_2d, backbone_rr)  # in BRANCHES order
        params = (backbone_1d_params, backbone_2d_params, backbone_rr_params)
        super().__init__(n_classes, n_samples, sampling_rate, modules, params, freeze, rhythm)
        self.mode = mode
        for backbone in self.branches:
            for name in backbone.score_head:
                getattr(backbone, name).requires_grad_(False)
        # proj_1d, proj_2d (and proj_rr): one projection per branch, named after it.
        for key, backbone in zip(self.branch_keys, self.branches, strict=True):
            setattr(self, _proj(key), nn.Linear(backbone.feature_dim, hidden))
        n = len(self.branch_keys)
        if mode == "weighted_sum":
            self.alpha = nn.Parameter(torch.full((n,), 0.5))
        self.feature_dim = n * hidden if mode == "concat" else hidden
        self.head = nn.Linear(self.feature_dim, n_classes)

    def fuse(self, *outputs: ModelOutput) -> ModelOutput:
        self.check_outputs(*outputs)
        keys = self.branch_keys
        h = [getattr(self, _proj(k))(out.features) for k, out in zip(keys, outputs, strict=True)]
        if self.mode == "concat":
            fused = torch.cat(h, dim=1)
        elif self.mode == "sum":
            fused = sum(h)
        else:
            fused = sum(self.alpha[i] * hi for i, hi in enumerate(h))
        return ModelOutput(self.head(fused), fused)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, freeze={self.freeze}, rhythm={self.rhythm}"


def _proj(branch_key: str) -> str:
    return "proj_" + branch_key.removeprefix("backbone_")
