"""Split protocols and the leakage guard on small hand-made beat sets."""

from __future__ import annotations

import numpy as np
import pytest

from ecgfusion.data.beats import BeatSet
from ecgfusion.data.splits import (
    KnownPatientOverlapWarning,
    check_patient_disjoint,
    make_split,
    rebalance_reduced,
)
from ecgfusion.errors import DataError, LeakageError


def toy(n_patients: int = 20, per_patient: int = 30, seed: int = 0) -> BeatSet:
    rng = np.random.default_rng(seed)
    n = n_patients * per_patient
    patients = np.repeat([f"p{i}" for i in range(n_patients)], per_patient)
    labels = rng.choice(3, size=n, p=[0.7, 0.2, 0.1]).astype(np.int64)
    return BeatSet(
        signals=rng.random((n, 8), dtype=np.float32),
        labels=labels,
        class_names=("a", "b", "c"),
        record=patients.copy(),
        patient=patients,
        sample=np.arange(n, dtype=np.int64),
        fs=125.0,
        dataset="toy",
        method="kachuee",
    )


def _disjoint(*parts: np.ndarray) -> bool:
    seen = np.concatenate(parts)
    return len(seen) == len(np.unique(seen))


def test_beat_random_is_80_20_then_80_20_stratified_and_labelled_intra_patient():
    beats = toy()
    s = make_split(beats, "beat-random", seed=3)
    n = len(beats)
    assert len(s.test) == pytest.approx(0.2 * n, abs=1)
    assert len(s.val) == pytest.approx(0.2 * 0.8 * n, abs=2)
    assert _disjoint(s.train, s.val, s.test) and len(s.train) + len(s.val) + len(s.test) == n
    assert s.intra_patient and "INTRA-patient" in s.label and "INTRA-patient" in s.report()
    overall = np.bincount(beats.labels) / n
    for part in (s.train, s.val, s.test):
        assert np.allclose(
            np.bincount(beats.labels[part], minlength=3) / len(part), overall, atol=0.03
        )


def test_splits_are_seeded_and_reproducible():
    beats = toy()
    a, b, c = (make_split(beats, "patient-disjoint", seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.test, b.test)
    assert not np.array_equal(a.test, c.test)


def test_patient_disjoint_keeps_patients_apart():
    beats = toy()
    s = make_split(beats, "patient-disjoint", seed=0)
    sets = [set(beats.patient[p]) for p in (s.train, s.val, s.test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert not s.intra_patient
    assert _disjoint(s.train, s.val, s.test)


def test_leakage_guard_raises_on_shared_patient():
    beats = toy()
    train = np.flatnonzero(beats.patient != "p1")
    test = np.flatnonzero(beats.patient == "p1")
    test = np.concatenate([test, train[:1]])  # p0 leaks into test
    with pytest.raises(LeakageError, match="p0"):
        check_patient_disjoint(beats, {"train": train, "test": test})


def test_known_overlap_is_a_named_warning_not_an_error():
    beats = toy()
    train = np.flatnonzero(beats.patient != "p1")
    test = np.concatenate([np.flatnonzero(beats.patient == "p1"), train[:1]])
    with pytest.warns(KnownPatientOverlapWarning, match="p0"):
        messages = check_patient_disjoint(
            beats, {"train": train, "test": test}, known_overlap=("p0",)
        )
    assert len(messages) == 1


def test_reduced_caps_every_class_at_half_the_largest():
    beats = toy()
    idx = np.arange(len(beats))
    kept = rebalance_reduced(idx, beats.labels, seed=0)
    counts = np.bincount(beats.labels)
    new = np.bincount(beats.labels[kept], minlength=3)
    cap = counts.max() // 2
    assert new.max() == cap
    np.testing.assert_array_equal(new, np.minimum(counts, cap))


def test_rebalance_only_touches_training():
    beats = toy()
    plain = make_split(beats, "beat-random", seed=0)
    reduced = make_split(beats, "beat-random", seed=0, rebalance="reduced")
    np.testing.assert_array_equal(plain.test, reduced.test)
    np.testing.assert_array_equal(plain.val, reduced.val)
    assert len(reduced.train) < len(plain.train)


def test_bad_protocols_are_named():
    beats = toy()
    with pytest.raises(DataError, match="unknown protocol"):
        make_split(beats, "leave-one-out")
    with pytest.raises(DataError, match="defined for mitdb"):
        make_split(beats, "inter-patient")
    with pytest.raises(DataError, match="strat_fold"):
        make_split(beats, "strat-fold")
    with pytest.raises(DataError, match="rebalance"):
        make_split(beats, "beat-random", rebalance="smote")
