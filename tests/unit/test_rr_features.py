"""RR-interval features on hand-made peak sequences, and how beat sets carry them (issue 15)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from ecgfusion.data.beats import BeatSet
from ecgfusion.data.cache import cache_version, read_beats, write_beats
from ecgfusion.data.mitdb import MitdbRecord, record_beats
from ecgfusion.errors import DataError, ShapeError
from ecgfusion.features.rr import DEFAULT_RR_S, RR_FEATURE_NAMES, rr_features

PRE, POST, LOCAL, AVG, PRE_N, POST_N, LOCAL_N, AVG_N = range(8)


def peaks_from(intervals_s, fs, start=0):
    """Peak sample indices whose consecutive gaps are the given intervals (seconds)."""
    steps = np.rint(np.asarray(intervals_s, dtype=np.float64) * fs).astype(np.int64)
    return start + np.concatenate([[0], np.cumsum(steps)])


def test_names_and_shape():
    assert RR_FEATURE_NAMES == (
        "pre_rr", "post_rr", "local_rr", "avg_rr",
        "pre_rr_norm", "post_rr_norm", "local_rr_norm", "avg_rr_norm",
    )  # fmt: skip
    out = rr_features(np.arange(12) * 360, 360.0)
    assert out.shape == (12, 8) and out.dtype == np.float32


def test_regular_rhythm_is_the_same_everywhere():
    out = rr_features(np.arange(12) * 288, 360.0)  # 0.8 s, 75 bpm
    np.testing.assert_allclose(out[:, :4], 0.8, rtol=1e-6)
    np.testing.assert_allclose(out[:, 4:], 1.0, rtol=1e-6)


def test_premature_beat_short_pre_long_post():
    # 0.8 s rhythm; beat 6 comes 0.48 s after beat 5, beat 7 1.12 s after it (full compensation).
    rr = [0.8] * 5 + [0.48, 1.12] + [0.8] * 4
    out = rr_features(peaks_from(rr, 250), 250.0)
    # avg = (9 * 0.8 + 0.48 + 1.12) / 11 = 0.8; local of beat 6 = mean(rr[1:11]) = 8.0 / 10 = 0.8
    np.testing.assert_allclose(out[6], [0.48, 1.12, 0.8, 0.8, 0.6, 1.4, 1.0, 1.0], rtol=1e-6)
    assert out[6, PRE_N] < 1 < out[6, POST_N]
    # The beat before it has a short post-RR, the one after it a long pre-RR.
    np.testing.assert_allclose([out[5, POST], out[7, PRE]], [0.48, 1.12], rtol=1e-6)


def test_local_window_is_centred_over_ten_intervals_and_truncated_at_the_ends():
    # Rate change: eight 1.0-s intervals, then eight 0.5-s ones (17 peaks); fs 10 Hz.
    rr = [1.0] * 8 + [0.5] * 8
    out = rr_features(peaks_from(rr, 10), 10.0)
    # median 0.75 -> band [0.25, 2.25], all valid; avg = (8 + 4) / 16 = 0.75.
    np.testing.assert_allclose(out[:, AVG], 0.75, rtol=1e-6)
    # Beat i averages intervals i-5 .. i+4 (those before and after it), clipped to 0 .. 15.
    expected_local = {
        0: 1.0,  # intervals 0..4
        2: 1.0,  # 0..6
        5: (8 * 1.0 + 2 * 0.5) / 10,  # 0..9 -> 0.9
        6: (7 * 1.0 + 3 * 0.5) / 10,  # 1..10 -> 0.85
        8: (5 * 1.0 + 5 * 0.5) / 10,  # 3..12 -> 0.75
        16: 0.5,  # 11..15
    }
    for beat, value in expected_local.items():
        assert out[beat, LOCAL] == pytest.approx(value, rel=1e-6), beat
        assert out[beat, LOCAL_N] == pytest.approx(value / 0.75, rel=1e-6), beat


def test_first_and_last_beat_take_their_local_rr():
    rr = [1.0] * 8 + [0.5] * 8
    out = rr_features(peaks_from(rr, 10), 10.0)
    # First beat: no previous interval -> pre = local = 1.0; post is its real interval.
    np.testing.assert_allclose(out[0, [PRE, POST, LOCAL]], [1.0, 1.0, 1.0], rtol=1e-6)
    # Last beat: no next interval -> post = local = 0.5.
    np.testing.assert_allclose(out[-1, [PRE, POST, LOCAL]], [0.5, 0.5, 0.5], rtol=1e-6)
    # A premature first beat is not made to look late by its compensatory pause.
    out = rr_features(peaks_from([1.2] + [0.8] * 10, 100), 100.0)
    assert out[0, POST] == pytest.approx(1.2, rel=1e-6)
    assert out[0, PRE] == pytest.approx(out[0, LOCAL]) and out[0, PRE] < out[0, POST]


def test_missed_beat_gap_is_left_out_of_local_and_average():
    # 0.8 s rhythm with one 2.5-s gap (a missed beat): inside [0.15, 3] s but more than 3 x the
    # median (0.8 s), so an outlier.
    rr = [0.8] * 10 + [2.5] + [0.8] * 5
    out = rr_features(peaks_from(rr, 100), 100.0)
    np.testing.assert_allclose(out[:, AVG], 0.8, rtol=1e-6)  # not (15 * 0.8 + 2.5) / 16
    np.testing.assert_allclose(out[:, LOCAL], 0.8, rtol=1e-6)
    # The beats on either side of the gap get their local RR instead of 2.5 s.
    assert out[10, POST] == pytest.approx(0.8, rel=1e-6)
    assert out[11, PRE] == pytest.approx(0.8, rel=1e-6)
    np.testing.assert_allclose(out[:, 4:], 1.0, rtol=1e-6)


def test_pause_longer_than_three_seconds_is_an_outlier_even_at_a_slow_rate():
    # 1.5-s rhythm: 3.5 s is within 3 x the median but above the absolute 3-s limit.
    rr = [1.5] * 6 + [3.5] + [1.5] * 6
    out = rr_features(peaks_from(rr, 100), 100.0)
    np.testing.assert_allclose(out[:, AVG], 1.5, rtol=1e-6)
    assert out[6, POST] == pytest.approx(1.5, rel=1e-6)


def test_double_detection_is_left_out_and_replaced_by_the_local_rr():
    # Peaks every 0.8 s (fs 100) with an extra detection 0.05 s after the one at 480.
    peaks = np.array([0, 80, 160, 240, 320, 400, 480, 485, 560, 640, 720, 800])
    out = rr_features(peaks, 100.0)
    # Intervals: 0.8 x 6, 0.05 (outlier), 0.75, 0.8 x 3 -> avg = (9 * 0.8 + 0.75) / 10.
    np.testing.assert_allclose(out[:, AVG], 0.795, rtol=1e-6)
    # Beat 6 (480): window = intervals 1..10 without the outlier: (8 * 0.8 + 0.75) / 9.
    assert out[6, LOCAL] == pytest.approx(7.15 / 9, rel=1e-6)
    assert out[6, POST] == pytest.approx(7.15 / 9, rel=1e-6)  # its 0.05 s replaced
    # Beat 7 (485): window = intervals 2..10 without the outlier: (7 * 0.8 + 0.75) / 8.
    assert out[7, PRE] == pytest.approx(6.35 / 8, rel=1e-6)
    assert out[7, POST] == pytest.approx(0.75, rel=1e-6)  # a real interval, kept
    assert out[6, PRE_N] == pytest.approx(0.8 / 0.795, rel=1e-6)


def test_equal_neighbouring_peaks_are_a_zero_interval_outlier():
    out = rr_features(np.array([0, 100, 100, 200, 300]), 100.0)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, AVG], 1.0)
    assert out[1, POST] == pytest.approx(1.0) and out[2, PRE] == pytest.approx(1.0)


def test_records_with_zero_one_or_two_peaks():
    out = rr_features(np.array([], dtype=np.int64), 360.0)
    assert out.shape == (0, 8) and out.dtype == np.float32
    one = rr_features(np.array([1234]), 360.0)
    np.testing.assert_array_equal(one, np.float32([[DEFAULT_RR_S] * 4 + [1.0] * 4]))
    two = rr_features(np.array([100, 424]), 360.0)  # one 0.9-s interval
    np.testing.assert_allclose(two, [[0.9] * 4 + [1.0] * 4] * 2, rtol=1e-6)
    far = rr_features(np.array([0, 1800]), 360.0)  # one 5-s interval: no valid RR at all
    np.testing.assert_array_equal(far, np.float32([[DEFAULT_RR_S] * 4 + [1.0] * 4] * 2))
    assert all(np.isfinite(x).all() for x in (out, one, two, far))


def test_bad_peaks_are_refused_with_one_clear_message():
    with pytest.raises(ShapeError) as err:
        rr_features(np.zeros((3, 2)), 360.0)
    assert "expected shape [n_peaks], got shape (3, 2)" in str(err.value)
    with pytest.raises(DataError, match=r"sorted ascending.*peaks\[1\]=300 > peaks\[2\]=200"):
        rr_features(np.array([100, 300, 200, 400]), 360.0)
    with pytest.raises(DataError, match="NaN or infinite"):
        rr_features(np.array([0.0, np.nan, 400.0]), 360.0)
    with pytest.raises(DataError, match="positive number of Hz"):
        rr_features(np.array([0, 360]), 0.0)
    with pytest.raises(DataError, match="numeric"):
        rr_features(np.array(["1", "2"]), 360.0)


# --- carried by the beat set -----------------------------------------------------------------


def beat_set(n=5, with_rr=True, seed=0) -> BeatSet:
    rng = np.random.default_rng(seed)
    return BeatSet(
        signals=rng.random((n, 187), dtype=np.float32),
        labels=np.arange(n) % 5,
        class_names=("N", "S", "V", "F", "Q"),
        record=np.array(["100"] * n),
        patient=np.array(["mitdb:100"] * n),
        sample=np.arange(n, dtype=np.int64) * 300,
        fs=125.0,
        dataset="mitdb",
        method="kachuee",
        rr=rng.random((n, 8), dtype=np.float32) * 2 if with_rr else None,
        rr_names=RR_FEATURE_NAMES if with_rr else (),
    )


def test_parquet_round_trip_keeps_rr_bit_identical(tmp_path):
    beats = beat_set()
    back = read_beats(write_beats(beats, tmp_path / "b.parquet"))
    assert back.rr is not None and back.rr.dtype == np.float32
    assert back.rr.tobytes() == beats.rr.tobytes()
    assert back.rr_names == RR_FEATURE_NAMES
    np.testing.assert_array_equal(back.signals, beats.signals)
    names = pq.read_schema(tmp_path / "b.parquet").names
    assert [f"rr_{n}" for n in RR_FEATURE_NAMES] == [n for n in names if n.startswith("rr_")]


def test_cache_without_rr_columns_reads_with_rr_none(tmp_path):
    path = write_beats(beat_set(with_rr=False), tmp_path / "plain.parquet")
    assert not any(n.startswith("rr_") for n in pq.read_schema(path).names)
    assert read_beats(path).rr is None and read_beats(path).rr_names == ()
    # A file from before RR features: no "rr_names" key in its metadata at all.
    table = pq.read_table(path)
    info = table.schema.metadata[b"ecgfusion"].decode().replace(', "rr_names": []', "")
    assert "rr_names" not in info
    pq.write_table(table.replace_schema_metadata({"ecgfusion": info}), tmp_path / "old.parquet")
    assert read_beats(tmp_path / "old.parquet").rr is None


def test_cache_with_a_missing_rr_column_is_corrupt(tmp_path):
    path = write_beats(beat_set(), tmp_path / "b.parquet")
    table = pq.read_table(path)
    cut = table.drop(["rr_local_rr"]).replace_schema_metadata(table.schema.metadata)
    pq.write_table(cut, tmp_path / "cut.parquet")
    with pytest.raises(DataError, match="corrupt"):
        read_beats(tmp_path / "cut.parquet")


def test_mitdb_cache_version_bumped_alone():
    assert cache_version("mitdb") == 2
    assert cache_version("ptbxl-beats") == 1  # its caches stay valid


def test_subset_and_concatenate_carry_rr():
    beats = beat_set(6)
    part = beats.subset(np.array([4, 1]))
    np.testing.assert_array_equal(part.rr, beats.rr[[4, 1]])
    joined = BeatSet.concatenate([beats.subset(np.arange(3)), beats.subset(np.arange(3, 6))])
    np.testing.assert_array_equal(joined.rr, beats.rr)
    assert joined.rr_names == RR_FEATURE_NAMES
    plain = beat_set(4, with_rr=False)
    assert plain.subset(np.array([0])).rr is None
    assert BeatSet.concatenate([plain, plain]).rr is None
    with pytest.raises(ShapeError, match="with RR features and without: 1 of 2"):
        BeatSet.concatenate([beats, plain])


def test_beat_set_refuses_rr_of_the_wrong_shape():
    good = beat_set(4)
    with pytest.raises(ShapeError, match=r"\[4, 8\].*got shape \(3, 8\)"):
        BeatSet(**{**good.__dict__, "rr": good.rr[:3]})
    with pytest.raises(ShapeError, match="no rr array"):
        BeatSet(**{**good.__dict__, "rr": None})


# --- MIT-BIH: every beat annotation counts, then the kept beats are selected ------------------


def test_mitdb_rr_uses_every_beat_before_any_is_dropped():
    fs = 360.0
    samples = np.arange(1, 21) * 288  # a beat every 0.8 s
    symbols = np.array(["N"] * 20, dtype=object)
    symbols[10] = "?"  # an unclassifiable beat: counted as a beat, not kept as a row
    ann_samples = np.sort(np.concatenate([samples, [10 * 288 + 100]]))
    ann_symbols = np.insert(symbols, 10, "+").astype(str)  # a rhythm annotation, not a beat
    t = np.arange(22 * 288)
    signal = np.sin(2 * np.pi * t / 288.0) + 0.1 * np.cos(2 * np.pi * t / 37.0)
    rec = MitdbRecord("999", signal, fs, "MLII", None, None, ann_samples, ann_symbols)
    beats, report = record_beats(rec)
    assert len(beats) == 19 and report["unmapped"] == {"?": 1}
    assert beats.rr.shape == (19, 8) and beats.rr_names == RR_FEATURE_NAMES
    # The beat after the dropped '?' still has its 0.8-s pre-RR, not 1.6 s.
    np.testing.assert_allclose(beats.rr[:, :4], 0.8, rtol=1e-6)
    after = int(np.flatnonzero(beats.sample == 12 * 288)[0])
    assert beats.rr[after, PRE] == pytest.approx(0.8, rel=1e-6)
