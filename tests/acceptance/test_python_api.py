"""The Python API on real MIT-BIH data, and docs/python-api.md's examples, which run as written
(so the page cannot rot)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import wfdb

import ecgfusion
from ecgfusion.data.labels import BEAT_SYMBOLS

pytestmark = pytest.mark.acceptance

PAGE = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"


def doc_blocks() -> list[tuple[str, str]]:
    """(section heading, code) of every ```python block of the page, in order."""
    text = PAGE.read_text()
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M):
        headings = re.findall(r"^## (.+)$", text[: match.start()], flags=re.M)
        blocks.append((headings[-1] if headings else "top", match.group(1)))
    return blocks


@pytest.fixture
def real_data(monkeypatch, tmp_path, mitdb_dir, session_cache, mitdb_beats):
    """The page's defaults point at the test data: the data root, the session's beat cache
    (the full set is cut once, by mitdb_beats) and temporary folders under tmp_path."""
    monkeypatch.setenv("ECGFUSION_DATA", str(mitdb_dir.parent))
    monkeypatch.setenv("ECGFUSION_CACHE", str(session_cache))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return mitdb_dir


def test_the_page_has_its_examples():
    sections = [s for s, _ in doc_blocks()]
    assert len(sections) == 4, sections
    assert any("train" in s.lower() for s in sections)


@pytest.mark.parametrize("section, code", doc_blocks(), ids=[s for s, _ in doc_blocks()])
def test_doc_example_runs(real_data, capsys, section, code):
    exec(compile(code, f"{PAGE.name}: {section}", "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out
    assert out.strip(), f"{section}: the example printed nothing"
    if section.startswith("Train"):
        assert re.search(r"^True \S+$", out, flags=re.M), out  # evaluate reproduces the run


@pytest.fixture(scope="module")
def late_fusion():
    return ecgfusion.load_pretrained("mitdb-late-fusion")


def test_predict_signal_finds_the_reference_beats_of_record_100(late_fusion, mitdb_dir):
    """The first 60 s of record 100 at 360 Hz: ~ the reference beat count, mostly N."""
    record = wfdb.rdrecord(str(mitdb_dir / "100"), channel_names=["MLII"], sampto=360 * 60)
    ann = wfdb.rdann(str(mitdb_dir / "100"), "atr", sampto=360 * 60)
    reference = ann.sample[np.isin(ann.symbol, list(BEAT_SYMBOLS))]
    result = late_fusion.predict_signal(record.p_signal[:, 0], fs=record.fs, name="100")
    assert abs(len(result.samples) - len(reference)) <= 2
    assert result.samples.dtype == np.int64 and result.samples.max() < 360 * 60
    assert result.probs.shape == (len(result.samples), 5)
    np.testing.assert_allclose(result.probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(result.labels, result.probs.argmax(1))
    assert result.counts()["N"] >= 0.9 * len(result.samples)
    assert result.symbols[:3] == ["N", "N", "N"] and result.warnings == []
    # Each detected beat is within 150 ms of a reference beat (the EC57 window).
    nearest = np.abs(result.samples[:, None] - reference[None, :]).min(axis=1)
    assert np.mean(nearest <= 0.15 * 360) > 0.97
    # RR features from the detected peaks agree with the reference rhythm (regular, ~0.8 s)
    from ecgfusion.features.rr import RR_FEATURE_NAMES

    assert result.rr.shape == (len(result.samples), len(RR_FEATURE_NAMES))
    pre_rr = result.rr[:, RR_FEATURE_NAMES.index("pre_rr")]
    assert abs(np.median(pre_rr) - np.median(np.diff(reference)) / 360) < 0.02


def test_predict_signal_is_the_cli_path_and_warns_on_training_records(
    late_fusion, mitdb_dir, monkeypatch, tmp_path, session_cache, mitdb_beats
):
    """predict_signal gives what `ecgfusion predict` gives for the same lead as a .npy file
    (read_recording + predict_recording); the leakage warning appears once the training records
    have been asked for, and the CLI's loader still computes them."""
    from ecgfusion.inference.loading import load_predictor
    from ecgfusion.inference.predict import predict_recording
    from ecgfusion.inference.recording import read_recording

    monkeypatch.setenv("ECGFUSION_DATA", str(mitdb_dir.parent))
    monkeypatch.setenv("ECGFUSION_CACHE", str(session_cache))
    signal, _ = wfdb.rdsamp(str(mitdb_dir / "119"), channels=[0], sampto=360 * 30)
    np.save(tmp_path / "119.npy", signal[:, 0])
    mine = late_fusion.predict_signal(signal, fs=360, name="119")
    assert mine.warnings == []  # nothing of the training set was read, so nothing to warn of
    cli = predict_recording(
        read_recording(tmp_path / "119.npy", fs=360), load_predictor(None, "mitdb-late-fusion")
    )
    np.testing.assert_array_equal(mine.samples, cli.samples)
    np.testing.assert_array_equal(mine.labels, cli.labels)
    np.testing.assert_allclose(mine.probs, cli.probs, atol=1e-6)
    assert cli.warnings and cli.warnings[0].startswith("LEAKAGE: record 119")  # CLI unchanged
    checked = ecgfusion.load_pretrained("mitdb-late-fusion", check_leakage=True)
    assert "119" in checked.seen_records()  # beat-random: every record is in training
    warned = checked.predict_signal(signal, fs=360, name="119")
    assert warned.warnings == cli.warnings


def test_predict_beats_on_real_beats(late_fusion, mitdb_beats):
    """Shipped hybrid on every 200th MIT-BIH beat (it was trained on most of them, so this
    checks the plumbing: the probabilities give its training-level accuracy)."""
    index = np.arange(0, len(mitdb_beats), 200)
    probs = late_fusion.predict_beats(mitdb_beats.signals[index])
    assert probs.shape == (len(index), 5)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert np.mean(probs.argmax(1) == mitdb_beats.labels[index]) > 0.95
