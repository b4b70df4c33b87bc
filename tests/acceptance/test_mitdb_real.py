"""The MIT-BIH reader, the beat set and the splits on the real PhysioNet records."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ecgfusion.cli import main
from ecgfusion.data.mitdb import build_mitdb_beats, patient_id, read_record, record_beats
from ecgfusion.data.splits import DS1, DS2, make_split
from ecgfusion.errors import DataError

pytestmark = pytest.mark.acceptance


def copy_record(mitdb_dir, tmp_path, record="100"):
    db = tmp_path / "mitdb"
    db.mkdir()
    for ext in ("hea", "dat", "atr"):
        shutil.copy(mitdb_dir / f"{record}.{ext}", db / f"{record}.{ext}")
    (db / "RECORDS").write_text(f"{record}\n")
    return db


def test_record_100_lead_metadata_and_annotations(mitdb_dir):
    rec = read_record(mitdb_dir, "100")
    assert rec.lead == "MLII" and rec.fs == 360 and len(rec.signal) == 650_000
    assert (rec.age, rec.sex) == (69, "M")
    beats, report = record_beats(rec)
    # Record 100: 2239 N, 33 A, 1 V reference beats (PhysioNet's table for the record).
    assert beats.class_counts() == {"N": 2239, "S": 33, "V": 1, "F": 0, "Q": 0}
    assert report["unmapped"] == {} and report["non_beat"].get("+", 0) >= 1


def test_lead_fallback_unknown_age_and_shared_patient(mitdb_dir):
    assert read_record(mitdb_dir, "102").lead == "V5"  # 102 has no MLII
    assert read_record(mitdb_dir, "114").lead == "MLII"  # MLII is the second channel there
    assert read_record(mitdb_dir, "103").age is None  # header says -1
    assert patient_id("201") == patient_id("202") == "mitdb:201"


def test_kachuee_beats_look_like_the_kaggle_rows(mitdb_dir, kaggle_dir):
    beats = build_mitdb_beats(mitdb_dir, "kachuee", ["100", "101"])
    kaggle = np.loadtxt(kaggle_dir / "mitbih_train_head.csv", delimiter=",")[:, :187]
    assert beats.signals.shape[1] == kaggle.shape[1] == 187
    assert beats.signals.min() == 0.0 and beats.signals.max() == 1.0
    # Both start near the top at the R peak and end in zero padding.
    assert np.median(beats.signals[:, 0]) > 0.8 and np.median(kaggle[:, 0]) > 0.8
    assert (beats.signals[:, -1] == 0).mean() > 0.9 and (kaggle[:, -1] == 0).all()
    lengths = (beats.signals > 0).cumsum(1).argmax(1) + 1
    assert 80 <= np.median(lengths) <= 140  # 1.2 x RR of ~0.8 s at 125 Hz


def test_full_mitdb_matches_the_kaggle_class_counts(mitdb_beats):
    counts = mitdb_beats.class_counts()
    kaggle = {"N": 90_589, "S": 2_779, "V": 7_236, "F": 803, "Q": 8_039}  # 87,554 + 21,892 rows
    assert abs(len(mitdb_beats) - 109_446) / 109_446 < 0.002
    for c, k in kaggle.items():
        assert abs(counts[c] - k) <= max(10, 0.01 * k), (c, counts[c], k)
    assert len(np.unique(mitdb_beats.record)) == 48
    assert len(np.unique(mitdb_beats.patient)) == 47


def test_inter_patient_counts_are_de_chazals(mitdb_beats):
    split = make_split(mitdb_beats, "inter-patient", seed=0)
    ds1 = np.concatenate([split.train, split.val])
    assert set(mitdb_beats.record[ds1]) == set(DS1)
    assert set(mitdb_beats.record[split.test]) == set(DS2)
    ds1_counts = mitdb_beats.class_counts(ds1)
    # de Chazal et al. 2004, Table I: DS1 N 45,866 S 944 V 3,788 F 414;
    # DS2 N 44,259 S 1,837 V 3,221 F 388.
    assert abs(ds1_counts["N"] - 45_866) <= 50
    assert (ds1_counts["S"], ds1_counts["V"]) == (944, 3_788)
    assert abs(ds1_counts["F"] - 414) <= 1
    assert mitdb_beats.class_counts(split.test) == {
        "N": 44_259,
        "S": 1_837,
        "V": 3_221,
        "F": 388,
        "Q": 7,
    }
    assert any("mitdb:201" in w for w in split.warnings)
    # Validation is whole DS1 records and leaves most of every class to training.
    assert not set(mitdb_beats.record[split.val]) & set(mitdb_beats.record[split.train])
    for c in ("S", "V", "F"):
        assert mitdb_beats.class_counts(split.train)[c] >= mitdb_beats.class_counts(split.val)[c]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda db: (db / "100.dat").unlink(), "100.dat is missing"),
        (
            lambda db: (db / "100.dat").write_bytes((db / "100.dat").read_bytes()[:1000]),
            "truncated",
        ),
        (
            lambda db: (db / "100.hea").write_text(
                (db / "100.hea").read_text().replace("100 2 360 650000", "100 2 250 650000")
            ),
            "250 Hz",
        ),
    ],
)
def test_bad_records_are_one_line_errors_with_no_cache(
    mitdb_dir, tmp_path, capsys, damage, message
):
    db = copy_record(mitdb_dir, tmp_path)
    damage(db)
    with pytest.raises(DataError, match=message):
        read_record(db, "100")
    cache = tmp_path / "cache"
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "prepare", "mitdb", "--data-root", str(db), "--cache-dir", str(cache)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "100." in err and "\n" not in err
    assert not cache.exists() or not any(cache.iterdir())


def test_prepare_cli_prints_the_table_and_reuses_the_cache(mitdb_dir, tmp_path, capsys):
    args = [
        "data",
        "prepare",
        "mitdb",
        "--records",
        "100",
        "--cache-dir",
        str(tmp_path),
        "--data-root",
        str(mitdb_dir.parent),
    ]
    main_ok(args)
    first = capsys.readouterr().out
    assert "2,239" in first and "wrote" in first
    main_ok(args)
    assert "reused" in capsys.readouterr().out
    assert len(list(tmp_path.glob("*.parquet"))) == 1


def test_split_cli_prints_de_chazal_counts(mitdb_dir, session_cache, mitdb_beats, capsys):
    main_ok(
        [
            "data",
            "split",
            "mitdb",
            "--protocol",
            "inter-patient",
            "--cache-dir",
            str(session_cache),
            "--data-root",
            str(mitdb_dir.parent),
        ]
    )
    out = capsys.readouterr().out
    assert "44,259" in out and "1,837" in out and "3,221" in out and "mitdb:201" in out


def test_verify_detects_a_changed_file(mitdb_dir, tmp_path, capsys):
    db = copy_record(mitdb_dir, tmp_path)
    shutil.copy(mitdb_dir / "SHA256SUMS.txt", db / "SHA256SUMS.txt")
    main_ok(["data", "verify", "mitdb", "--data-root", str(tmp_path)], expect=1)
    out = capsys.readouterr().out
    assert "3/" in out and "missing: 101.dat" in out
    (db / "100.atr").write_bytes(b"x" + (db / "100.atr").read_bytes()[1:])
    main_ok(["data", "verify", "mitdb", "--data-root", str(tmp_path)], expect=1)
    assert "checksum mismatch: 100.atr" in capsys.readouterr().out


def main_ok(args, expect=0):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == expect
