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

from ecgfusion.models.base import model_inputs
from ecgfusion.training.augment import augment_beats
from ecgfusion.training.config import AugmentConfig, OptimConfig
from ecgfusion.training.datamodule import Inputs

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


def build_optimizer(params: list, optim: OptimConfig) -> torch.optim.Optimizer:
    """``params``: parameters, or param groups (dicts) that may carry their own ``lr``."""
    if optim.name == "sgd":
        return torch.optim.SGD(
            params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay
        )
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax}
    return cls[optim.name](params, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay)


def param_groups(model: nn.Module, optim: OptimConfig) -> list[dict[str, Any]]:
    """Trainable parameters; a fusion model's trained backbones at ``lr * backbone_lr_scale``."""
    backbones = [getattr(model, k, None) for k in ("backbone_1d", "backbone_2d")]
    backbone_ids = {id(p) for b in backbones if b is not None for p in b.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    head = [p for p in trainable if id(p) not in backbone_ids]
    body = [p for p in trainable if id(p) in backbone_ids]
    if not body or optim.backbone_lr_scale == 1.0:
        return [{"params": trainable}]
    groups = [{"params": body, "lr": optim.lr * optim.backbone_lr_scale, "name": "backbones"}]
    if head:
        groups.append({"params": head, "lr": optim.lr, "name": "head"})
    return groups


class BeatClassifier(L.LightningModule):
    """Trains ``model`` with (class-weighted, label-smoothed) cross-entropy; logs loss, accuracy
    and macro-F1.

    A batch is ``(inputs, y)``, ``inputs`` a dict of named tensors of which the model reads
    the ones it names (``model(**inputs)``). With ``cached_inputs`` it is
    ``{"packed": a fusion model's backbone outputs}`` (``FusionModel.cache_backbone_outputs``)
    and only its head runs; checkpoints still hold the whole model. ``augment`` changes raw
    training beats "x" (never cached outputs, never RR features, never validation).
    """

    def __init__(
        self,
        model: nn.Module,
        optim: OptimConfig,
        class_weights: Tensor | None = None,
        cached_inputs: bool = False,
        label_smoothing: float = 0.0,
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.seed = int(seed)
        self.model = model
        self.cached_inputs = cached_inputs
        self.optim = optim
        self.label_smoothing = float(label_smoothing)
        self.augment = augment if augment is not None and augment.active else None
        n_classes = int(model.n_classes)
        weights = class_weights if class_weights is not None else torch.ones(n_classes)
        # A buffer, so it moves with the module and is saved in (and checked against) checkpoints.
        self.register_buffer("class_weights", weights.float().clone())
        self.train_metrics = _epoch_metrics(n_classes, "train_")
        self.val_metrics = _epoch_metrics(n_classes, "val_")

    def forward(self, inputs: Inputs) -> Tensor:
        """Scores of a batch's named inputs (cached: ``{"packed": backbone outputs}``)."""
        if self.cached_inputs:
            return self.model.fuse_packed(inputs["packed"]).scores
        return self.model(**model_inputs(self.model, inputs)).scores

    def _loss(self, scores: Tensor, y: Tensor) -> Tensor:
        smoothing = self.label_smoothing if self.training else 0.0
        return F.cross_entropy(
            scores.float(), y, weight=self.class_weights, label_smoothing=smoothing
        )

    def training_step(self, batch: tuple[Inputs, Tensor], batch_idx: int) -> Tensor:
        inputs, y = batch
        if self.augment is not None and "x" in inputs:
            inputs = {**inputs, "x": augment_beats(inputs["x"], self.augment)}
        scores = self(inputs)
        loss = self._loss(scores, y)
        self.train_metrics.update(scores.detach(), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Dropout and augmentation draw from torch's global generator. Seeding it at each epoch's
        # first batch, as the batch order is, makes an epoch's draws the same whether the run
        # was resumed before it or not (the data loader's own draw comes before, at a moment
        # that differs between the two); a killed run resumes to the uninterrupted result.
        if batch_idx == 0:
            torch.manual_seed(self.seed * 100_003 + self.current_epoch + 1)

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

    def validation_step(self, batch: tuple[Inputs, Tensor], batch_idx: int) -> None:
        inputs, y = batch
        scores = self(inputs)
        self.val_metrics.update(scores, y)
        self.log("val_loss", self._loss(scores, y), on_epoch=True, batch_size=len(y))

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute())
        self.val_metrics.reset()

    def configure_optimizers(self) -> Any:
        from ecgfusion.training.schedulers import make_schedule

        optimizer = build_optimizer(param_groups(self.model, self.optim), self.optim)
        if self.optim.scheduler is None:
            return optimizer
        scheduler = make_schedule(
            optimizer,
            self.optim.scheduler,
            total_steps=int(self.trainer.estimated_stepping_batches),
            warmup_fraction=self.optim.warmup_fraction,
            d_model=self.optim.d_model,
            noam_warmup=self.optim.warmup,
        )
        # Every schedule is defined per optimiser step, not per epoch.
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CKPT_MODEL_KEY] = getattr(self.model, "spec", None)
