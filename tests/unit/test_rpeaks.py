"""The named R-peak detectors on synthetic leads, and which detector a model is served with."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ecgfusion.data.beats import TARGET_FS, BeatSet
from ecgfusion.data.labels import AAMI_CLASSES, PTB_CLASSES
from ecgfusion.data.rpeaks import (
    DEFAULT_DETECTOR,
    DETECTORS,
    GQRS_125_DEVIATION,
    LEGACY_DETECTOR,
    TRAINING_DETECTOR,
    XQRS_125_DEVIATION,
    XQRS_125_TWO_LEAD,
    XQRS_250_SEARCHBACK,
    XQRS_250_UP,
    confirm_peaks,
    default_detector,
    detect_r_peaks,
    get_detector,
    locate_beats,
    merge_refractory,
    search_back,
    serving_detector,
    training_detector,
)
from ecgfusion.errors import DataError
from ecgfusion.inference.loading import PRETRAINED_DIR, card_detector, load_predictor
from ecgfusion.training.tasks.beat_classification import BeatTask

#: The free-text "detector" that ptbxl-beats sets cached before detectors had names hold.
OLD_PTBXL_META = (
    "wfdb.processing.xqrs_detect on lead II resampled 100->250 Hz, "
    "correct_peaks(peak_dir='up', radius 50 ms) at 125 Hz"
)


def synthetic_ecg(fs: float, seconds: float = 30.0, rate_bpm: float = 72.0, seed: int = 0):
    """A lead with a narrow R wave, a small S dip and a T bump per beat, plus noise; the true R
    peak sample indices."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    rr = 60.0 / rate_bpm
    beats = np.arange(0.5, seconds - 0.5, rr)
    beats = beats + rng.uniform(-0.03, 0.03, len(beats))
    x = np.zeros_like(t)
    for b in beats:
        x += 1.2 * np.exp(-(((t - b) / 0.012) ** 2))
        x -= 0.25 * np.exp(-(((t - b - 0.03) / 0.012) ** 2))
        x += 0.3 * np.exp(-(((t - b - 0.28) / 0.06) ** 2))
    x += rng.normal(0, 0.01, len(t))
    return x, np.rint(beats * fs).astype(np.int64)


def test_registry_holds_both_measured_settings():
    assert {XQRS_125_DEVIATION, XQRS_250_UP, XQRS_250_SEARCHBACK} <= set(DETECTORS)
    assert DEFAULT_DETECTOR == LEGACY_DETECTOR == XQRS_125_DEVIATION
    assert TRAINING_DETECTOR == GQRS_125_DEVIATION  # the DS1 winner (docs/detection.md)
    assert DETECTORS[GQRS_125_DEVIATION].engine == "gqrs"
    for name in (XQRS_125_DEVIATION, XQRS_250_UP):  # the published ones: no added rule
        rules = DETECTORS[name]
        assert (rules.refractory_s, rules.searchback, rules.confirm_below) == (None,) * 3
    low = DETECTORS[XQRS_125_DEVIATION]
    assert (low.xqrs_fs, low.correction, low.search_s) == (TARGET_FS, "deviation", 0.048)
    up = DETECTORS[XQRS_250_UP]
    assert (up.xqrs_fs, up.correction, up.search_s, up.smooth_s) == (250.0, "up", 0.05, 0.1)
    for name, settings in DETECTORS.items():
        assert settings.name == name and settings.description
    with pytest.raises(DataError, match="unknown R-peak detector 'pan-tompkins'"):
        get_detector("pan-tompkins")
    with pytest.raises(DataError, match="unknown R-peak detector"):
        detect_r_peaks(np.zeros(3600), 360.0, "pan-tompkins")


@pytest.mark.parametrize("detector", sorted(DETECTORS))
@pytest.mark.parametrize("fs", [100.0, 360.0, 500.0])
def test_each_detector_finds_the_synthetic_r_peaks(detector, fs):
    x, truth = synthetic_ecg(fs)
    low, peaks, native = locate_beats(x, fs, detector, second=x)
    assert len(low) == int(round(len(x) * TARGET_FS / fs))
    assert peaks.dtype == np.int64 and native.dtype == np.int64
    assert np.all(np.diff(peaks) > 0)
    truth_low = np.rint(truth * TARGET_FS / fs).astype(np.int64)
    # every true beat found within 1 sample at 125 Hz (8 ms), no extra detections
    assert len(peaks) == len(truth)
    assert np.abs(peaks - truth_low).max() <= 1
    assert np.array_equal(native, np.clip(np.rint(peaks * fs / TARGET_FS), 0, len(x) - 1))
    assert np.array_equal(detect_r_peaks(x, fs, detector, x)[1], peaks)


def test_default_detector_is_the_125_hz_one():
    x, _ = synthetic_ecg(360.0, seconds=20.0)
    default, named = locate_beats(x, 360.0), locate_beats(x, 360.0, XQRS_125_DEVIATION)
    assert all(np.array_equal(a, b) for a, b in zip(default, named, strict=True))


def test_the_up_correction_never_picks_a_negative_deflection():
    """A beat whose largest deviation is downward: the deviation detector lands on it, the
    upward correction on the positive R wave."""
    fs = 125.0
    x, truth = synthetic_ecg(fs, seconds=20.0)
    t = np.arange(len(x)) / fs
    for b in truth / fs:
        x -= 3.0 * np.exp(-(((t - b - 0.032) / 0.01) ** 2))  # a deep S wave 4 samples later
    _, up = detect_r_peaks(x, fs, XQRS_250_UP)
    _, deviation = detect_r_peaks(x, fs, XQRS_125_DEVIATION)
    assert len(up) == len(deviation) == len(truth)
    assert np.all(x[up] > 0) and np.all(x[deviation] < 0)


@pytest.mark.parametrize(
    "dataset, recorded, expected",
    [
        ("ptbxl-beats", None, XQRS_250_UP),  # an old card: the dataset decides
        ("mitdb", None, XQRS_125_DEVIATION),
        ("ptbdb", None, XQRS_125_DEVIATION),
        ("kaggle-mitbih", None, XQRS_125_DEVIATION),
        ("ptbxl-beats", OLD_PTBXL_META, XQRS_250_UP),  # an old cache's free text
        ("mitdb", XQRS_250_UP, XQRS_250_UP),  # a recorded name wins
        ("ptbxl-beats", XQRS_125_DEVIATION, XQRS_125_DEVIATION),
    ],
)
def test_serving_detector(dataset, recorded, expected):
    assert serving_detector(dataset, recorded) == expected
    if recorded is None:
        assert default_detector(dataset) == expected


def test_card_detector_honours_the_card_and_falls_back_without_one(tmp_path):
    assert card_detector({}, "ptbxl-beats", tmp_path) == XQRS_250_UP
    assert card_detector({"dataset": "mitdb"}, "mitdb", tmp_path) == XQRS_125_DEVIATION
    assert card_detector({"detector": XQRS_250_UP}, "mitdb", tmp_path) == XQRS_250_UP
    assert card_detector({"detector": XQRS_125_DEVIATION}, "ptbxl-beats", tmp_path) == (
        XQRS_125_DEVIATION
    )
    for bad in ("hamilton", ["xqrs-250-up"]):
        with pytest.raises(DataError, match="R-peak detector .* this version does not know"):
            card_detector({"detector": bad}, "mitdb", tmp_path)


@pytest.mark.parametrize(
    "name, expected",
    [("ptbxl-beats-cnn-2d", XQRS_250_UP), ("mitdb-late-fusion", XQRS_125_DEVIATION)],
)
def test_shipped_models_without_a_card_detector_are_served_by_dataset(name, expected):
    predictor = load_predictor(pretrained=name, check_leakage=False)
    assert "detector" not in predictor.model.extra  # published before the card named it
    assert predictor.detector == expected


def test_a_run_card_detector_is_what_predict_uses(tmp_path, monkeypatch):
    import shutil

    from ecgfusion.inference import predict
    from ecgfusion.inference.recording import recording_from_lead
    from ecgfusion.models import load_model, save_model

    run = tmp_path / "run"
    shutil.copytree(PRETRAINED_DIR / "mitdb-late-fusion", run)
    model = load_model(run / "model.pt")
    save_model(model, run / "model.pt", extra={**model.extra, "detector": XQRS_250_UP})
    predictor = load_predictor(run, check_leakage=False)
    assert predictor.detector == XQRS_250_UP

    seen = []
    real = predict.locate_beats

    def spy(signal, fs, detector):
        seen.append(detector)
        return real(signal, fs, detector)

    monkeypatch.setattr(predict, "locate_beats", spy)
    x, _ = synthetic_ecg(360.0, seconds=20.0)
    recording = recording_from_lead(x, 360.0, "syn", "0", tmp_path / "syn", "synthetic")
    prediction = predict.predict_recording(recording, predictor)
    assert seen == [XQRS_250_UP]
    # RR features of each classified beat, from the detected peaks (issue 15)
    assert prediction.rr.shape == (len(prediction.samples), 8)
    assert np.isfinite(prediction.rr).all()
    summary = prediction.summary(predictor)
    assert summary["detector"] == XQRS_250_UP
    assert summary["detector_description"] == DETECTORS[XQRS_250_UP].description
    assert f"- detector: {XQRS_250_UP} (" in predict._summary_markdown(summary)


def _datamodule(dataset: str, class_names: tuple[str, ...], meta: dict) -> SimpleNamespace:
    n = 4
    beats = BeatSet(
        signals=np.zeros((n, 187), dtype=np.float32),
        labels=np.zeros(n, dtype=np.int64),
        class_names=class_names,
        record=np.array(["r"] * n),
        patient=np.array(["p"] * n),
        sample=np.arange(n, dtype=np.int64),
        fs=TARGET_FS,
        dataset=dataset,
        method="kachuee",
        meta=meta,
    )
    return SimpleNamespace(
        beats=beats, split=SimpleNamespace(protocol="beat-random"), class_names=class_names
    )


@pytest.mark.parametrize(
    "dataset, classes, meta, expected",
    [
        ("ptbxl-beats", PTB_CLASSES, {"detector": XQRS_250_UP}, XQRS_250_UP),
        ("ptbxl-beats", PTB_CLASSES, {"detector": OLD_PTBXL_META}, XQRS_250_UP),
        ("mitdb", AAMI_CLASSES, {}, TRAINING_DETECTOR),  # cut at the reference annotations
        ("mitdb", AAMI_CLASSES, {"detector": XQRS_125_DEVIATION}, XQRS_125_DEVIATION),
    ],
)
def test_beat_model_card_records_the_detector(dataset, classes, meta, expected):
    card = BeatTask().model_card(None, _datamodule(dataset, classes, meta))
    assert card["detector"] == expected
    assert card["dataset"] == dataset and card["class_names"] == list(classes)


# --------------------------------------------------------------------------- the added rules


def test_training_detector_is_the_ds1_winner_but_old_cards_keep_the_legacy_one():
    assert training_detector("mitdb") == TRAINING_DETECTOR != serving_detector("mitdb")
    assert serving_detector("mitdb") == LEGACY_DETECTOR  # a card without a detector key
    assert training_detector("ptbxl-beats") == XQRS_250_UP
    assert training_detector("ptbxl-beats", OLD_PTBXL_META) == XQRS_250_UP
    assert training_detector("mitdb", XQRS_125_DEVIATION) == XQRS_125_DEVIATION


def test_a_double_detection_within_the_refractory_period_is_merged_onto_the_higher_peak():
    fs = TARGET_FS
    x, truth = synthetic_ecg(fs)
    doubled = np.sort(np.concatenate([truth, [truth[5] + 15, truth[9] - 12]]))  # 120 / 96 ms off
    merged = merge_refractory(x, doubled, fs, 0.25)
    assert np.array_equal(merged, truth)
    assert np.array_equal(merge_refractory(x, truth, fs, 0.25), truth)  # nothing to merge
    # two peaks 300 ms apart are two beats for a 250 ms refractory period
    assert len(merge_refractory(x, np.array([100, 100 + int(0.3 * fs)]), fs, 0.25)) == 2


def test_search_back_finds_a_missed_low_amplitude_beat_in_a_long_gap():
    fs = TARGET_FS
    x, truth = synthetic_ecg(fs, seconds=20.0, seed=3)
    t = np.arange(len(x)) / fs
    b = truth[10] / fs  # make beat 10 small: 40 % of the others' R wave
    x -= 0.72 * np.exp(-(((t - b) / 0.012) ** 2))
    missed = np.delete(truth, 10)
    found = search_back(x, missed, fs)
    assert len(found) == len(truth) and np.abs(found - truth).max() <= 1
    assert np.array_equal(search_back(x, truth, fs), truth)  # no long gap: nothing added


def test_search_back_adds_nothing_in_a_real_pause():
    fs = TARGET_FS
    x, truth = synthetic_ecg(fs, seconds=20.0, seed=3)
    t = np.arange(len(x)) / fs
    b = truth[10] / fs  # beat 10 is not there at all (a pause): only noise and its T wave left
    x -= 1.2 * np.exp(-(((t - b) / 0.012) ** 2)) - 0.25 * np.exp(-(((t - b - 0.03) / 0.012) ** 2))
    x -= 0.3 * np.exp(-(((t - b - 0.28) / 0.06) ** 2))
    missed = np.delete(truth, 10)
    assert np.array_equal(search_back(x, missed, fs), missed)


def test_both_lead_confirmation_drops_a_one_lead_artefact():
    fs = TARGET_FS
    x, truth = synthetic_ecg(fs, seconds=20.0)
    other = truth + 3  # the second lead's peaks: the same beats, 24 ms later
    spike = truth[4] + 45  # an artefact between two beats in the first lead only
    first = np.sort(np.append(truth, spike))
    assert np.array_equal(confirm_peaks(first, other, fs), truth)
    assert len(confirm_peaks(first, np.array([], dtype=np.int64), fs)) == 0
    # only weak peaks need the other lead: a small spike goes, a full-height beat stays
    x[spike] += 0.3
    assert np.array_equal(confirm_peaks(first, other, fs, signal=x, below=0.5), truth)
    lonely = np.delete(other, 7)
    assert np.array_equal(confirm_peaks(truth, lonely, fs, signal=x, below=0.5), truth)
    assert np.array_equal(confirm_peaks(truth, lonely, fs), np.delete(truth, 7))


def test_the_two_lead_detector_needs_the_second_lead():
    x, truth = synthetic_ecg(360.0, seconds=20.0)
    with pytest.raises(DataError, match="needs a second lead"):
        detect_r_peaks(x, 360.0, XQRS_125_TWO_LEAD)
    with pytest.raises(DataError, match="needs a second lead"):
        detect_r_peaks(x, 360.0, XQRS_125_TWO_LEAD, second=x[:100])
    assert DETECTORS[XQRS_125_TWO_LEAD].leads == 2 and DETECTORS[XQRS_250_UP].leads == 1
