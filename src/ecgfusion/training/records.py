"""Training and evaluating the multimodal model on whole PTB-XL records.

The beat trainer (ecgfusion.training.trainer) serves one signal per sample; a record run adds the
metadata vector and two tasks (NORM vs abnormal, 5 superclasses as multi-label), so it has its own
datamodule and LightningModule but reuses the trainer's run folder, Lightning setup, checkpoints,
CSV logs, figures and optimiser. The run folder has the same layout as a beat run's.

Every number is on the PTB-XL records under the data root; the shared copy is ecg_id 1-1999, and
each output says so (see :func:`subset_note`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchmetrics import MetricCollection
from torchmetrics.classification import MultilabelAccuracy, MultilabelF1Score

from ecgfusion.data.ptbxl import PtbxlRecords, prepare_ptbxl_records
from ecgfusion.errors import ConfigError, DataError
from ecgfusion.evaluation.multilabel import choose_thresholds, record_metrics, write_record_report
from ecgfusion.evaluation.report import METRICS_FILE, read_metrics
from ecgfusion.training.config import OptimConfig, RunConfig
from ecgfusion.training.datamodule import PARTS, SliceSampler, class_weights
from ecgfusion.training.module import BeatClassifier
from ecgfusion.training.trainer import (
    METRICS_FORMAT,
    MODEL_FILE,
    _check_run_dir,
    _device,
    _device_name,
    _model_file,
    _read_run_config,
    _torch_threads,
    add_fit_timing,
    fit_best,
    resume_point,
    write_figures,
)

TASKS = ("binary", "superclasses")
BINARY_CLASSES = ("normal", "abnormal")
TASK_LABELS = {
    "binary": "normal (diagnostic superclasses exactly {NORM}) vs abnormal (any other), "
    "cross-entropy over 2 classes",
    "superclasses": "NORM, MI, STTC, CD, HYP as 5 independent labels, BCE with logits",
}
SPLIT_LABEL = "PTB-XL strat_fold 1-8 train / 9 validation / 10 test (patient-disjoint)"
#: Records of the full PTB-XL release (v1.0.3); fewer means a subset.
FULL_RELEASE = 21_799
BENCHMARK = "published superdiagnostic macro AUROC about 0.93, Strodthoff et al. 2020"
RECORD_MODELS = ("multimodal",)


def subset_note(records: PtbxlRecords) -> str:
    """The line every output carries: which records these numbers come from."""
    ids = records.ecg_id
    what = f"PTB-XL ecg_id {int(ids.min())}-{int(ids.max())}: {len(ids):,} records"
    if len(ids) < FULL_RELEASE:
        return (
            f"{what}, a subset of the {FULL_RELEASE:,}-record release; not comparable with "
            f"full-PTB-XL results ({BENCHMARK})"
        )
    return f"{what} (full release; for reference, {BENCHMARK})"


# --------------------------------------------------------------------------- data


class RecordBatches(Dataset):
    """Indexed with a whole index tensor: ``ds[idx]`` is one batch (x, meta, y)."""

    def __init__(self, *tensors: Tensor):
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: Tensor) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)


def load_config_records(config: RunConfig) -> PtbxlRecords:
    """The record set a config names, from its Parquet cache (built on first use)."""
    data = config.data
    records, _, _ = prepare_ptbxl_records(
        data_root=data.data_root,
        cache_dir=data.cache_dir,
        sampling_rate=data.sampling_rate or 100,
        ids=data.records,
    )
    return records


class RecordDataModule(L.LightningDataModule):
    """Train/val/test tensors of the strat_fold split, in memory, served as index slices."""

    def __init__(
        self,
        records: PtbxlRecords,
        task: str,
        batch_size: int,
        eval_batch_size: int = 256,
        seed: int = 0,
    ):
        super().__init__()
        if task not in TASKS:
            raise ConfigError(f"data.task must be one of {', '.join(TASKS)}, got {task!r}")
        self.records, self.task = records, task
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.index = records.split()
        for part in PARTS:
            if len(self.index[part]) == 0:
                raise DataError(
                    f"the {part} part (strat_fold {part}) of the PTB-XL records is empty; use "
                    "more records (data.records) or none to take all"
                )
        y = records.binary if task == "binary" else records.targets
        self.tensors: dict[str, tuple[Tensor, Tensor, Tensor]] = {
            part: (
                torch.from_numpy(np.ascontiguousarray(records.signal[idx], dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(records.metadata[idx], dtype=np.float32)),
                torch.from_numpy(np.asarray(y[idx])),
            )
            for part, idx in self.index.items()
        }

    @property
    def binary(self) -> bool:
        return self.task == "binary"

    @property
    def class_names(self) -> tuple[str, ...]:
        return BINARY_CLASSES if self.binary else tuple(self.records.class_names)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_leads(self) -> int:
        return self.records.signal.shape[1]

    @property
    def n_samples(self) -> int:
        return self.records.signal.shape[2]

    @property
    def n_meta(self) -> int:
        return self.records.metadata.shape[1]

    @property
    def sampling_rate(self) -> float:
        return float(self.records.fs)

    def targets(self, part: str) -> Tensor:
        """{0, 1} targets [n, columns] matching :func:`probabilities` (binary: P(abnormal))."""
        y = self.tensors[part][2]
        return y[:, None].double() if self.binary else y.double()

    def class_counts(self) -> dict[str, dict[str, int]]:
        """Records per class and part (multi-label: a record counts in each of its classes)."""
        out = {}
        for part in PARTS:
            y = self.tensors[part][2]
            counts = torch.bincount(y, minlength=2) if self.binary else y.sum(dim=0)
            out[part] = {c: int(v) for c, v in zip(self.class_names, counts, strict=True)}
        return out

    def loss_weights(self) -> Tensor:
        """Binary: inverse-frequency class weights; multi-label: BCE pos_weight = neg / pos."""
        y = self.tensors["train"][2]
        if self.binary:
            return class_weights(y.numpy(), 2)
        pos = y.sum(dim=0)
        return torch.where(pos > 0, (len(y) - pos) / pos.clamp(min=1), torch.zeros_like(pos))

    def _loader(self, part: str, batch_size: int, shuffle: bool) -> DataLoader:
        tensors = self.tensors[part]
        # batch_size=None: each sampler item is already a batch (an index tensor).
        return DataLoader(
            RecordBatches(*tensors),
            sampler=SliceSampler(len(tensors[0]), batch_size, shuffle, self.seed),
            batch_size=None,
            num_workers=0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)


def probabilities(scores: Tensor, binary: bool) -> Tensor:
    """Binary: P(abnormal) [n, 1] from the 2 logits; multi-label: sigmoid per class [n, C]."""
    scores = scores.float()
    return torch.softmax(scores, dim=1)[:, 1:] if binary else torch.sigmoid(scores)


# --------------------------------------------------------------------------- module


class RecordClassifier(BeatClassifier):
    """BeatClassifier (optimiser, schedules, checkpoint tag) for (x, meta) batches and two tasks.

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

    def forward(self, x: Tensor, meta: Tensor | None = None) -> Tensor:
        return self.model(x, meta).scores

    def _loss(self, scores: Tensor, y: Tensor) -> Tensor:
        if self.binary:
            return super()._loss(scores, y)
        return F.binary_cross_entropy_with_logits(
            scores.float(), y.float(), pos_weight=self.class_weights
        )

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        x, meta, y = batch
        scores = self(x, meta)
        loss = self._loss(scores, y)
        self.train_metrics.update(scores.detach(), y if self.binary else y.long())
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        x, meta, y = batch
        scores = self(x, meta)
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


# --------------------------------------------------------------------------- model


def check_record_config(config: RunConfig) -> None:
    """What can be judged without data: the model must take (signals, metadata)."""
    if config.data.task not in TASKS:
        raise ConfigError(f"data.task must be one of {', '.join(TASKS)} for record datasets")
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
    if config.seeds:
        raise ConfigError(
            "seeds / --runs are not supported for record datasets yet; run once per "
            "--set trainer.seed=N"
        )


def build_record_model(config: RunConfig, dm: RecordDataModule) -> nn.Module:
    """The config's model sized from the data; data-given params must agree with it."""
    from ecgfusion.models import create_model

    params = dict(config.model.params)
    given = {"n_classes": dm.n_classes, "n_leads": dm.n_leads, "n_meta": dm.n_meta}
    for key, value in given.items():
        if key in params and params.pop(key) != value:
            raise ConfigError(
                f"model.params.{key}={config.model.params[key]} but the {dm.task} PTB-XL data "
                f"gives {value}; remove the key (it comes from the data)"
            )
    return create_model(
        config.model.name,
        n_samples=dm.n_samples,
        sampling_rate=dm.sampling_rate,
        **given,
        **params,
    )


def check_record_model(model: nn.Module, dm: RecordDataModule, what: str) -> None:
    """A saved model must fit this data: classes, leads, samples and metadata width."""
    want = {"n_classes": dm.n_classes, "n_leads": dm.n_leads, "n_samples": dm.n_samples,
            "n_meta": dm.n_meta}  # fmt: skip
    got = {k: getattr(model, k, None) for k in want}
    if got != want:
        diff = ", ".join(f"{k} {got[k]} (data: {v})" for k, v in want.items() if got[k] != v)
        raise DataError(f"{what} does not fit the {dm.task} PTB-XL data: {diff}; train it again")


# --------------------------------------------------------------------------- scoring


@torch.no_grad()
def predict_probabilities(
    model: nn.Module, dm: RecordDataModule, part: str, batch_size: int, device: torch.device
) -> Tensor:
    """Probabilities [n, columns] of one part (binary: P(abnormal)), model in eval mode."""
    model.eval().to(device)
    x, meta, _ = dm.tensors[part]
    scores = [
        model(xb.to(device), mb.to(device)).scores.float().cpu()
        for xb, mb in zip(x.split(batch_size), meta.split(batch_size), strict=True)
    ]
    return probabilities(torch.cat(scores), dm.binary)


def score_records(
    model: nn.Module, dm: RecordDataModule, config: RunConfig
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(test metrics, validation metrics, timing): thresholds from validation, applied to test."""
    device = _device(config)
    batch = config.trainer.eval_batch_size
    val_probs = predict_probabilities(model, dm, "val", batch, device)
    thresholds = choose_thresholds(val_probs, dm.targets("val"), balanced=dm.binary)
    start = time.perf_counter()
    test_probs = predict_probabilities(model, dm, "test", batch, device)
    seconds = time.perf_counter() - start
    names = dm.class_names
    test = record_metrics(test_probs, dm.targets("test"), thresholds, names, dm.binary)
    val = record_metrics(val_probs, dm.targets("val"), thresholds, names, dm.binary)
    timing = {
        "test_inference_seconds": round(seconds, 4),
        "test_records_per_second": round(test["n"] / seconds, 1) if seconds > 0 else None,
        "test_batch_size": batch,
        "device": _device_name(device),
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


def _load_run_model(run_dir: Path, config: RunConfig, dm: RecordDataModule) -> nn.Module:
    from ecgfusion.models import load_model

    file = _model_file(run_dir)
    model = load_model(file)
    name = (getattr(model, "spec", None) or {}).get("name")
    if name != config.model.name:
        raise DataError(
            f"{file} holds model {name!r} but its config.yaml names {config.model.name!r}; "
            "the run folder was mixed up, train it again"
        )
    check_record_model(model, dm, str(file))
    return model


# --------------------------------------------------------------------------- train / evaluate


def build_record_datamodule(
    config: RunConfig, records: PtbxlRecords | None = None
) -> RecordDataModule:
    return RecordDataModule(
        records if records is not None else load_config_records(config),
        config.data.task or "binary",
        batch_size=config.trainer.batch_size,
        eval_batch_size=config.trainer.eval_batch_size,
        seed=config.trainer.seed,
    )


def train_records(
    config: RunConfig,
    run_dir: str | os.PathLike,
    resume: bool = False,
    records: PtbxlRecords | None = None,
) -> dict[str, Any]:
    """Train the multimodal model on PTB-XL records into ``run_dir``; returns metrics.json."""
    run_dir = Path(run_dir)
    _check_run_dir(run_dir, resume)
    check_record_config(config)
    finished = resume_point(run_dir, config, resume)
    if finished is not None:
        return finished
    with _torch_threads(config.trainer.num_threads):
        return _train_records(config, run_dir, resume, records)


def _train_records(
    config: RunConfig, run_dir: Path, resume: bool, records: PtbxlRecords | None
) -> dict[str, Any]:
    from ecgfusion.models import save_model

    L.seed_everything(config.trainer.seed, workers=True, verbose=False)
    dm = build_record_datamodule(config, records)
    model = build_record_model(config, dm)
    weights = dm.loss_weights() if config.trainer.class_weights != "none" else None
    module = RecordClassifier(model, config.optim, dm.task, class_weights=weights)
    trainer, checkpoint, train_seconds, best = fit_best(config, run_dir, module, lambda: dm, resume)
    best_epoch = int(best.get("epoch", -1)) + 1
    best_score = checkpoint.best_model_score
    save_model(
        module.model,
        run_dir / MODEL_FILE,
        extra={
            "dataset": config.data.dataset,
            "task": dm.task,
            "class_names": list(dm.class_names),
            "meta_names": list(dm.records.meta_names),
            "best_epoch": best_epoch,
            "note": subset_note(dm.records),
        },
    )
    metrics, validation, timing = score_records(_load_run_model(run_dir, config, dm), dm, config)
    add_fit_timing(timing, train_seconds, trainer, resume)
    result = {
        "format": METRICS_FORMAT,
        "run": {
            "model": config.model.name,
            "branches": list(getattr(module.model, "branches", ())),
            "loss": "cross-entropy (2 classes)" if dm.binary else "BCE with logits",
            "seed": config.trainer.seed,
            "config": "config.yaml",
            "best_epoch": best_epoch,
            "best_val_macro_f1": float(best_score) if best_score is not None else None,
        },
        "data": _data_section(config, dm),
        "metrics": metrics,
        "validation": validation,
        "timing": timing,
        "figures": _write_figures(run_dir, config, dm, metrics),
    }
    write_record_report(run_dir, result)
    return result


def _write_figures(
    run_dir: Path, config: RunConfig, dm: RecordDataModule, metrics: dict[str, Any]
) -> list[str]:
    title = f"{config.model.name} on PTB-XL ({dm.task}; ecg_id subset, strat_fold 1-8/9/10)"
    return write_figures(run_dir, title, metrics, dm.class_names)


def evaluate_records(
    run_dir: str | os.PathLike, records: PtbxlRecords | None = None
) -> dict[str, Any]:
    """Recompute a record run's test metrics from config.yaml and model.pt (nothing written).

    Returns ``{"metrics", "validation", "timing", "reproduced", "split_label", "note"}``;
    ``reproduced`` says whether the metrics equal metrics.json's (None when there is none).
    """
    run_dir = Path(run_dir)
    config = _read_run_config(run_dir)
    check_record_config(config)
    _model_file(run_dir)
    with _torch_threads(config.trainer.num_threads):
        dm = build_record_datamodule(config, records)
        model = _load_run_model(run_dir, config, dm)
        metrics, validation, timing = score_records(model, dm, config)
    stored = read_metrics(run_dir)["metrics"] if (run_dir / METRICS_FILE).is_file() else None
    reproduced = None if stored is None else json.loads(json.dumps(metrics)) == stored
    return {
        "metrics": metrics,
        "validation": validation,
        "timing": timing,
        "reproduced": reproduced,
        "split_label": SPLIT_LABEL,
        "note": subset_note(dm.records),
    }
