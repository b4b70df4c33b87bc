"""Every shipped model loads, matches its card, and scores beats through the Python API with the
inputs it names (beats, and RR features for a model with a rhythm branch)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ecgfusion
from ecgfusion.inference.loading import PRETRAINED_DIR

NAMES = ecgfusion.list_pretrained()


def test_the_rhythm_models_are_shipped():
    assert {"mitdb-late-fusion-rhythm", "mitdb-inter-patient-rhythm-fusion"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_a_shipped_model_matches_its_card_and_scores_beats(name):
    card = json.loads((PRETRAINED_DIR / name / "card.json").read_text(encoding="utf-8"))
    predictor = ecgfusion.load_pretrained(name)
    assert card["name"] == name and card["model"] == predictor.model.spec["name"]
    assert list(card["class_names"]) == list(predictor.class_names)
    rng = np.random.default_rng(0)
    beats = rng.random((3, predictor.n_samples), dtype=np.float32)
    rr = None
    if "rr" in predictor.inputs:
        assert card["params"].get("rhythm") is True and card["dataset"] == "mitdb"
        rr = np.full((3, 8), 0.8, dtype=np.float32)
        with pytest.raises(ecgfusion.errors.ShapeError, match="rr"):
            predictor.predict_beats(beats)  # a rhythm model needs the beats' RR features
    probs = predictor.predict_beats(beats, rr=rr)
    assert probs.shape == (3, len(predictor.class_names))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
