"""Reading one lead from CSV / NumPy, and the input checks (synthetic signals)."""

from __future__ import annotations

import numpy as np
import pytest

from ecgfusion.data.peak_rules import refine_peaks
from ecgfusion.errors import DataError
from ecgfusion.inference.recording import bad_stretches, read_recording


def sine(seconds=20.0, fs=250.0):
    t = np.arange(int(seconds * fs)) / fs
    return np.sin(2 * np.pi * 1.2 * t)


def test_csv_with_header_picks_mlii(tmp_path):
    path = tmp_path / "r.csv"
    x = sine()
    path.write_text("V1,MLII\n" + "\n".join(f"{0.0},{v}" for v in x))
    rec = read_recording(path, fs=250)
    assert rec.lead == "MLII" and rec.fs == 250 and np.allclose(rec.signal, x)


def test_headerless_csv_and_npy(tmp_path):
    x = sine()
    (tmp_path / "r.csv").write_text("\n".join(str(v) for v in x))
    assert len(read_recording(tmp_path / "r.csv", fs=250).signal) == len(x)
    np.save(tmp_path / "r.npy", np.stack([x, -x], axis=1))
    rec = read_recording(tmp_path / "r.npy", lead="1", fs=250)
    assert np.allclose(rec.signal, -x)


@pytest.mark.parametrize(
    "kwargs, signal, message",
    [
        ({}, sine(), "pass --fs"),
        ({"fs": 50}, sine(fs=50), "below 100 Hz"),
        ({"fs": 250}, sine(seconds=5), "at least 10 s"),
        ({"fs": 250}, np.full(5000, np.nan), "NaN or flat"),
        ({"fs": 250, "lead": "7"}, np.stack([sine(), sine()], 1), "no lead '7'"),
    ],
)
def test_bad_inputs_are_one_line_errors(tmp_path, kwargs, signal, message):
    np.save(tmp_path / "r.npy", signal)
    with pytest.raises(DataError, match=message) as err:
        read_recording(tmp_path / "r.npy", **kwargs)
    assert "r.npy" in str(err.value) and "\n" not in str(err.value)


def test_nan_and_flat_stretches_are_zeroed_and_listed(tmp_path):
    x = sine()
    x[500:750] = np.nan  # 2.0-3.0 s
    x[2500:3000] = 0.3  # flat 10.0-12.0 s
    np.save(tmp_path / "r.npy", x)
    rec = read_recording(tmp_path / "r.npy", fs=250)
    assert np.isfinite(rec.signal).all()
    assert rec.bad_ranges[0] == pytest.approx((2.0, 3.0))
    assert rec.bad_ranges[1][0] == pytest.approx(10.0, abs=0.01)
    assert rec.bad_ranges[1][1] == pytest.approx(12.0, abs=0.01)


def test_short_flat_runs_are_not_bad():
    x = sine()
    x[100:110] = 0.0  # 40 ms, e.g. a clipped sample run
    assert not bad_stretches(x, 250).any()


def test_refine_moves_detection_onto_the_extremum():
    x = np.zeros(1000)
    x[500] = -3.0  # a negative R wave (e.g. a V beat in MLII)
    assert refine_peaks(x, np.array([495]), fs=125).tolist() == [500]
