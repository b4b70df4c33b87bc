"""RR-interval features of the real MIT-BIH beats (issue 15): finite, aligned, and telling."""

from __future__ import annotations

import numpy as np
import pytest

from ecgfusion.data.cache import load_beats
from ecgfusion.data.labels import BEAT_SYMBOLS
from ecgfusion.data.mitdb import read_record
from ecgfusion.features.rr import RR_FEATURE_NAMES, rr_features

pytestmark = pytest.mark.acceptance

PRE_N = RR_FEATURE_NAMES.index("pre_rr_norm")
POST_N = RR_FEATURE_NAMES.index("post_rr_norm")


@pytest.fixture(scope="module")
def beats_119(mitdb_dir, tmp_path_factory):
    """Record 119 (ventricular bigeminy) prepared through the cache, and read back from it."""
    cache = tmp_path_factory.mktemp("rr-cache")
    built = load_beats("mitdb", "kachuee", ["119"], data_root=mitdb_dir.parent, cache_dir=cache)
    again = load_beats("mitdb", "kachuee", ["119"], data_root=mitdb_dir.parent, cache_dir=cache)
    assert again.rr.tobytes() == built.rr.tobytes()
    return again


def test_record_119_v_beats_are_premature(beats_119):
    beats = beats_119
    assert beats.rr.shape == (len(beats), 8) and beats.rr_names == RR_FEATURE_NAMES
    assert np.isfinite(beats.rr).all()
    v = beats.labels == beats.class_names.index("V")
    n = beats.labels == beats.class_names.index("N")
    assert v.sum() > 400 and n.sum() > 1000  # 444 V, 1543 N (PhysioNet's table)
    pre_v, pre_n = beats.rr[v, PRE_N].mean(), beats.rr[n, PRE_N].mean()
    post_v, post_n = beats.rr[v, POST_N].mean(), beats.rr[n, POST_N].mean()
    assert pre_v < 0.85 and pre_v < pre_n - 0.15, (pre_v, pre_n)
    assert post_v > 1.1 and post_v > post_n + 0.15, (post_v, post_n)


def test_rows_match_the_annotations_of_their_beats(mitdb_dir, beats_119):
    rec = read_record(mitdb_dir, "119")
    is_beat = np.isin(rec.ann_symbols, list(BEAT_SYMBOLS))
    every = rr_features(rec.ann_samples[is_beat], rec.fs)
    rows = np.searchsorted(rec.ann_samples[is_beat], beats_119.sample)
    np.testing.assert_array_equal(every[rows], beats_119.rr)


def test_every_mitdb_record_has_finite_rr_of_the_beats_shape(mitdb_beats):
    assert mitdb_beats.rr is not None
    assert mitdb_beats.rr.shape == (len(mitdb_beats), len(RR_FEATURE_NAMES))
    assert np.isfinite(mitdb_beats.rr).all()
    # Seconds within the plausible range, normalised average 1 in every record.
    assert mitdb_beats.rr[:, :4].min() >= 0.15 and mitdb_beats.rr[:, :4].max() <= 3.0
    np.testing.assert_allclose(mitdb_beats.rr[:, RR_FEATURE_NAMES.index("avg_rr_norm")], 1.0)


def test_predict_gives_the_training_rr_features_at_the_same_peaks(
    mitdb_dir, beats_119, monkeypatch
):
    """`predict` computes each beat's RR features from its detected peaks as the training path
    does from the annotations: given the annotated peaks, it gives the training rows exactly."""
    from ecgfusion.data.beats import TARGET_FS
    from ecgfusion.inference import predict as pr
    from ecgfusion.inference.loading import load_predictor
    from ecgfusion.inference.recording import read_recording

    rec = read_record(mitdb_dir, "119")
    annotated = rec.ann_samples[np.isin(rec.ann_symbols, list(BEAT_SYMBOLS))]
    detect = pr.locate_beats

    def at_the_annotations(signal, fs, detector=None, second=None):
        low, _, _ = detect(signal, fs, detector)  # the lead at 125 Hz, as predict cuts it
        return low, np.rint(annotated * TARGET_FS / fs).astype(np.int64), annotated

    monkeypatch.setattr(pr, "locate_beats", at_the_annotations)
    recording = read_recording(mitdb_dir / "119", lead="MLII")
    pred = pr.predict_recording(recording, load_predictor(None, "mitdb-kachuee-cnn"))
    rows = np.minimum(np.searchsorted(beats_119.sample, pred.samples), len(beats_119) - 1)
    same = beats_119.sample[rows] == pred.samples
    assert same.sum() >= 1900  # 1987 beats; predict drops none that training keeps here
    np.testing.assert_array_equal(pred.rr[same], beats_119.rr[rows[same]])
