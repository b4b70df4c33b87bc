"""R-peak detection: wfdb's XQRS plus a correction onto the R wave, in named settings.

Every beat set cut at detected peaks, and every recording a model labels, goes through
:func:`detect_r_peaks`. Each named setting was chosen by measurement for its data; a model
must be served with the detector its training beats were cut with (the model card records the
name, see :func:`serving_detector`), because the segmenters start a beat at its R peak and a
peak a few samples off shifts every beat the model sees.

``xqrs-125-deviation`` (serving MIT-BIH-style models; beats of mitdb are cut at the reference
annotations). Measured on MIT-BIH (records 100 105 108 119 203 207 208 232 against the
reference annotations, 150 ms window): XQRS at 125 Hz gross Se 0.989 / +P 0.956 in 5.8 s;
neurokit2's default detector Se 0.922 / +P 0.980 in 0.5 s (it misses half of record 207), and
neurokit2 pins pandas < 3. Detections are moved to the largest deviation from the local median
within ±48 ms, which is where the MIT-BIH annotators put the mark (within one sample for 99.7 %
of record 119's beats, 78 % without the refinement). XQRS and the refinement run at 125 Hz (4x
faster than at 360 Hz) and the peaks are mapped back; refining a second time on the original
samples was measured to be worse (record 119: 78 % of peaks within 3 ms of the reference instead
of 99 %): at full band the S wave of a PVC can out-deviate its R wave.

``xqrs-250-up`` (the PTB-XL beat set, cut from 100 Hz records). XQRS on the lead resampled to
250 Hz, then wfdb's ``correct_peaks(peak_dir='up')`` (radius 50 ms, smoothing 100 ms) at 125 Hz.
Measured on LUDB lead II (200 records with QRS annotations) downsampled to 100 Hz, 100 ms
tolerance: XQRS at 100 Hz Se 82.4 % / PPV 67.5 %, at 125 Hz 91.3 % / 81.4 %, at 250 Hz
99.8 % / 99.8 %; the upward correction puts 98.6 % (vs 94.6 %) within 30 ms of the annotation.

Issue 15 added rules on top (:func:`merge_refractory`, :func:`search_back`,
:func:`confirm_peaks`) in further named detectors, measured on the raw DS1 / DS2 records by
``ecgfusion bench detection`` (docs/detection.md), with wfdb's GQRS as a second engine.
``gqrs-125-deviation`` (GQRS at 125 Hz, then the same ±48 ms deviation refinement) won on DS1
(fewest missed + false beats of the variants better than the default in both Se and +P) and is
what cards of newly trained reference-annotation models record (:data:`TRAINING_DETECTOR`); a
card without a detector keeps ``xqrs-125-deviation``.

The first two return exactly the peaks of the code they replace (the former
``inference/detect.py`` and ``data/ptbxl.py``); tests/acceptance/test_rpeaks_real.py checks it
on real records against frozen copies. The rules on raw detections are in
:mod:`ecgfusion.data.peak_rules`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from wfdb import processing

from ecgfusion.data.beats import TARGET_FS, resample, resample_indices
from ecgfusion.data.peak_rules import (
    CONFIRM_BELOW,
    REFINE_SECONDS,
    REFRACTORY_SECONDS,
    SEARCHBACK_FRACTION,
    confirm_peaks,
    merge_refractory,
    refine_peaks,
    search_back,
)
from ecgfusion.errors import DataError


@dataclass(frozen=True)
class DetectorSettings:
    """One named R-peak detector: where XQRS runs and how its detections are corrected.

    Peaks always come out at ``TARGET_FS`` (125 Hz, the rate beats are cut at).
    """

    name: str
    #: One line for summaries and beat-set metadata.
    description: str
    #: Rate (Hz) the lead is resampled to for the QRS detector (XQRS, or GQRS with
    #: engine="gqrs"); the detections are mapped to 125 Hz.
    xqrs_fs: float
    #: ``"deviation"``: each peak moves to the largest |x - local median| within ±search_s
    #: (duplicates kept). ``"up"``: wfdb ``correct_peaks(peak_dir="up")`` with search radius
    #: search_s and smoothing window smooth_s, then sorted and de-duplicated.
    correction: str
    search_s: float
    smooth_s: float | None = None
    #: After the correction: of two peaks closer than this only the higher (merge_refractory).
    refractory_s: float | None = None
    #: Then look again in long RR gaps for beats of at least this fraction of the recent peaks'
    #: height (:func:`search_back`); None: no search-back.
    searchback: float | None = None
    #: Two leads: a peak under this fraction of its neighbours' median height is kept only when
    #: the second lead has a peak within ±100 ms (:func:`confirm_peaks`); None: one lead.
    confirm_below: float | None = None
    #: ``"xqrs"`` (wfdb's XQRS, adaptive) or ``"gqrs"`` (wfdb's port of PhysioNet's gqrs; its
    #: amplitude thresholds assume a lead in mV, as MIT-BIH and PTB-XL are).
    engine: str = "xqrs"

    @property
    def leads(self) -> int:
        return 1 if self.confirm_below is None else 2


XQRS_125_DEVIATION = "xqrs-125-deviation"
XQRS_250_UP = "xqrs-250-up"
XQRS_250_DEVIATION = "xqrs-250-deviation"
XQRS_125_SEARCHBACK = "xqrs-125-refractory-searchback"
XQRS_250_SEARCHBACK = "xqrs-250-refractory-searchback"
XQRS_125_TWO_LEAD = "xqrs-125-two-lead"
GQRS_125_DEVIATION = "gqrs-125-deviation"

_DEVIATION = {"correction": "deviation", "search_s": REFINE_SECONDS}

DETECTORS: dict[str, DetectorSettings] = {
    XQRS_125_DEVIATION: DetectorSettings(
        name=XQRS_125_DEVIATION,
        description="wfdb XQRS at 125 Hz, refined to the R extremum (±48 ms)",
        xqrs_fs=TARGET_FS,
        correction="deviation",
        search_s=REFINE_SECONDS,
    ),
    XQRS_250_UP: DetectorSettings(
        name=XQRS_250_UP,
        description=(
            "wfdb.processing.xqrs_detect on the lead resampled to 250 Hz, "
            "correct_peaks(peak_dir='up', radius 50 ms) at 125 Hz"
        ),
        xqrs_fs=250.0,
        correction="up",
        search_s=0.05,
        smooth_s=0.1,
    ),
    XQRS_250_DEVIATION: DetectorSettings(
        name=XQRS_250_DEVIATION,
        description="wfdb XQRS at 250 Hz, refined to the R extremum (±48 ms) at 125 Hz",
        xqrs_fs=250.0,
        **_DEVIATION,
    ),
    XQRS_125_SEARCHBACK: DetectorSettings(
        name=XQRS_125_SEARCHBACK,
        description=(
            "xqrs-125-deviation; of two peaks < 250 ms apart only the higher; search-back in RR "
            "gaps > 1.5 x the mean RR (beats >= 0.3 x the recent peak height)"
        ),
        xqrs_fs=TARGET_FS,
        refractory_s=REFRACTORY_SECONDS,
        searchback=SEARCHBACK_FRACTION,
        **_DEVIATION,
    ),
    XQRS_250_SEARCHBACK: DetectorSettings(
        name=XQRS_250_SEARCHBACK,
        description=(
            "xqrs-250-deviation; of two peaks < 250 ms apart only the higher; search-back in RR "
            "gaps > 1.5 x the mean RR (beats >= 0.3 x the recent peak height)"
        ),
        xqrs_fs=250.0,
        refractory_s=REFRACTORY_SECONDS,
        searchback=SEARCHBACK_FRACTION,
        **_DEVIATION,
    ),
    XQRS_125_TWO_LEAD: DetectorSettings(
        name=XQRS_125_TWO_LEAD,
        description=(
            "xqrs-125-deviation and the 250 ms refractory rule on both leads; a peak under half "
            "its neighbours' height is kept only when the other lead has one within ±100 ms"
        ),
        xqrs_fs=TARGET_FS,
        refractory_s=REFRACTORY_SECONDS,
        confirm_below=CONFIRM_BELOW,
        **_DEVIATION,
    ),
    GQRS_125_DEVIATION: DetectorSettings(
        name=GQRS_125_DEVIATION,
        description="wfdb gqrs_detect at 125 Hz, refined to the R extremum (±48 ms)",
        xqrs_fs=TARGET_FS,
        engine="gqrs",
        **_DEVIATION,
    ),
}

#: What a model is served with when its card does not name a detector: the one its dataset's
#: beats were cut with (ptbxl-beats), else the MIT-BIH-measured one. Shipped models keep it.
DEFAULT_DETECTOR = XQRS_125_DEVIATION
LEGACY_DETECTOR = DEFAULT_DETECTOR
DATASET_DETECTORS: dict[str, str] = {"ptbxl-beats": XQRS_250_UP}
#: What the card of a newly trained model records when its beats were cut at reference
#: annotations (mitdb, ...): the detector that won on DS1 (docs/detection.md).
TRAINING_DETECTOR = GQRS_125_DEVIATION


def get_detector(name: str) -> DetectorSettings:
    try:
        return DETECTORS[name]
    except (KeyError, TypeError):
        raise DataError(
            f"unknown R-peak detector {name!r}; known: {', '.join(sorted(DETECTORS))}"
        ) from None


def default_detector(dataset: str) -> str:
    """The detector name for a beat dataset whose beats do not record one."""
    return DATASET_DETECTORS.get(dataset, DEFAULT_DETECTOR)


def serving_detector(dataset: str, recorded: object = None) -> str:
    """The detector to serve a beat model of ``dataset`` with.

    ``recorded`` is what its card (or its beat set's meta) says; when it is not a known detector
    name (a card written before detectors had names, or a beat set cached with the old free-text
    description) the dataset decides: ptbxl-beats -> xqrs-250-up, anything else -> the default.
    """
    if isinstance(recorded, str) and recorded in DETECTORS:
        return recorded
    return default_detector(dataset)


def training_detector(dataset: str, recorded: object = None) -> str:
    """The detector to record on the card of a model trained now on ``dataset``'s beats.

    Beats cut by a detector (``recorded``, or ptbxl-beats' own) keep theirs, as in
    :func:`serving_detector`; beats cut at reference annotations get :data:`TRAINING_DETECTOR`.
    """
    if isinstance(recorded, str) and recorded in DETECTORS:
        return recorded
    return DATASET_DETECTORS.get(dataset, TRAINING_DETECTOR)


def _correct_up(signal: np.ndarray, peaks: np.ndarray, settings: DetectorSettings) -> np.ndarray:
    if len(peaks):
        peaks = processing.correct_peaks(
            signal,
            peaks,
            search_radius=round(settings.search_s * TARGET_FS),
            smooth_window_size=round(float(settings.smooth_s or 0.0) * TARGET_FS),
            peak_dir="up",
        )
    return np.unique(np.asarray(peaks, dtype=np.int64))


def _xqrs(signal: np.ndarray, fs: float) -> np.ndarray:
    xqrs = processing.XQRS(sig=np.asarray(signal, dtype=np.float64), fs=fs)
    xqrs.detect(verbose=False)
    return np.asarray(xqrs.qrs_inds, dtype=np.int64)


def _qrs(signal: np.ndarray, fs: float, engine: str) -> np.ndarray:
    if engine == "gqrs":
        qrs = processing.gqrs_detect(sig=np.asarray(signal, dtype=np.float64), fs=fs)
        return np.asarray(qrs, dtype=np.int64)
    return _xqrs(signal, fs)


def _lead_peaks(signal: np.ndarray, fs: float, settings: DetectorSettings):
    """(the lead at 125 Hz, its peaks there) for one lead: XQRS, correction, the rules."""
    low = resample(signal, fs, TARGET_FS)
    if settings.xqrs_fs == TARGET_FS:
        peaks = _qrs(low, TARGET_FS, settings.engine)
    else:
        qrs = _qrs(resample(signal, fs, settings.xqrs_fs), settings.xqrs_fs, settings.engine)
        peaks = resample_indices(qrs, settings.xqrs_fs, TARGET_FS)
        peaks = peaks[(peaks >= 0) & (peaks < len(low))]
    if settings.correction == "deviation":
        peaks = refine_peaks(low, peaks, TARGET_FS)
    elif settings.correction == "up":
        peaks = _correct_up(low, peaks, settings)
    else:  # pragma: no cover - DETECTORS is fixed above
        raise DataError(f"detector {settings.name}: unknown correction {settings.correction!r}")
    if settings.refractory_s is not None:
        peaks = merge_refractory(low, peaks, TARGET_FS, settings.refractory_s)
    if settings.searchback is not None:
        peaks = search_back(low, peaks, TARGET_FS, fraction=settings.searchback)
    return low, peaks


def detect_r_peaks(
    signal: np.ndarray,
    fs: float,
    detector: str = DEFAULT_DETECTOR,
    second: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(the lead at 125 Hz, its R peaks as indices into it) of one ECG lead sampled at ``fs``.

    ``second``: another lead of the same recording, for the two-lead detectors (which need it);
    the one-lead detectors ignore it.
    """
    settings = get_detector(detector)
    low, peaks = _lead_peaks(signal, fs, settings)
    if settings.confirm_below is not None:
        if second is None or len(second) != len(signal):
            raise DataError(
                f"R-peak detector {settings.name} needs a second lead of the same length"
            )
        _, other = _lead_peaks(second, fs, settings)
        peaks = confirm_peaks(peaks, other, TARGET_FS, signal=low, below=settings.confirm_below)
    return low, peaks


def locate_beats(
    signal: np.ndarray,
    fs: float,
    detector: str = DEFAULT_DETECTOR,
    second: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lead at 125 Hz, its R peaks there (for the segmenter) and at ``fs`` (for annotations).

    Peaks are found at 125 Hz (see the module docstring for why) and mapped back to the
    recording's own rate, never refined again there. ``second``: see :func:`detect_r_peaks`.
    """
    low, peaks = detect_r_peaks(signal, fs, detector, second)
    native = np.clip(np.rint(peaks * fs / TARGET_FS).astype(np.int64), 0, len(signal) - 1)
    return low, peaks, native
