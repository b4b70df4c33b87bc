"""The LightningModule around any registered model: weighted loss, metrics, optimiser.

Models stay plain ``nn.Module``s returning ``ModelOutput`` so they can be saved, fused and
benchmarked without Lightning; everything about *how* to train lives here.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from ecgfusion.training.config import OptimConfig

#: Key under which checkpoints remember which model they hold (checked before a resume).
CKPT_MODEL_KEY = "ecgfusion_model"


def _epoch_metrics(n_classes: int, prefix: str) -> MetricCollection:
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes=n_classes, average="micro"),
            "macro_f1": MulticlassF1Score(num_classes=n_classes, average="macro"),
        },
        prefix=prefix,
    )


def build_optimizer(params: list[nn.Parameter], optim: OptimConfig) -> torch.optim.Optimizer:
    if optim.name == "sgd":
        return torch.optim.SGD(
            params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay
        )
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax}
    return cls[optim.name](params, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay)


class BeatClassifier(L.LightningModule):
    """Trains ``model`` with class-weighted cross-entropy; logs loss, accuracy and macro-F1.

    With ``cached_inputs`` the batches are a fusion model's packed backbone outputs
    (``FusionModel.cache_backbone_outputs``) and only its head runs; checkpoints still hold the
    whole model.
    """

    def __init__(
        self,
        model: nn.Module,
        optim: OptimConfig,
        class_weights: Tensor | None = None,
        cached_inputs: bool = False,
    ):
        super().__init__()
        self.model = model
        self.cached_inputs = cached_inputs
        self.optim = optim
        n_classes = int(model.n_classes)
        weights = class_weights if class_weights is not None else torch.ones(n_classes)
        # A buffer, so it moves with the module and is saved in (and checked against) checkpoints.
        self.register_buffer("class_weights", weights.float().clone())
        self.train_metrics = _epoch_metrics(n_classes, "train_")
        self.val_metrics = _epoch_metrics(n_classes, "val_")

    def forward(self, x: Tensor) -> Tensor:
        if self.cached_inputs:
            return self.model.fuse_packed(x).scores
        return self.model(x).scores

    def _loss(self, scores: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(scores.float(), y, weight=self.class_weights)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        scores = self(x)
        loss = self._loss(scores, y)
        self.train_metrics.update(scores.detach(), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        scores = self(x)
        self.val_metrics.update(scores, y)
        self.log("val_loss", self._loss(scores, y), on_epoch=True, batch_size=len(y))

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute())
        self.val_metrics.reset()

    def configure_optimizers(self) -> Any:
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = build_optimizer(params, self.optim)
        if self.optim.scheduler is None:
            return optimizer
        if self.optim.scheduler == "noam":
            from ecgfusion.training.schedulers import make_noam

            scheduler = make_noam(optimizer, d_model=self.optim.d_model, warmup=self.optim.warmup)
        else:
            total = max(1, int(self.trainer.estimated_stepping_batches))
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        # Both schedules are defined per optimiser step, not per epoch.
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CKPT_MODEL_KEY] = getattr(self.model, "spec", None)
