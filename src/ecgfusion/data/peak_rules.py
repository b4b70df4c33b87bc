"""What the R-peak detectors of :mod:`ecgfusion.data.rpeaks` do to raw detections: move each
onto the R wave (the ±48 ms deviation refinement), merge two within a refractory period, search
long gaps again, and keep a low peak only when a second lead confirms it. Pure NumPy on one
lead's samples; measured choices in docs/detection.md."""

from __future__ import annotations

import numpy as np

#: The ±window of the deviation refinement (``xqrs-125-deviation``).
REFINE_SECONDS = 0.048
#: Search-back: a gap longer than this many mean RR intervals is searched again, and a beat
#: found there must reach this fraction of the recent detected peaks' height.
SEARCHBACK_GAP = 1.5
SEARCHBACK_FRACTION = 0.3
#: Two peaks closer than this are one beat (a refractory period: at most 240 beats/min).
REFRACTORY_SECONDS = 0.25
#: Two leads: a peak counts as confirmed when the other lead has one within ±100 ms; only peaks
#: under this fraction of the running median height need it.
CONFIRM_SECONDS = 0.1
CONFIRM_BELOW = 0.5


def _deviations(signal: np.ndarray, peaks: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """The ±48 ms window of sample indices around each peak, and |x - the window's median|."""
    w = int(round(REFINE_SECONDS * fs))
    idx = np.clip(np.asarray(peaks)[:, None] + np.arange(-w, w + 1)[None, :], 0, len(signal) - 1)
    seg = signal[idx]
    return idx, np.abs(seg - np.median(seg, axis=1, keepdims=True))


def refine_peaks(signal: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray:
    """Each peak moved to the largest deviation from the local median within ±48 ms."""
    w = int(round(REFINE_SECONDS * fs))
    if len(peaks) == 0 or w == 0:
        return np.asarray(peaks, dtype=np.int64)
    idx, deviation = _deviations(signal, peaks, fs)
    best = np.argmax(deviation, axis=1)
    refined = idx[np.arange(len(idx)), best]
    return refined.astype(np.int64)


def peak_amplitudes(signal: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray:
    """|x - the median of the ±48 ms around it| at each peak: the height the rules compare."""
    if len(peaks) == 0:
        return np.zeros(0)
    idx, deviation = _deviations(signal, peaks, fs)
    w = idx.shape[1] // 2
    return deviation[:, w]


def merge_refractory(
    signal: np.ndarray, peaks: np.ndarray, fs: float, seconds: float
) -> np.ndarray:
    """Sorted unique peaks, of any two closer than ``seconds`` only the higher one (a heart cannot
    beat twice within its refractory period; a second detection there is the same QRS or its
    T wave). Runs of close peaks collapse onto their highest."""
    peaks = np.unique(np.asarray(peaks, dtype=np.int64))
    if len(peaks) < 2:
        return peaks
    amp = peak_amplitudes(signal, peaks, fs)
    keep = [0]
    for i in range(1, len(peaks)):
        if peaks[i] - peaks[keep[-1]] < seconds * fs:
            if amp[i] > amp[keep[-1]]:
                keep[-1] = i
        else:
            keep.append(i)
    return peaks[keep]


def search_back(
    signal: np.ndarray,
    peaks: np.ndarray,
    fs: float,
    gap_ratio: float = SEARCHBACK_GAP,
    fraction: float = SEARCHBACK_FRACTION,
    history: int = 8,
) -> np.ndarray:
    """Peaks plus the beats found by looking again in long RR gaps.

    A gap longer than ``gap_ratio`` x the mean of the (up to) ``history`` RR intervals before it
    is searched, between half that mean after its first peak and half before its last, for the
    largest deviation from the 200 ms running median (a baseline that follows P and T waves but
    not a QRS); it becomes a peak when it reaches ``fraction`` of the median height of the
    ``history`` detected peaks before the gap (a lower threshold than the detector's).
    """
    from scipy.ndimage import median_filter

    peaks = np.unique(np.asarray(peaks, dtype=np.int64))
    if len(peaks) < 3:
        return peaks
    envelope = np.abs(signal - median_filter(signal, size=int(round(0.1 * fs)) * 2 + 1))
    height = envelope[peaks]
    rr = np.diff(peaks)
    found = []
    for i in range(1, len(rr)):
        mean_rr = rr[max(0, i - history) : i].mean()
        if rr[i] <= gap_ratio * mean_rr:
            continue
        lo, hi = peaks[i] + int(0.5 * mean_rr), peaks[i + 1] - int(0.5 * mean_rr)
        if hi <= lo:
            continue
        best = lo + int(np.argmax(envelope[lo:hi]))
        if envelope[best] >= fraction * np.median(height[max(0, i - history + 1) : i + 1]):
            found.append(best)
    return np.unique(np.concatenate([peaks, np.asarray(found, dtype=np.int64)]))


def confirm_peaks(
    peaks: np.ndarray,
    other: np.ndarray,
    fs: float,
    seconds: float = CONFIRM_SECONDS,
    signal: np.ndarray | None = None,
    below: float | None = None,
) -> np.ndarray:
    """The peaks with a peak of the other lead within ±``seconds`` (an artefact or a noise spike
    is seldom in both leads at once; a QRS is).

    With ``signal`` (the lead ``peaks`` index) and ``below``, only the weak peaks need the other
    lead: those under ``below`` x the running median height of 17 peaks around them (a lead with
    its own poor stretches, e.g. MIT-BIH's V1, then cannot veto a clear beat).
    """
    peaks, other = np.asarray(peaks, dtype=np.int64), np.sort(np.asarray(other, dtype=np.int64))
    if len(peaks) == 0:
        return peaks
    if len(other) == 0:
        confirmed = np.zeros(len(peaks), dtype=bool)
    else:
        j = np.searchsorted(other, peaks)
        before = np.abs(peaks - other[np.clip(j - 1, 0, len(other) - 1)])
        after = np.abs(other[np.clip(j, 0, len(other) - 1)] - peaks)
        confirmed = np.minimum(before, after) <= seconds * fs
    if signal is not None and below is not None:
        from scipy.ndimage import median_filter

        height = peak_amplitudes(signal, peaks, fs)
        confirmed |= height >= below * median_filter(height, size=17, mode="nearest")
    return peaks[confirmed]
