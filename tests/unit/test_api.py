"""The Python API's contract without any dataset: lazy import, no dataset I/O when a shipped model
loads, probabilities of the right shape, one-line errors for wrong shapes and rates."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import ecgfusion
from ecgfusion.errors import ConfigError, DataError, ShapeError

SHIPPED = "mitdb-late-fusion"


@pytest.fixture(scope="module")
def model():
    return ecgfusion.load_pretrained(SHIPPED)


def fake_beats(n: int, length: int = 187, seed: int = 0) -> np.ndarray:
    """Beat-like rows in [0, 1]: a spike at the start (the R peak), a bump, zero padding."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    rows = np.exp(-((t[None, :] - rng.integers(40, 80, (n, 1))) ** 2) / 200.0) * 0.4
    rows[:, :4] = 1.0
    rows[:, 150:] = 0.0
    return (rows + rng.normal(0, 0.01, rows.shape)).clip(0, 1).astype(np.float32)


def test_import_does_not_load_torch():
    code = (
        "import sys, ecgfusion\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'lightning', 'wfdb', 'pandas', 'scipy'})\n"
        "assert not heavy and 'ecgfusion.api' not in sys.modules, heavy\n"
        "assert callable(ecgfusion.load_pretrained) and 'ecgfusion.api' in sys.modules\n"
        "assert 'torch' not in sys.modules  # resolving a name does not load torch either\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_public_names_resolve_lazily():
    from ecgfusion import api

    assert set(ecgfusion.__all__) == {"__version__", *api.__all__}
    for name in api.__all__:
        assert getattr(ecgfusion, name) is getattr(api, name)
        assert name in dir(ecgfusion)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ecgfusion.nope  # noqa: B018


def test_load_pretrained_reads_no_dataset(monkeypatch):
    def forbidden(*args, **kwargs):
        raise RuntimeError("dataset I/O while loading a model")

    for target in (
        "ecgfusion.data.cache.load_beats",
        "ecgfusion.data.cache.prepare_beats",
        "ecgfusion.data.cache.read_beats",
        "ecgfusion.data.mitdb.build_mitdb_beats",
        "ecgfusion.data.splits.make_split",
        "wfdb.rdrecord",
        "wfdb.rdsamp",
    ):
        monkeypatch.setattr(target, forbidden)
    for name in (SHIPPED, "ptbxl-beats-cnn-2d"):
        predictor = ecgfusion.load_pretrained(name)
        assert predictor.model.n_samples == 187 and predictor.source == f"pretrained:{name}"
    # The check itself is what reads the training set, and only when asked for.
    with pytest.raises(RuntimeError, match="dataset I/O"):
        ecgfusion.load_pretrained(SHIPPED, check_leakage=True)
    with pytest.raises(RuntimeError, match="dataset I/O"):
        predictor.seen_records()


def test_predict_beats_gives_probabilities_that_agree_with_the_model(model):
    beats = fake_beats(300)
    probs = model.predict_beats(beats, batch_size=64)  # several batches
    assert probs.shape == (300, 5) and probs.dtype == np.float32
    assert model.class_names == ("N", "S", "V", "F", "Q")
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    with torch.inference_mode():
        scores = model.model.eval()(torch.from_numpy(beats)).scores
    np.testing.assert_array_equal(probs.argmax(1), scores.argmax(1).numpy())
    # [n, 1, 187], float64 and lists are the same beats
    np.testing.assert_allclose(
        model.predict_beats(beats[:, None, :].astype(np.float64)), probs, atol=1e-6
    )
    np.testing.assert_allclose(model.predict_beats(beats[:2].tolist()), probs[:2], atol=1e-6)
    assert model.predict_beats(np.zeros((0, 187))).shape == (0, 5)


@pytest.mark.parametrize(
    "beats, actual, hint",
    [
        (np.zeros((4, 360)), "(4, 360)", "get_segmenter('kachuee')"),
        (np.zeros(187), "(187,)", "beats[None]"),
        (np.zeros((2, 187, 2)), "(2, 187, 2)", "one lead"),
        (np.zeros((2, 2, 187)), "(2, 2, 187)", "one lead"),
        (np.array(["a"] * 187)[None], "dtype <U1", ""),
        ([[0.0] * 187, [0.0] * 10], "cannot read", ""),
    ],
)
def test_wrong_beat_shapes_are_one_line_shape_errors(model, beats, actual, hint):
    with pytest.raises(ShapeError) as info:
        model.predict_beats(beats)
    message = str(info.value)
    assert "\n" not in message
    assert "expects beats of shape [n, 187] (kachuee beats at 125 Hz)" in message
    assert actual in message and hint in message


def test_non_finite_beats_are_refused(model):
    beats = fake_beats(5)
    beats[3, 10] = np.nan
    with pytest.raises(DataError, match="1 of 5 beats hold NaN or inf values .first: row 3"):
        model.predict_beats(beats)
    with pytest.raises(ConfigError, match="batch_size must be a positive integer, got 0"):
        model.predict_beats(fake_beats(2), batch_size=0)


@pytest.mark.parametrize(
    "signal, fs, error, message",
    [
        (np.zeros((3600, 2)), 360, ShapeError, "[n_samples] (>= 3600 at 360 Hz), got (3600, 2)"),
        (np.zeros((2, 3600)), 360, ShapeError, "got (2, 3600); pick one lead"),
        (np.zeros(1000), 360, ShapeError, "(>= 3600 at 360 Hz), got (1000,) (2.8 s)"),
        (np.zeros(4000), float("nan"), ConfigError, "finite sampling rate in Hz (>= 100), "),
        (np.zeros(4000), float("inf"), ConfigError, "got inf"),
        (np.zeros(4000), 0, ConfigError, "got 0"),
        (np.zeros(4000), "360", ConfigError, "got '360'"),
        (np.zeros(4000), True, ConfigError, "got True"),
        (np.zeros(4000), 50, ConfigError, "fs=50 Hz is below 100 Hz"),
        (np.full(4000, np.nan), 360, DataError, "NaN or flat for 100% of the recording"),
    ],
)
def test_bad_signals_and_rates_are_one_line_errors(model, signal, fs, error, message):
    with pytest.raises(error) as info:
        model.predict_signal(signal, fs=fs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_create_model_and_load_config():
    net = ecgfusion.create_model("cnn_transformer_1d", channels=32, n_layers=1, n_heads=4)
    assert (net.n_classes, net.n_samples, net.sampling_rate) == (5, 187, 125.0)
    assert ecgfusion.create_model("kachuee_cnn", n_classes=2).n_classes == 2
    assert "late_fusion" in ecgfusion.list_models() and SHIPPED in ecgfusion.list_pretrained()
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        ecgfusion.create_model("nope")
    raw = {"model": {"name": "cnn_2d"}, "data": {"records": ["100"]}}
    config = ecgfusion.load_config(raw, overrides=["trainer.max_epochs=2"])
    assert config.trainer.max_epochs == 2 and config.data.records == ["100"]
    assert "max_epochs" not in raw.get("trainer", {})  # the mapping is not changed
    file = ecgfusion.load_config("configs/cnn_2d_mitdb.yaml", ["optim.lr=0.01"])
    assert file.optim.lr == 0.01
    with pytest.raises(ConfigError, match="config mapping"):
        ecgfusion.load_config({"model": {"name": "cnn_2d"}, "trainer": {"epochs": 2}})


def test_load_run_needs_a_finished_run(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        ecgfusion.load_run(tmp_path / "missing")
    with pytest.raises(DataError, match="holds no model.pt"):
        ecgfusion.load_run(tmp_path)
    with pytest.raises(DataError, match="no pretrained model 'nope'"):
        ecgfusion.load_pretrained("nope")
