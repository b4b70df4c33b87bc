"""Beats, multiclass: a beat set split by a protocol, class-weighted cross-entropy, accuracy /
macro-F1 / MCC / AAMI sensitivities on the test part (metrics.json's format since the start)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ecgfusion.data.beats import BeatSet
from ecgfusion.data.rpeaks import training_detector
from ecgfusion.evaluation.metrics import classification_metrics
from ecgfusion.evaluation.report import write_report, write_summary
from ecgfusion.runtime import training_precision
from ecgfusion.training.config import RunConfig
from ecgfusion.training.datamodule import BeatDataModule, load_config_beats, prepare_split
from ecgfusion.training.fit import device, device_name
from ecgfusion.training.scoring import predict_scores
from ecgfusion.training.tasks import beat_models
from ecgfusion.training.tasks.base import Task


def beat_detector(dm: BeatDataModule) -> str:
    """The R-peak detector a model of these beats is served with: the one the beats were cut
    with (ptbxl-beats) or, for beats cut at reference annotations (mitdb, ...), the default."""
    return training_detector(dm.beats.dataset, dm.beats.meta.get("detector"))


def build_datamodule(
    config: RunConfig, beats: BeatSet | None = None, parts: Sequence[str] | None = None
) -> BeatDataModule:
    """The config's split in memory; ``parts`` keeps only those (a study never loads "test")."""
    prepared = prepare_split(config.data, beats)
    if parts is not None:
        prepared.index = {p: prepared.index[p] for p in parts}
    return BeatDataModule(
        prepared,
        batch_size=config.trainer.batch_size,
        eval_batch_size=config.trainer.eval_batch_size,
        seed=config.trainer.seed,
        balanced_sampler=config.trainer.class_weights == "sampler",
    )


def score_test_part(
    model: nn.Module, dm: BeatDataModule, config: RunConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics, timing) of ``model`` on the test part.

    A frozen fusion's backbones give every fusion stage built on them the same test outputs, so
    those are computed by the first stage and reused (keyed by the weights' and beats' hashes;
    equal to running model.pt on the beats). Its test time then covers the head only, and
    ``timing["test_backbones_reused"]`` says so.
    """
    where = device(config)
    x, y = dm.tensors["test"]
    batch = config.trainer.eval_batch_size
    reused = False
    start = time.perf_counter()
    if beat_models.uses_backbone_cache(config, model):
        model.eval().to(where)
        packed = model.cache_backbone_outputs(x, batch)
        reused = model.last_cache_hit
        with torch.no_grad():
            scores = torch.cat(
                [model.fuse_packed(p.to(where)).scores.float().cpu() for p in packed.split(batch)]
            )
    else:
        scores = predict_scores(model, x, batch, where)
    seconds = time.perf_counter() - start
    metrics = classification_metrics(scores, y, dm.class_names)
    timing = {
        "test_inference_seconds": round(seconds, 4),
        "test_samples_per_second": round(len(y) / seconds, 1) if seconds > 0 else None,
        "test_batch_size": batch,
        "test_backbones_reused": bool(reused),
        "device": device_name(where),
        "torch_threads": torch.get_num_threads(),
        "training_precision": training_precision(config.trainer.precision, where.type),
    }
    return metrics, timing


def _data_section(config: RunConfig, dm: BeatDataModule) -> dict[str, Any]:
    split = dm.split
    return {
        "dataset": dm.beats.dataset,
        "method": dm.beats.method,
        "protocol": split.protocol,
        "split_label": split.label,
        "intra_patient": bool(split.intra_patient),
        "split_seed": split.seed,
        "rebalance": config.data.rebalance,
        "max_beats": config.data.max_beats,
        "max_train_beats": config.data.max_train_beats,
        "max_val_beats": config.data.max_val_beats,
        "records": config.data.records,
        "n_samples": dm.n_samples,
        "sampling_rate": dm.sampling_rate,
        "class_names": list(dm.class_names),
        "detector": beat_detector(dm),
        "counts": dm.class_counts(),
        "warnings": list(split.warnings),
    }


class BeatTask(Task):
    """Single-lead beats of a beat dataset (mitdb, ptbdb, ptbxl-beats, ...), 1D/2D/fusion models."""

    def check(self, config: RunConfig, training: bool = True) -> None:
        beat_models.check_model_section(config, training)

    def load_data(self, config: RunConfig) -> BeatSet:
        return load_config_beats(config.data)

    def datamodule(
        self, config: RunConfig, data: BeatSet | None = None, parts: Sequence[str] | None = None
    ) -> BeatDataModule:
        return build_datamodule(config, data, parts)

    def build_model(self, config: RunConfig, dm: BeatDataModule) -> nn.Module:
        return beat_models.build_model(config, dm)

    def module(self, config: RunConfig, model: nn.Module, dm: BeatDataModule):
        cached = beat_models.uses_backbone_cache(config, model)
        return beat_models.build_module(config, model, dm, cached_inputs=cached)

    def fit_datamodule(self, config: RunConfig, model: nn.Module, dm: BeatDataModule):
        return beat_models.fit_datamodule(config, model, dm)

    def score(self, model: nn.Module, dm: BeatDataModule, config: RunConfig) -> dict[str, Any]:
        metrics, timing = score_test_part(model, dm, config)
        return {"metrics": metrics, "timing": timing}

    def model_card(self, config: RunConfig, dm: BeatDataModule) -> dict[str, Any]:
        return {
            "dataset": dm.beats.dataset,
            "method": dm.beats.method,
            "protocol": dm.split.protocol,
            "class_names": list(dm.class_names),
            "detector": beat_detector(dm),
        }

    def data_section(self, config: RunConfig, dm: BeatDataModule) -> dict[str, Any]:
        return _data_section(config, dm)

    def split_label(self, dm: BeatDataModule) -> str:
        return dm.split.label

    def figure_title(self, config: RunConfig, dm: BeatDataModule) -> str:
        return f"{config.model.name} on {dm.beats.dataset} ({dm.split.protocol})"

    def write_report(self, run_dir: Path, result: dict[str, Any]) -> None:
        write_report(run_dir, result)

    def write_summary(self, run_dir: Path, results: dict[int, dict[str, Any]]) -> dict[str, Any]:
        return write_summary(run_dir, results)
