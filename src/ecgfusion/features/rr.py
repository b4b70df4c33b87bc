"""RR-interval (rhythm) features of each beat, from a record's R-peak sequence alone (no labels).

The timing features of de Chazal et al. (2004) and Mondéjar-Guerra et al. (2019): how long before
and after a beat its neighbours came, the rhythm around it and the record's rhythm, each in seconds
and divided by the record's mean RR (so that a premature beat reads < 1 whatever the patient's
heart rate). Pure NumPy: this module imports no torch of its own.

The peaks must be those of *every* beat of the record (every beat annotation), taken before any
beat is dropped (flat beats, unlabelled classes); select the rows of the kept beats afterwards.
Dropping beats first would turn two RR intervals into one long one.
"""

from __future__ import annotations

import numpy as np

from ecgfusion.errors import DataError, ShapeError

#: Column order of :func:`rr_features`: four in seconds, then the same four divided by the record's
#: mean RR. ``avg_rr_norm`` is 1 by construction; it is kept so the layout stays "4 + same 4".
RR_FEATURE_NAMES: tuple[str, ...] = (
    "pre_rr",
    "post_rr",
    "local_rr",
    "avg_rr",
    "pre_rr_norm",
    "post_rr_norm",
    "local_rr_norm",
    "avg_rr_norm",
)
N_RR_FEATURES = len(RR_FEATURE_NAMES)

#: Plausible RR range in seconds (400 bpm .. 20 bpm): an interval outside it is a double detection
#: (or two annotations on one beat) or a gap (missed beats, a break in the recording).
MIN_RR_S = 0.15
MAX_RR_S = 3.0
#: An interval more than this factor away from the record's median RR (shorter than median / 3 or
#: longer than 3 x median) is an outlier too. Premature beats (coupling ~0.5 x median) and full
#: compensatory pauses (2 x median) stay inside the band; three and more missed beats do not.
OUTLIER_FACTOR = 3.0
#: Local RR: the mean of the valid RR intervals among the LOCAL_HALF_WINDOW intervals before the
#: beat and the LOCAL_HALF_WINDOW after it (10 intervals, beats i-5 .. i+5), centred.
LOCAL_HALF_WINDOW = 5
#: Every RR value of a record without any valid RR interval (fewer than two peaks, or only
#: outliers): 0.8 s (75 bpm), a typical resting adult rhythm; the normalised features are then 1.
DEFAULT_RR_S = 0.8


def valid_rr(rr: np.ndarray) -> np.ndarray:
    """Mask of the RR intervals (seconds) that count: inside [MIN_RR_S, MAX_RR_S] and within a
    factor OUTLIER_FACTOR of the median of the intervals that pass the first test."""
    rr = np.asarray(rr, dtype=np.float64)
    ok = (rr >= MIN_RR_S) & (rr <= MAX_RR_S)
    if not ok.any():
        return ok
    median = float(np.median(rr[ok]))
    return ok & (rr >= median / OUTLIER_FACTOR) & (rr <= median * OUTLIER_FACTOR)


def rr_features(peaks: np.ndarray, fs: float) -> np.ndarray:
    """RR features of every peak: float32 [n_peaks, 8], columns :data:`RR_FEATURE_NAMES`.

    ``peaks``: the R-peak sample indices of *all* beats of one record, 1-D, ascending (equal
    neighbours are allowed and give a 0-s interval, which is an outlier). ``fs``: their sampling
    rate in Hz. The result is always finite. Definitions:

    - ``pre_rr`` / ``post_rr``: the interval from the previous peak / to the next one, in seconds.
    - valid intervals (:func:`valid_rr`): within [0.15 s, 3 s] and within a factor 3 of the
      record's median interval. Only valid intervals enter ``local_rr`` and ``avg_rr``.
    - ``local_rr``: mean of the valid intervals among the 5 before and the 5 after the beat
      (centred, 10 intervals, truncated at the record's ends; it sees no label, only peaks). With
      no valid interval in the window: ``avg_rr``.
    - ``avg_rr``: mean of all valid intervals of the record; :data:`DEFAULT_RR_S` when there is
      none (fewer than two peaks, or every interval an outlier).
    - a beat's own ``pre_rr`` / ``post_rr`` that is an outlier, and the first beat's ``pre_rr`` and
      the last beat's ``post_rr`` (which do not exist), are replaced by that beat's ``local_rr``.
      One rule for every unknown interval: it reads as "ordinary timing" (normalised ~ 1), neither
      premature nor late. Copying the neighbouring interval instead would give a premature first
      beat its own compensatory pause as pre-RR, i.e. make it look late; the record mean would
      ignore a local change of rate.
    - the ``*_norm`` columns are the four above divided by ``avg_rr`` (``avg_rr_norm`` == 1).

    0 peaks give a [0, 8] array; 1 peak gives one row of :data:`DEFAULT_RR_S` (normalised 1).
    """
    peaks = np.asarray(peaks)
    if peaks.ndim != 1:
        raise ShapeError(
            f"rr_features: peaks must be a 1-D array of sample indices, expected shape "
            f"[n_peaks], got shape {tuple(peaks.shape)}"
        )
    if not (np.issubdtype(peaks.dtype, np.integer) or np.issubdtype(peaks.dtype, np.floating)):
        raise DataError(
            f"rr_features: peaks must be numeric sample indices, got dtype {peaks.dtype}"
        )
    fs = float(fs)
    if not np.isfinite(fs) or fs <= 0:
        raise DataError(f"rr_features: the sampling rate must be a positive number of Hz, got {fs}")
    peaks = peaks.astype(np.float64)
    if not np.isfinite(peaks).all():
        raise DataError("rr_features: peaks contain NaN or infinite sample indices")
    n = len(peaks)
    out = np.empty((n, N_RR_FEATURES), dtype=np.float64)
    if n == 0:
        return out.astype(np.float32)
    rr = np.diff(peaks) / fs  # rr[j]: from peak j to peak j + 1
    if (rr < 0).any():
        k = int(np.flatnonzero(rr < 0)[0])
        raise DataError(
            f"rr_features: peaks must be sorted ascending, but peaks[{k}]={peaks[k]:g} > "
            f"peaks[{k + 1}]={peaks[k + 1]:g}"
        )
    valid = valid_rr(rr)
    avg = float(rr[valid].mean()) if valid.any() else DEFAULT_RR_S

    # Local mean over intervals j in [i - H, i + H) of beat i, from cumulative sums (no loop).
    m = len(rr)
    sums = np.concatenate([[0.0], np.cumsum(np.where(valid, rr, 0.0))])
    counts = np.concatenate([[0], np.cumsum(valid)])
    beat = np.arange(n)
    lo = np.clip(beat - LOCAL_HALF_WINDOW, 0, m)
    hi = np.clip(beat + LOCAL_HALF_WINDOW, 0, m)
    k = counts[hi] - counts[lo]
    local = np.where(k > 0, (sums[hi] - sums[lo]) / np.maximum(k, 1), avg)

    pre = local.copy()  # the first beat has no previous interval
    post = local.copy()  # the last beat has no next interval
    pre[1:] = np.where(valid, rr, local[1:])
    post[:-1] = np.where(valid, rr, local[:-1])

    out[:, 0], out[:, 1], out[:, 2], out[:, 3] = pre, post, local, avg
    out[:, 4:] = out[:, :4] / avg
    return out.astype(np.float32)
