"""The merged R-peak module gives, bit for bit, the peaks of the two detectors it replaced.

``legacy_*`` below are frozen copies of ``ecgfusion.inference.detect`` (XQRS at 125 Hz + the
±48 ms deviation refinement) and of ``ecgfusion.data.ptbxl.detect_r_peaks`` (XQRS at 250 Hz +
``correct_peaks(peak_dir='up')``) as they were before the merge; do not edit them.
"""

from __future__ import annotations

import numpy as np
import pytest
import wfdb
from wfdb import processing

from ecgfusion.data.beats import TARGET_FS, get_segmenter, resample, resample_indices
from ecgfusion.data.ptbxl import build_ptbxl_beats, load_metadata, read_signal
from ecgfusion.data.rpeaks import (
    XQRS_125_DEVIATION,
    XQRS_250_UP,
    detect_r_peaks,
    locate_beats,
)

pytestmark = pytest.mark.acceptance

# --------------------------------------------------------------------------- frozen copies

LEGACY_REFINE_SECONDS = 0.048
LEGACY_DETECT_FS = 250.0
LEGACY_PEAK_SEARCH_S = 0.05
LEGACY_PEAK_SMOOTH_S = 0.1


def legacy_refine_peaks(signal, peaks, fs):
    w = int(round(LEGACY_REFINE_SECONDS * fs))
    if len(peaks) == 0 or w == 0:
        return np.asarray(peaks, dtype=np.int64)
    idx = np.clip(np.asarray(peaks)[:, None] + np.arange(-w, w + 1)[None, :], 0, len(signal) - 1)
    seg = signal[idx]
    best = np.argmax(np.abs(seg - np.median(seg, axis=1, keepdims=True)), axis=1)
    refined = idx[np.arange(len(idx)), best]
    return refined.astype(np.int64)


def legacy_inference_detect(signal, fs):
    xqrs = processing.XQRS(sig=np.asarray(signal, dtype=np.float64), fs=fs)
    xqrs.detect(verbose=False)
    return legacy_refine_peaks(signal, np.asarray(xqrs.qrs_inds, dtype=np.int64), fs)


def legacy_locate_beats(signal, fs):
    low = resample(signal, fs, TARGET_FS)
    peaks = legacy_inference_detect(low, TARGET_FS)
    native = np.clip(np.rint(peaks * fs / TARGET_FS).astype(np.int64), 0, len(signal) - 1)
    return low, peaks, native


def legacy_ptbxl_detect(lead, fs):
    signal = resample(lead, fs, TARGET_FS)
    qrs = processing.xqrs_detect(
        resample(lead, fs, LEGACY_DETECT_FS), fs=LEGACY_DETECT_FS, verbose=False
    )
    peaks = resample_indices(np.asarray(qrs, dtype=np.int64), LEGACY_DETECT_FS, TARGET_FS)
    peaks = peaks[(peaks >= 0) & (peaks < len(signal))]
    if len(peaks):
        peaks = processing.correct_peaks(
            signal,
            peaks,
            search_radius=round(LEGACY_PEAK_SEARCH_S * TARGET_FS),
            smooth_window_size=round(LEGACY_PEAK_SMOOTH_S * TARGET_FS),
            peak_dir="up",
        )
    return signal, np.unique(np.asarray(peaks, dtype=np.int64))


# --------------------------------------------------------------------------- comparisons


def same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want)


@pytest.fixture(scope="module")
def mitdb_100(mitdb_dir):
    """MIT-BIH record 100, MLII, first 60 s at 360 Hz."""
    signal, fields = wfdb.rdsamp(str(mitdb_dir / "100"), channels=[0], sampto=360 * 60)
    return signal[:, 0], float(fields["fs"])


@pytest.fixture(scope="module")
def ptbxl_leads(ptbxl_dir):
    """Lead II of the first 8 PTB-XL records at 100 Hz."""
    meta = load_metadata(ptbxl_dir)
    return [read_signal(ptbxl_dir, name, 100, leads=("II",))[0] for name in meta["filename_lr"][:8]]


def test_125_hz_detector_matches_the_old_inference_detector(mitdb_100):
    signal, fs = mitdb_100
    old = legacy_locate_beats(signal, fs)
    new = locate_beats(signal, fs, XQRS_125_DEVIATION)
    assert len(old[1]) > 60  # ~75 beats in the first minute of record 100
    for got, want in zip(new, old, strict=True):
        same(got, want)
    for got, want in zip(locate_beats(signal, fs), old, strict=True):  # the default
        same(got, want)
    low, peaks = detect_r_peaks(signal, fs, XQRS_125_DEVIATION)
    same(low, old[0])
    same(peaks, old[1])


def test_250_hz_up_detector_matches_the_old_ptbxl_detector(mitdb_100, ptbxl_leads):
    for lead, fs in [*((x, 100.0) for x in ptbxl_leads), mitdb_100]:
        old_signal, old_peaks = legacy_ptbxl_detect(lead, fs)
        signal, peaks = detect_r_peaks(lead, fs, XQRS_250_UP)
        assert len(old_peaks) >= 2
        same(signal, old_signal)
        same(peaks, old_peaks)


def test_125_hz_detector_matches_on_ptbxl_leads(ptbxl_leads):
    for lead in ptbxl_leads:
        for got, want in zip(
            locate_beats(lead, 100.0, XQRS_125_DEVIATION),
            legacy_locate_beats(lead, 100.0),
            strict=True,
        ):
            same(got, want)


def test_ptbxl_beats_are_cut_at_the_old_detector_peaks(ptbxl_dir):
    meta = load_metadata(ptbxl_dir)
    ids = [int(i) for i in meta.index[:6]]
    beats = build_ptbxl_beats(ptbxl_dir, "kachuee", [str(i) for i in ids])
    assert beats.meta["detector"] == XQRS_250_UP
    segment = get_segmenter("kachuee")
    checked = 0
    for eid in ids:
        rows = beats.record == f"ptbxl:{eid}"
        if not rows.any():
            continue  # no diagnosis or a flat lead: left out before detection
        lead = read_signal(ptbxl_dir, meta.loc[eid, "filename_lr"], 100, leads=("II",))[0]
        signal, peaks = legacy_ptbxl_detect(lead, 100.0)
        cut, flat = segment(signal, peaks, TARGET_FS)
        same(beats.signals[rows], cut[~flat])
        same(beats.sample[rows], resample_indices(peaks[~flat], TARGET_FS, 100.0))
        checked += 1
    assert checked >= 3
