"""The segmenters on hand-checked synthetic beats (one function at a time)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgfusion.data.beats import (
    resample,
    resample_indices,
    segment_centered,
    segment_kachuee,
    segment_length,
    window_median_rr,
)
from ecgfusion.errors import DataError


def spikes(n: int, peaks: np.ndarray, height: float = 2.0) -> np.ndarray:
    """Zero baseline, a spike of ``height`` at each peak and a 0.5 bump (a T wave) 10 samples on."""
    x = np.zeros(n)
    x[peaks] = height
    after = peaks + 10
    x[after[after < n]] = 0.5
    return x


def test_window_median_rr_per_window():
    # Window 0 (samples 0..1249): RR 100; window 1 (1250..2499): RR 150.
    peaks = np.array([100, 200, 300, 400, 1300, 1450, 1600, 1750])
    rr = window_median_rr(peaks, fs=125)
    np.testing.assert_array_equal(rr[:4], 100)
    np.testing.assert_array_equal(rr[4:], 150)


def test_window_with_one_beat_borrows_record_median():
    peaks = np.array([100, 200, 300, 1300])  # window 1 has a single beat
    rr = window_median_rr(peaks, fs=125)
    # Record RR intervals: 100, 100, 1000 -> median 100.
    assert rr[3] == 100


def test_window_median_rr_needs_two_peaks():
    with pytest.raises(DataError):
        window_median_rr(np.array([10]), fs=125)


def test_kachuee_beat_starts_at_peak_and_spans_1_2_rr():
    peaks = np.arange(100, 1200, 100)  # RR = 100 samples -> span 120
    x = spikes(1400, peaks)
    beats, flat = segment_kachuee(x, peaks)
    assert beats.shape == (len(peaks), 187) and beats.dtype == np.float32
    assert not flat.any()
    first = beats[0]
    assert first[0] == pytest.approx(1.0)  # the R peak is the maximum of its span
    assert first[10] == pytest.approx(0.25)  # the bump: 0.5 / 2.0 after min-max
    assert first[100] == pytest.approx(1.0)  # the next R peak, 100 samples later, is in the span
    assert first[110] == pytest.approx(0.25)
    assert np.count_nonzero(first) == 4  # nothing else in [0, 120) and zero padding after
    np.testing.assert_array_equal(first[120:], 0.0)


def test_kachuee_cuts_long_beats_to_187():
    peaks = np.array([100, 400, 700, 1000])  # RR 300 -> span 360 > 187
    beats, _ = segment_kachuee(spikes(1400, peaks), peaks)
    assert beats.shape == (4, 187)
    # Span 360 is cut at 187: the next peak (300 on) is outside, so the row holds one spike + bump.
    assert np.flatnonzero(beats[0]).tolist() == [0, 10]
    assert beats[0, 10] == pytest.approx(0.25)


def test_kachuee_last_beat_near_record_end_is_padded():
    peaks = np.array([100, 200, 300, 395])
    x = spikes(400, peaks)
    beats, _ = segment_kachuee(x, peaks)
    np.testing.assert_array_equal(beats[-1, 5:], 0.0)  # only 5 samples left in the record


def test_flat_span_is_flagged_not_divided():
    x = np.zeros(1000)
    peaks = np.array([100, 200, 300])
    beats, flat = segment_kachuee(x, peaks)
    assert flat.all()
    assert np.isfinite(beats).all()


def test_centered_window_puts_peak_at_quarter_second():
    peaks = np.array([300, 600])
    beats, flat = segment_centered(spikes(1000, peaks), peaks)
    assert beats.shape == (2, segment_length("centered")) == (2, 87)  # 31 before + 56 after
    assert beats[0].argmax() == 31  # round(0.25 s * 125 Hz)
    assert not flat.any()


def test_resample_360_to_125_keeps_length_ratio_and_indices():
    x = np.sin(np.linspace(0, 20 * np.pi, 3600))
    y = resample(x, 360, 125)
    assert len(y) == 1250
    np.testing.assert_array_equal(resample_indices(np.array([0, 360, 3599]), 360), [0, 125, 1250])


@settings(max_examples=40, deadline=None)
@given(
    n_beats=st.integers(2, 30),
    rr=st.integers(40, 300),
    jitter=st.integers(0, 20),
    seed=st.integers(0, 2**31 - 1),
    length=st.sampled_from([187, 188, 100]),
)
def test_kachuee_output_shape_and_range(n_beats, rr, jitter, seed, length):
    rng = np.random.default_rng(seed)
    peaks = np.cumsum(rr + rng.integers(0, jitter + 1, n_beats)).astype(np.int64)
    x = rng.normal(size=int(peaks[-1]) + rng.integers(1, 400))
    beats, flat = segment_kachuee(x, peaks, length=length)
    assert beats.shape == (n_beats, length)
    assert beats.dtype == np.float32
    assert np.isfinite(beats).all()
    assert beats.min() >= 0.0 and beats.max() <= 1.0
    # Every beat that is not flat reaches both ends of [0, 1].
    assert np.allclose(beats[~flat].max(axis=1), 1.0)
    assert np.allclose(beats[~flat].min(axis=1), 0.0)
