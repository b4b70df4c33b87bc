"""Whole PTB-XL records with the multimodal model: (12-lead signal, metadata) inputs, NORM vs
abnormal (cross-entropy over 2 classes) or 5 superclasses (multi-label BCE), thresholds chosen on
validation and applied to test, macro AUROC / F1 (evaluation.multilabel)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MultilabelAccuracy, MultilabelF1Score

from ecgfusion.data.ptbxl import PtbxlRecords
from ecgfusion.errors import ConfigError
from ecgfusion.evaluation.multilabel import (
    RECORD_HEADLINE,
    choose_thresholds,
    record_metrics,
    write_record_report,
)
from ecgfusion.evaluation.report import write_summary
from ecgfusion.training.config import OptimConfig, RunConfig
from ecgfusion.training.datamodule import Inputs
from ecgfusion.training.fit import device, device_name
from ecgfusion.training.module import BeatClassifier
from ecgfusion.training.record_data import (
    BINARY_CLASSES,
    SPLIT_LABEL,
    TASK_LABELS,
    RecordDataModule,
    load_config_records,
    probabilities,
    subset_note,
)
from ecgfusion.training.scoring import predict_scores
from ecgfusion.training.tasks.base import Task

RECORD_MODELS = ("multimodal",)


class RecordClassifier(BeatClassifier):
    """BeatClassifier (optimiser, schedules, checkpoint tag, ``model(**inputs)``) for record
    batches ({"x", "meta"}, y) and two tasks.

    Binary: class-weighted cross-entropy over 2 logits. Superclasses: BCE with logits with
    ``pos_weight`` (held in the ``class_weights`` buffer). Logged per epoch: train/val loss,
    accuracy at threshold 0.5 (argmax for binary), val_macro_auroc, and val_macro_f1 at the
    thresholds that are best on validation — the checkpoint criterion, the same F1 a test score
    is computed with.
    """

    def __init__(
        self,
        model: nn.Module,
        optim: OptimConfig,
        task: str,
        class_weights: Tensor | None = None,
    ) -> None:
        super().__init__(model, optim, class_weights)
        self.task = task
        self.binary = task == "binary"
        if not self.binary:
            n = int(model.n_classes)
            self.train_metrics = MetricCollection(
                {
                    "acc": MultilabelAccuracy(num_labels=n, average="micro"),
                    "macro_f1": MultilabelF1Score(num_labels=n, average="macro"),
                },
                prefix="train_",
            )
        del self.val_metrics  # validation is judged on the whole epoch's scores below
        self._val_scores: list[Tensor] = []
        self._val_targets: list[Tensor] = []

    def _loss(self, scores: Tensor, y: Tensor) -> Tensor:
        if self.binary:
            return super()._loss(scores, y)
        return F.binary_cross_entropy_with_logits(
            scores.float(), y.float(), pos_weight=self.class_weights
        )

    def training_step(self, batch: tuple[Inputs, Tensor], batch_idx: int) -> Tensor:
        inputs, y = batch
        scores = self(inputs)
        loss = self._loss(scores, y)
        self.train_metrics.update(scores.detach(), y if self.binary else y.long())
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: tuple[Inputs, Tensor], batch_idx: int) -> None:
        inputs, y = batch
        scores = self(inputs)
        self._val_scores.append(scores.detach().float().cpu())
        self._val_targets.append(y.cpu())
        self.log("val_loss", self._loss(scores, y), on_epoch=True, batch_size=len(y))

    def on_validation_epoch_end(self) -> None:
        if not self._val_scores:
            return
        probs = probabilities(torch.cat(self._val_scores), self.binary)
        y = torch.cat(self._val_targets)
        targets = y[:, None].double() if self.binary else y.double()
        self._val_scores, self._val_targets = [], []
        thresholds = choose_thresholds(probs, targets, balanced=self.binary)
        tuned = record_metrics(probs, targets, thresholds, self._names(), self.binary)
        acc = tuned["accuracy_at_0.5"] if self.binary else _label_accuracy(probs, targets)
        self.log_dict(
            {
                "val_macro_f1": float(tuned["macro_f1"] or 0.0),
                "val_macro_auroc": float(tuned["macro_auroc"] or 0.0),
                "val_acc": float(acc),
            }
        )

    def _names(self) -> tuple[str, ...]:
        return BINARY_CLASSES if self.binary else tuple(str(i) for i in range(self.model.n_classes))


def _label_accuracy(probs: Tensor, targets: Tensor) -> float:
    """Share of (record, label) pairs right at 0.5, as MultilabelAccuracy(average="micro")."""
    return float(((probs >= 0.5).double() == targets).double().mean())


def check_record_config(config: RunConfig) -> None:
    """What can be judged without data: the model must take (signals, metadata)."""
    if config.model.name not in RECORD_MODELS:
        raise ConfigError(
            f"model.name: {config.model.name!r} is a beat model; dataset "
            f"{config.data.dataset!r} trains {', '.join(RECORD_MODELS)} (or use ptbxl-beats)"
        )
    if config.model.backbones is not None:
        raise ConfigError("model.backbones is only for fusion models of beats; remove it")
    unsupported = [
        key
        for key, used in (
            (
                "trainer.class_weights (sqrt_inverse, sampler)",
                config.trainer.class_weights in ("sqrt_inverse", "sampler"),
            ),
            ("trainer.label_smoothing", config.trainer.label_smoothing > 0),
            ("augment", config.augment.active),
            ("model.init_from", config.model.init_from is not None),
        )
        if used
    ]
    if unsupported:
        raise ConfigError(
            f"{', '.join(unsupported)}: beat-model recipe options, not available for record "
            f"dataset {config.data.dataset!r} yet; use class_weights balanced or none"
        )


@torch.no_grad()
def predict_probabilities(
    model: nn.Module, dm: RecordDataModule, part: str, batch_size: int, device: torch.device
) -> Tensor:
    """Probabilities [n, columns] of one part (binary: P(abnormal)), model in eval mode."""
    inputs, _ = dm.tensors[part]
    return probabilities(predict_scores(model, inputs, batch_size, device), dm.binary)


def score_records(
    model: nn.Module, dm: RecordDataModule, config: RunConfig
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(test metrics, validation metrics, timing): thresholds from validation, applied to test."""
    where = device(config)
    batch = config.trainer.eval_batch_size
    val_probs = predict_probabilities(model, dm, "val", batch, where)
    thresholds = choose_thresholds(val_probs, dm.targets("val"), balanced=dm.binary)
    start = time.perf_counter()
    test_probs = predict_probabilities(model, dm, "test", batch, where)
    seconds = time.perf_counter() - start
    names = dm.class_names
    test = record_metrics(test_probs, dm.targets("test"), thresholds, names, dm.binary)
    val = record_metrics(val_probs, dm.targets("val"), thresholds, names, dm.binary)
    timing = {
        "test_inference_seconds": round(seconds, 4),
        "test_records_per_second": round(test["n"] / seconds, 1) if seconds > 0 else None,
        "test_batch_size": batch,
        "device": device_name(where),
        "torch_threads": torch.get_num_threads(),
    }
    return test, val, timing


def _data_section(config: RunConfig, dm: RecordDataModule) -> dict[str, Any]:
    return {
        "dataset": config.data.dataset,
        "task": dm.task,
        "task_label": TASK_LABELS[dm.task],
        "note": subset_note(dm.records),
        "protocol": "strat-fold",
        "split_label": SPLIT_LABEL,
        "records": config.data.records,
        "n_records": {part: len(idx) for part, idx in dm.index.items()},
        "n_leads": dm.n_leads,
        "n_samples": dm.n_samples,
        "sampling_rate": dm.sampling_rate,
        "n_meta": dm.n_meta,
        "meta_names": list(dm.records.meta_names),
        "class_names": list(dm.class_names),
        "counts": dm.class_counts(),
        "data_report": list(dm.records.report),
    }


def record_headline_values(metrics: dict[str, Any]) -> dict[str, float | None]:
    """The record headline metrics by key, for the summary of several seeds."""
    return {key: metrics.get(key) for key, _ in RECORD_HEADLINE}


class RecordTask(Task):
    """PTB-XL records (data.dataset: ptbxl) with data.task binary or superclasses."""

    def check(self, config: RunConfig, training: bool = True) -> None:
        check_record_config(config)

    def load_data(self, config: RunConfig) -> PtbxlRecords:
        return load_config_records(config)

    def datamodule(
        self,
        config: RunConfig,
        data: PtbxlRecords | None = None,
        parts: Sequence[str] | None = None,
    ) -> RecordDataModule:
        return RecordDataModule(
            data if data is not None else load_config_records(config),
            config.data.task,
            batch_size=config.trainer.batch_size,
            eval_batch_size=config.trainer.eval_batch_size,
            seed=config.trainer.seed,
            parts=parts,
        )

    def module(self, config: RunConfig, model: nn.Module, dm: RecordDataModule) -> RecordClassifier:
        weights = dm.loss_weights() if config.trainer.class_weights != "none" else None
        return RecordClassifier(model, config.optim, dm.task, class_weights=weights)

    def score(self, model: nn.Module, dm: RecordDataModule, config: RunConfig) -> dict[str, Any]:
        metrics, validation, timing = score_records(model, dm, config)
        return {"metrics": metrics, "validation": validation, "timing": timing}

    def model_card(self, config: RunConfig, dm: RecordDataModule) -> dict[str, Any]:
        return {
            "dataset": config.data.dataset,
            "task": dm.task,
            "class_names": list(dm.class_names),
            "meta_names": list(dm.records.meta_names),
            "note": subset_note(dm.records),
        }

    def run_section(self, module: RecordClassifier, dm: RecordDataModule) -> dict[str, Any]:
        return {
            "branches": list(getattr(module.model, "branches", ())),
            "loss": "cross-entropy (2 classes)" if dm.binary else "BCE with logits",
        }

    def data_section(self, config: RunConfig, dm: RecordDataModule) -> dict[str, Any]:
        return _data_section(config, dm)

    def split_label(self, dm: RecordDataModule) -> str:
        return SPLIT_LABEL

    def notes(self, dm: RecordDataModule) -> dict[str, Any]:
        return {"note": subset_note(dm.records)}

    def figure_title(self, config: RunConfig, dm: RecordDataModule) -> str:
        return f"{config.model.name} on PTB-XL ({dm.task}; ecg_id subset, strat_fold 1-8/9/10)"

    def write_report(self, run_dir: Path, result: dict[str, Any]) -> None:
        write_record_report(run_dir, result)

    def write_summary(self, run_dir: Path, results: dict[int, dict[str, Any]]) -> dict[str, Any]:
        return write_summary(run_dir, results, record_headline_values, dict(RECORD_HEADLINE))
