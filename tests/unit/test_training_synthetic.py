"""The one training pipeline without PhysioNet data: tiny synthetic beat and record sets through
`train`, `evaluate`, resume and seeds in seconds, so the training code is tested everywhere (the
acceptance tier repeats this on real records)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgfusion.data.beats import BeatSet
from ecgfusion.data.ptbxl import PtbxlRecords
from ecgfusion.features.rr import RR_FEATURE_NAMES
from ecgfusion.training.config import validate_config
from ecgfusion.training.trainer import evaluate, train

CLASSES = ("N", "S", "V", "F", "Q")
N_SAMPLES = 187
SMALL_1D = {"channels": 16, "n_layers": 1, "n_heads": 2, "dim_feedforward": 16}


def synthetic_beats(per_class: int = 100, seed: int = 0) -> BeatSet:
    """Five classes told apart by where a bump sits in the beat, plus noise: learnable in one
    epoch, so a pipeline that does not learn fails the accuracy check."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, N_SAMPLES)
    signals = np.concatenate(
        [
            np.exp(-((t - 0.1 - 0.18 * c) ** 2) / 0.002)[None]
            + 0.05 * rng.standard_normal((per_class, N_SAMPLES))
            for c in range(len(CLASSES))
        ]
    ).astype(np.float32)
    labels = np.repeat(np.arange(len(CLASSES)), per_class).astype(np.int64)
    record = np.array([f"r{i % 6}" for i in range(len(labels))])
    # RR features that tell S (premature: short pre-RR, long post-RR) from the rest.
    rr = 0.8 + 0.05 * rng.standard_normal((len(labels), len(RR_FEATURE_NAMES)))
    rr[labels == 1, 0] -= 0.35
    rr[labels == 1, 1] += 0.35
    return BeatSet(
        signals=signals,
        labels=labels,
        class_names=CLASSES,
        record=record,
        patient=record.copy(),
        sample=np.arange(len(labels), dtype=np.int64) * 300,
        fs=125.0,
        dataset="mitdb",
        method="kachuee",
        rr=rr.astype(np.float32),
        rr_names=RR_FEATURE_NAMES,
    )


def synthetic_records(n: int = 60, seed: int = 0) -> PtbxlRecords:
    """PTB-XL-shaped records (12 leads, 10 s at 100 Hz, metadata, 5 superclasses) over all
    ten strat_folds, so train, validation and test parts all exist."""
    rng = np.random.default_rng(seed)
    targets = np.zeros((n, 5), dtype=np.float32)
    normal = (np.arange(n) // 10) % 2 == 0  # every fold holds normal and abnormal records
    targets[normal, 0] = 1.0
    targets[~normal, rng.integers(1, 5, int((~normal).sum()))] = 1.0
    binary = (targets[:, 1:].sum(axis=1) > 0).astype(np.int64)
    signal = 0.1 * rng.standard_normal((n, 12, 1000)).astype(np.float32)
    signal[:, 1, ::50] += targets[:, :1] * 2.0  # NORM leaves a trace the model may find
    return PtbxlRecords(
        signal=signal,
        metadata=rng.random((n, len(PtbxlRecords.meta_names))).astype(np.float32),
        targets=targets,
        binary=binary,
        ecg_id=np.arange(1, n + 1, dtype=np.int64),
        patient_id=np.arange(1, n + 1, dtype=np.int64),
        strat_fold=(np.arange(n, dtype=np.int64) % 10) + 1,
        fs=100.0,
    )


def beat_config(model: str = "kachuee_cnn", epochs: int = 1, **params):
    return validate_config(
        {
            "data": {"dataset": "mitdb", "protocol": "beat-random"},
            "model": {"name": model, "params": params},
            "optim": {"name": "adamw", "lr": 3e-3},
            "trainer": {"max_epochs": epochs, "batch_size": 32, "eval_batch_size": 128,
                        "num_threads": 1, "early_stopping": None},
        }  # fmt: skip
    )


@pytest.fixture(scope="module")
def beats() -> BeatSet:
    return synthetic_beats()


def test_a_beat_run_learns_reproduces_and_resumes(beats, tmp_path):
    run = tmp_path / "run"
    result = train(beat_config(epochs=2), run, data=beats)
    assert result["metrics"]["accuracy"] > 0.9  # five separable classes
    for name in ("config.yaml", "model.pt", "metrics.json", "report.md"):
        assert (run / name).is_file(), name
    assert evaluate(run, data=beats)["difference"] == 0.0
    longer = train(beat_config(epochs=3), run, resume=True, data=beats)
    assert longer["timing"]["resumed"] is True and longer["timing"]["epochs_trained"] == 3
    assert json.loads((run / "metrics.json").read_text())["timing"]["epochs_trained"] == 3


def test_a_fusion_trains_on_its_backbones(beats, tmp_path):
    b1d = train(beat_config("cnn_transformer_1d", **SMALL_1D), tmp_path / "b1d", data=beats)
    train(beat_config("cnn_2d", filters=4, image_size=32), tmp_path / "b2d", data=beats)
    config = beat_config("late_fusion")
    config.model.backbones = {
        "backbone_1d": str(tmp_path / "b1d"),
        "backbone_2d": str(tmp_path / "b2d"),
    }
    result = train(config, tmp_path / "fusion", data=beats)
    assert result["metrics"]["n"] == b1d["metrics"]["n"]  # the same test part
    assert result["data"]["split_label"] == b1d["data"]["split_label"]
    assert evaluate(tmp_path / "fusion", data=beats)["reproduced"] is True
    # The rhythm branch as a third view (issue 15): trained alone, then fused with the two.
    rhythm = train(beat_config("rhythm_mlp", epochs=3), tmp_path / "rr", data=beats)
    assert rhythm["metrics"]["per_class"]["S"]["sensitivity"] > 0.8  # told apart by RR alone
    config = beat_config("intermediate_fusion", rhythm=True)
    config.model.backbones = {
        "backbone_1d": str(tmp_path / "b1d"),
        "backbone_2d": str(tmp_path / "b2d"),
        "backbone_rr": str(tmp_path / "rr"),
    }
    three = train(config, tmp_path / "fusion3", data=beats)
    assert three["metrics"]["n"] == b1d["metrics"]["n"]
    assert evaluate(tmp_path / "fusion3", data=beats)["reproduced"] is True
    # Shipped, its config names no backbone folders (model.pt holds them): it still evaluates.
    from ecgfusion.experiments.publish import publish_pretrained

    shipped = publish_pretrained(tmp_path / "fusion3", "f3", "cpu", "cmd", dest=tmp_path / "pre")
    assert "backbones: null" in (shipped / "config.yaml").read_text()
    assert evaluate(shipped, data=beats)["reproduced"] is True


def record_config(task: str, epochs: int = 1, seeds: list[int] | None = None):
    return validate_config(
        {
            "data": {"dataset": "ptbxl", "task": task, "protocol": "strat-fold"},
            "model": {"name": "multimodal",
                      "params": {"d_model": 16, "n_layers": 1, "n_heads": 2,
                                 "dim_feedforward": 16, "meta_hidden": 8, "hidden": 16}},
            "optim": {"name": "adam", "lr": 1e-3},
            "trainer": {"max_epochs": epochs, "batch_size": 16, "eval_batch_size": 64,
                        "num_threads": 1},
            "seeds": seeds,
        }  # fmt: skip
    )


@pytest.mark.parametrize("task", ["binary", "superclasses"])
def test_record_runs_use_the_same_pipeline_with_seeds(task, tmp_path):
    records = synthetic_records()
    result = train(record_config(task, seeds=[0, 1]), tmp_path / "run", data=records)
    assert result["summary"]["seeds"] == [0, 1]
    assert "macro_auroc" in result["summary"]["metrics"]
    test_n = int((records.strat_fold == 10).sum())
    for seed, run in result["runs"].items():
        assert run["run"]["seed"] == seed and run["metrics"]["n"] == test_n
        assert run["data"]["task"] == task and "validation" in run
    again = evaluate(tmp_path / "run", data=records)["runs"]
    assert [again[s]["difference"] for s in (0, 1)] == [0.0, 0.0]


def test_a_record_run_resumes_with_a_longer_budget(tmp_path):
    records = synthetic_records()
    run = tmp_path / "run"
    train(record_config("superclasses"), run, data=records)
    longer = train(record_config("superclasses", epochs=2), run, resume=True, data=records)
    assert longer["timing"]["resumed"] is True and longer["timing"]["epochs_trained"] == 2
    assert evaluate(run, data=records)["difference"] == 0.0
