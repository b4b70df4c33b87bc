"""Beat sets and the two segmenters that cut them out of a resampled ECG lead.

Both segmenters are vectorised over all beats of a record (one gather, no Python loop per beat):
preparing all 48 MIT-BIH records is dominated by reading the files, not by cutting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from math import gcd

import numpy as np
from scipy.signal import resample_poly

from ecgfusion.errors import DataError, ShapeError

TARGET_FS = 125.0
KACHUEE_LENGTH = 187
WINDOW_SECONDS = 10.0


@dataclass(frozen=True)
class BeatSet:
    """One row per beat: the fixed-length signal plus where it came from.

    ``sample`` is the R-peak index at the record's native sampling rate, so a beat can always be
    found again in the original file. ``patient`` is what patient-disjoint splits group by.

    ``rr`` holds the beat's rhythm features (float32 [n, len(rr_names)], columns ``rr_names``;
    ecgfusion.features.rr.rr_features computes them from every beat of the record, before beats
    are dropped). Only MIT-BIH fills them for now; the Kaggle CSVs, PTB and PTB-XL beats leave
    ``rr`` None and ``rr_names`` empty. Every operation (subset, concatenate, the Parquet cache)
    carries them along.
    """

    signals: np.ndarray  # float32 [n, n_samples]
    labels: np.ndarray  # int64 [n], index into class_names
    class_names: tuple[str, ...]
    record: np.ndarray  # str [n]
    patient: np.ndarray  # str [n]
    sample: np.ndarray  # int64 [n]
    fs: float
    dataset: str
    method: str
    meta: dict = field(default_factory=dict)
    rr: np.ndarray | None = None  # float32 [n, len(rr_names)]
    rr_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.labels)
        object.__setattr__(self, "rr_names", tuple(self.rr_names))
        if self.rr is None:
            if self.rr_names:
                raise ShapeError(
                    f"BeatSet has rr_names {self.rr_names} but no rr array; pass both or neither"
                )
        else:
            rr = np.asarray(self.rr, dtype=np.float32)
            expected = (n, len(self.rr_names))
            if rr.shape != expected or not self.rr_names:
                raise ShapeError(
                    f"BeatSet.rr must be [n_beats, len(rr_names)] = [{expected[0]}, "
                    f"{expected[1]}] with rr_names given, got shape {tuple(rr.shape)}"
                )
            object.__setattr__(self, "rr", rr)
        if self.signals.ndim != 2 or self.signals.shape[0] != n:
            raise ValueError(
                f"BeatSet signals must be [n_beats, n_samples] with n_beats={n}, "
                f"got shape {tuple(self.signals.shape)}"
            )
        for name in ("record", "patient", "sample"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"BeatSet.{name} has {len(getattr(self, name))} rows, expected {n}"
                )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_samples(self) -> int:
        return int(self.signals.shape[1])

    def class_counts(self, index: np.ndarray | None = None) -> dict[str, int]:
        labels = self.labels if index is None else self.labels[index]
        counts = np.bincount(labels, minlength=len(self.class_names))
        return {c: int(k) for c, k in zip(self.class_names, counts, strict=True)}

    def subset(self, index: np.ndarray) -> BeatSet:
        return BeatSet(
            signals=self.signals[index],
            labels=self.labels[index],
            class_names=self.class_names,
            record=self.record[index],
            patient=self.patient[index],
            sample=self.sample[index],
            fs=self.fs,
            dataset=self.dataset,
            method=self.method,
            meta=dict(self.meta),
            rr=None if self.rr is None else self.rr[index],
            rr_names=self.rr_names,
        )

    @staticmethod
    def concatenate(parts: list[BeatSet], meta: dict | None = None) -> BeatSet:
        if not parts:
            raise ValueError("cannot concatenate an empty list of beat sets")
        first = parts[0]
        with_rr = [p.rr is not None for p in parts]
        if any(with_rr) and not all(with_rr):
            raise ShapeError(
                f"cannot concatenate beat sets with RR features and without: "
                f"{sum(with_rr)} of {len(parts)} parts have them"
            )
        names = {p.rr_names for p in parts}
        if len(names) > 1:
            raise ShapeError(f"cannot concatenate beat sets with different RR columns: {names}")
        return BeatSet(
            signals=np.concatenate([p.signals for p in parts]),
            labels=np.concatenate([p.labels for p in parts]),
            class_names=first.class_names,
            record=np.concatenate([p.record for p in parts]),
            patient=np.concatenate([p.patient for p in parts]),
            sample=np.concatenate([p.sample for p in parts]),
            fs=first.fs,
            dataset=first.dataset,
            method=first.method,
            meta=meta if meta is not None else dict(first.meta),
            rr=np.concatenate([p.rr for p in parts]) if all(with_rr) else None,
            rr_names=first.rr_names,
        )


def resample(signal: np.ndarray, fs_in: float, fs_out: float = TARGET_FS) -> np.ndarray:
    """Polyphase resampling (anti-aliased), exact for rational rate ratios like 360 -> 125 Hz."""
    if fs_in == fs_out:
        return np.asarray(signal, dtype=np.float64)
    up, down = _rational(fs_out, fs_in)
    return resample_poly(np.asarray(signal, dtype=np.float64), up, down)


def resample_indices(samples: np.ndarray, fs_in: float, fs_out: float = TARGET_FS) -> np.ndarray:
    return np.rint(np.asarray(samples, dtype=np.float64) * (fs_out / fs_in)).astype(np.int64)


def _rational(fs_out: float, fs_in: float) -> tuple[int, int]:
    a, b = round(fs_out * 1000), round(fs_in * 1000)
    g = gcd(a, b)
    return a // g, b // g


def window_median_rr(peaks: np.ndarray, fs: float, window_s: float = WINDOW_SECONDS) -> np.ndarray:
    """Median RR interval (samples) of the 10-s window each peak falls in (Kachuee et al. 2018).

    Windows are consecutive and non-overlapping from the start of the record. A window with fewer
    than two beats borrows the median RR of the whole record.
    """
    peaks = np.asarray(peaks, dtype=np.int64)
    if len(peaks) < 2:
        raise DataError("need at least two R peaks to estimate an RR interval")
    window = (peaks // int(round(window_s * fs))).astype(np.int64)
    rr = np.diff(peaks).astype(np.float64)
    record_median = float(np.median(rr))
    out = np.full(len(peaks), record_median)
    # RR pairs entirely inside one window belong to that window.
    same = window[1:] == window[:-1]
    for w in np.unique(window):
        pairs = same & (window[:-1] == w)
        if pairs.any():
            out[window == w] = np.median(rr[pairs])
    return out


def _minmax_rows(segments: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min-max normalise each row over its valid part; rows with no range are flagged."""
    big = np.where(valid, segments, np.inf)
    small = np.where(valid, segments, -np.inf)
    lo = big.min(axis=1, keepdims=True)
    hi = small.max(axis=1, keepdims=True)
    span = hi - lo
    flat = (span[:, 0] <= 1e-12) | ~np.isfinite(span[:, 0])
    span = np.where(flat[:, None], 1.0, span)
    out = np.where(valid, (segments - lo) / span, 0.0)
    return out.astype(np.float32), flat


def _gather(signal: np.ndarray, starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows signal[s:s+length] (zero outside the signal) and a mask of in-signal positions."""
    idx = starts[:, None] + np.arange(length)[None, :]
    inside = (idx >= 0) & (idx < len(signal))
    return np.where(inside, signal[np.clip(idx, 0, len(signal) - 1)], 0.0), inside


def segment_kachuee(
    signal: np.ndarray,
    peaks: np.ndarray,
    fs: float = TARGET_FS,
    length: int = KACHUEE_LENGTH,
    rr_factor: float = 1.2,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut beats the way the Kaggle/paper set was cut.

    Each beat starts at its R peak and lasts ``rr_factor`` times the median RR of its 10-s
    window, is min-max normalised to [0, 1] over that span, then zero-padded or cut to
    ``length``. Returns (beats [n, length] float32, flat [n] bool): a flat beat has no amplitude
    range and cannot be normalised, so the caller must drop and report it.
    """
    peaks = np.asarray(peaks, dtype=np.int64)
    spans = np.rint(rr_factor * window_median_rr(peaks, fs)).astype(np.int64)
    spans = np.clip(spans, 1, length)
    raw, inside = _gather(np.asarray(signal, dtype=np.float64), peaks, length)
    valid = inside & (np.arange(length)[None, :] < spans[:, None])
    return _minmax_rows(raw, valid)


def segment_centered(
    signal: np.ndarray,
    peaks: np.ndarray,
    fs: float = TARGET_FS,
    before_s: float = 0.25,
    after_s: float = 0.45,
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed window around each R peak (the common morphology view), min-max normalised.

    Samples outside the record are zero and ignored by the normalisation.
    """
    before = int(round(before_s * fs))
    length = before + int(round(after_s * fs))
    raw, inside = _gather(
        np.asarray(signal, dtype=np.float64), np.asarray(peaks, np.int64) - before, length
    )
    return _minmax_rows(raw, inside)


Segmenter = Callable[..., tuple[np.ndarray, np.ndarray]]
SEGMENTERS: dict[str, Segmenter] = {"kachuee": segment_kachuee, "centered": segment_centered}


def get_segmenter(method: str) -> Segmenter:
    try:
        return SEGMENTERS[method]
    except KeyError:
        raise DataError(
            f"unknown beat method {method!r}; choose one of {', '.join(sorted(SEGMENTERS))}"
        ) from None


def segment_length(method: str, fs: float = TARGET_FS, **params: float) -> int:
    """Beat length in samples a method produces, without cutting anything."""
    if method == "kachuee":
        return int(params.get("length", KACHUEE_LENGTH))
    if method == "centered":
        return int(round(params.get("before_s", 0.25) * fs)) + int(
            round(params.get("after_s", 0.45) * fs)
        )
    get_segmenter(method)
    raise AssertionError("unreachable")
