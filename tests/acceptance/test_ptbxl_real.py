"""The PTB-XL reader, the record-level set and the PTB beat set on the real PTB-XL subset."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ecgfusion.data.cache import read_beats, write_beats
from ecgfusion.data.labels import PTB_CLASSES
from ecgfusion.data.ptbxl import (
    MissingRecordsWarning,
    binary_label,
    build_ptbxl_beats,
    build_ptbxl_records,
    load_metadata,
    missing_on_disk,
    prepare_ptbxl_records,
    ptbxl_beats_table,
    split_by_fold,
)
from ecgfusion.data.splits import make_split

pytestmark = pytest.mark.acceptance

ABSENT = (137, 139, 140, 141, 142, 143, 145, 456, 458, 459, 461, 462)


@pytest.fixture(scope="module")
def meta(ptbxl_dir):
    return load_metadata(ptbxl_dir)


@pytest.fixture(scope="module")
def first_50(meta):
    return [str(i) for i in meta.index[:50]]


def test_metadata_lists_every_record_on_disk(ptbxl_dir, meta):
    assert len(meta) == 1987
    assert sorted(set(range(1, 2000)) - set(meta.index)) == list(ABSENT)
    assert missing_on_disk(ptbxl_dir, meta) == []
    assert int(meta["age_capped"].sum()) == 33 and meta["age"].max() == 90
    assert set(meta["sex"]) == {0, 1} and set(meta["strat_fold"]) == set(range(1, 11))
    assert meta.loc[1, "scp_codes"] == {"NORM": 100.0, "LVOLT": 0.0, "SR": 0.0}
    assert meta.loc[8, "superclasses"] == ("MI",)


def test_absent_records_reported_once(ptbxl_dir, tmp_path):
    """A metadata file listing the 12 ids the shared copy lacks: one warning, loaded count."""
    for name in ("records100", "scp_statements.csv"):
        (tmp_path / name).symlink_to(ptbxl_dir / name)
    table = pd.read_csv(ptbxl_dir / "ptbxl_database.csv")
    extra = pd.concat([table.iloc[[0]]] * len(ABSENT), ignore_index=True)
    extra["ecg_id"] = ABSENT
    extra["filename_lr"] = [f"records100/00000/{i:05d}_lr" for i in ABSENT]
    pd.concat([table, extra]).to_csv(tmp_path / "ptbxl_database.csv", index=False)
    ids = [1, 2, 3, *ABSENT]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = build_ptbxl_records(tmp_path, ids=ids)
    messages = [str(w.message) for w in caught if issubclass(w.category, MissingRecordsWarning)]
    assert len(messages) == 1
    assert "12 of 15 records" in messages[0] and "ecg_id 137, 139, 140" in messages[0]
    assert records.ecg_id.tolist() == [1, 2, 3]
    assert records.report[-1] == "3 records loaded at 100 Hz"


def test_fold_split_keeps_patients_apart(meta):
    parts = split_by_fold(meta["strat_fold"].to_numpy(), meta["patient_id"].to_numpy())
    assert sum(len(v) for v in parts.values()) == len(meta)
    patients = {k: set(meta["patient_id"].to_numpy()[v]) for k, v in parts.items()}
    assert not patients["train"] & patients["val"]
    assert not patients["train"] & patients["test"]
    assert not patients["val"] & patients["test"]
    assert (len(parts["train"]), len(parts["val"]), len(parts["test"])) == (1490, 242, 255)


def test_record_level_set_and_cache(ptbxl_dir, meta, first_50, tmp_path):
    records, path, report = prepare_ptbxl_records(
        ptbxl_dir.parent, cache_dir=tmp_path, ids=first_50
    )
    kept = [i for i in map(int, first_50) if meta.loc[i, "superclasses"]]
    assert records.ecg_id.tolist() == kept and path.parent == tmp_path
    assert records.signal.shape == (len(kept), 12, 1000) and records.signal.dtype == np.float32
    assert np.isfinite(records.signal).all() and 0.1 < np.abs(records.signal).mean() < 1.0
    norm_only = (records.targets == [1, 0, 0, 0, 0]).all(axis=1)
    assert (records.binary == np.where(norm_only, 0, 1)).all()
    assert records.targets.sum(axis=1).min() >= 1
    assert "wrote" in report and f"{len(kept)} records loaded at 100 Hz" in report
    again, path2, report2 = prepare_ptbxl_records(
        ptbxl_dir.parent, cache_dir=tmp_path, ids=first_50
    )
    assert path2 == path and f"reused {path}" in report2
    np.testing.assert_array_equal(again.signal, records.signal)
    np.testing.assert_array_equal(again.metadata, records.metadata)


@pytest.fixture(scope="module")
def beats_50(ptbxl_dir, first_50):
    return build_ptbxl_beats(ptbxl_dir, "kachuee", first_50, progress=False)


def test_beat_set_on_50_real_records(beats_50, meta, first_50):
    beats = beats_50
    assert beats.dataset == "ptbxl-beats" and beats.class_names == PTB_CLASSES
    assert beats.signals.shape[1] == 187 and beats.fs == 125.0
    assert beats.signals.min() >= 0.0 and beats.signals.max() <= 1.0
    # Each beat starts at its R peak: the first sample is (near) the maximum of the beat.
    assert np.median(beats.signals[:, 0]) > 0.95
    assert (beats.signals[:, 0] >= 0.8).mean() > 0.8
    records = np.unique(beats.record)
    diagnosed = [i for i in map(int, first_50) if meta.loc[i, "superclasses"]]
    assert sorted(records) == sorted(f"ptbxl:{i}" for i in diagnosed)
    per_record = np.array([(beats.record == r).sum() for r in records])
    assert per_record.min() >= 4 and per_record.max() <= 30  # 10 s at 24-180 bpm
    assert beats.sample.min() >= 0 and beats.sample.max() < 1000
    for r in records:
        eid = int(r.removeprefix("ptbxl:"))
        labels = set(beats.labels[beats.record == r].tolist())
        assert labels == {binary_label(meta.loc[eid, "superclasses"])}
        assert beats.meta["record_folds"][r] == meta.loc[eid, "strat_fold"]
        assert set(beats.patient[beats.record == r]) == {f"ptbxl:{meta.loc[eid, 'patient_id']}"}
    table = ptbxl_beats_table(beats)
    assert table.splitlines()[-1].split()[1:] == [
        str(beats.class_counts()["normal"]),
        str(len(set(beats.record[beats.labels == 0]))),
        str(beats.class_counts()["abnormal"]),
        str(len(set(beats.record[beats.labels == 1]))),
    ]


def test_beat_set_caches_and_splits_by_strat_fold(beats_50, meta, tmp_path):
    beats = read_beats(write_beats(beats_50, tmp_path / "ptbxl-beats.parquet"))
    assert beats.meta["record_folds"] == beats_50.meta["record_folds"]
    split = make_split(beats, "strat-fold")
    folds = np.array([meta.loc[int(r.removeprefix("ptbxl:")), "strat_fold"] for r in beats.record])
    assert (folds[split.train] <= 8).all() and (folds[split.val] == 9).all()
    assert (folds[split.test] == 10).all()
    assert len(split.train) + len(split.val) + len(split.test) == len(beats)
