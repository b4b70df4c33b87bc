"""A published pretrained folder is a trimmed run folder that predict and evaluate can read."""

from __future__ import annotations

import json

import pytest
import torch

from ecgfusion.experiments import publish
from ecgfusion.inference import loading
from ecgfusion.models import create_model, save_model
from ecgfusion.models.base import model_inputs
from ecgfusion.training.config import load_config, save_config

pytestmark = pytest.mark.acceptance


def fake_run(path, session_cache, mitdb_dir):
    config = load_config(
        "configs/cnn_transformer_1d_mitdb.yaml",
        ["data.protocol=inter-patient", f"data.cache_dir={session_cache}",
         f"data.data_root={mitdb_dir.parent}"],
    )
    save_config(config, path)
    torch.manual_seed(0)
    model = create_model("cnn_transformer_1d", n_classes=5, n_samples=187, sampling_rate=125.0,
                         n_layers=1, channels=16, n_heads=2)
    save_model(model, path / "model.pt")
    metrics = {
        "data": {"protocol": "inter-patient", "split_label": "inter-patient (de Chazal)",
                 "class_names": list("NSVFQ")},
        "metrics": {"n": 49712, "accuracy": 0.9, "macro_f1": 0.5, "weighted_f1": 0.8, "mcc": 0.4,
                    "aami": {"sveb_sensitivity": 0.3}},
        "timing": {"epochs_trained": 3, "train_seconds": 100.0},
    }
    (path / "metrics.json").write_text(json.dumps(metrics))
    (path / "checkpoints").mkdir()
    (path / "checkpoints" / "last.ckpt").write_bytes(b"big")
    return path


def test_publish_then_load_by_name(tmp_path, monkeypatch, session_cache, mitdb_dir, mitdb_beats):
    run = fake_run(tmp_path / "run", session_cache, mitdb_dir)
    monkeypatch.setattr(loading, "PRETRAINED_DIR", tmp_path / "pretrained")
    target = publish.publish_pretrained(run, "mitdb-1d-test", "quick", "ecgfusion reproduce",
                                        dest=tmp_path / "pretrained")
    assert sorted(p.name for p in target.iterdir()) == ["card.json", "config.yaml",
                                                        "metrics.json", "model.pt"]
    card = json.loads((target / "card.json").read_text())
    assert card["protocol"] == "inter-patient" and card["metrics"]["mcc"] == 0.4
    assert card["preset"] == "quick" and card["torch_version"].startswith("2.13")
    config = load_config(target / "config.yaml")
    assert config.data.cache_dir is None and config.data.data_root is None
    predictor = loading.load_predictor(pretrained="mitdb-1d-test")
    assert predictor.protocol == "inter-patient" and "101" in predictor.seen_records
    assert loading.pretrained_names() == ["mitdb-1d-test"]


def test_unfinished_runs_cannot_be_published(tmp_path):
    from ecgfusion.errors import DataError

    (tmp_path / "run").mkdir()
    with pytest.raises(DataError, match="only a finished run"):
        publish.publish_pretrained(tmp_path / "run", "x", "quick", "cmd", dest=tmp_path / "p")
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("name", loading.pretrained_names())
def test_every_shipped_model_loads_and_its_card_matches_its_metrics(name, mitdb_beats):
    """The shipped weights cannot rot: each loads, classifies real beats, and its card carries
    the metrics of its metrics.json (`evaluate --pretrained NAME` recomputes those in full)."""
    folder = loading.PRETRAINED_DIR / name
    card = json.loads((folder / "card.json").read_text())
    stored = json.loads((folder / "metrics.json").read_text())["metrics"]
    assert card["name"] == name and card["preset"] in ("quick", "cpu", "paper")
    for key, value in card["metrics"].items():
        assert value == stored[key]
    predictor = loading.load_predictor(pretrained=name)
    # PTB-XL beats have the same 187-sample form, so MIT-BIH beats exercise every model
    x, rr = mitdb_beats.signals[:32], mitdb_beats.rr[:32]
    batch = {"x": torch.from_numpy(x), "rr": torch.from_numpy(rr)}
    with torch.inference_mode():  # a model with a rhythm branch reads the beats' RR features too
        scores = predictor.model.eval()(**model_inputs(predictor.model, batch)).scores
    assert scores.shape == (32, len(card["class_names"])) and torch.isfinite(scores).all()
