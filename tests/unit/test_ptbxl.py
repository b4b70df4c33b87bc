"""PTB-XL reader rules on small hand-made CSVs and WFDB records (one function per test)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import wfdb

from ecgfusion.data.ptbxl import (
    LEADS,
    META_FEATURES,
    MissingRecordsWarning,
    PtbxlRecords,
    binary_label,
    build_ptbxl_records,
    clean_age,
    flat_or_nan_leads,
    load_metadata,
    load_statements,
    metadata_vector,
    parse_scp_codes,
    read_ptbxl_records,
    read_signal,
    split_by_fold,
    superclasses_of,
    write_ptbxl_records,
)
from ecgfusion.errors import DataError, LeakageError, ShapeError

STATEMENTS = """,description,diagnostic,form,rhythm,diagnostic_class,diagnostic_subclass
NORM,normal ECG,1.0,,,NORM,NORM
IMI,inferior myocardial infarction,1.0,,,MI,IMI
NST_,non-specific ST changes,1.0,1.0,,STTC,NST_
LVH,left ventricular hypertrophy,1.0,,,HYP,LVH
CLBBB,complete left bundle branch block,1.0,,,CD,CLBBB
SR,sinus rhythm,,,1.0,,
LVOLT,low QRS voltages,,1.0,,,
"""
COLUMNS = (
    "ecg_id,patient_id,age,sex,height,weight,scp_codes,baseline_drift,static_noise,"
    "burst_noise,electrodes_problems,extra_beats,pacemaker,strat_fold,filename_lr,filename_hr"
)


def row(ecg_id, patient, age, sex, codes, fold, *, height="", weight="", drift=""):
    name = f"{ecg_id:05d}"
    return (
        f'{ecg_id},{patient},{age},{sex},{height},{weight},"{codes}",{drift},,,,,,{fold},'
        f"records100/00000/{name}_lr,records500/00000/{name}_hr"
    )


def write_db(tmp_path, rows, statements=STATEMENTS):
    (tmp_path / "ptbxl_database.csv").write_text("\n".join([COLUMNS, *rows]) + "\n")
    if statements is not None:
        (tmp_path / "scp_statements.csv").write_text(statements)
    return tmp_path


def write_record(db, ecg_id, signal):
    folder = db / "records100" / "00000"
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        f"{ecg_id:05d}_lr",
        fs=100,
        units=["mV"] * 12,
        sig_name=list(LEADS),
        p_signal=signal.T,
        fmt=["16"] * 12,
        adc_gain=[1000.0] * 12,
        baseline=[0] * 12,
        write_dir=str(folder),
    )


def ecg_like(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(1000) / 100
    beat = np.exp(-(((t % 0.8) - 0.4) ** 2) / 0.0005)
    return np.stack([beat * (0.5 + 0.1 * k) + 0.01 * rng.standard_normal(1000) for k in range(12)])


# ------------------------------------------------------------------ scp_codes


def test_parse_scp_codes_reads_the_literal_dict():
    assert parse_scp_codes("{'NORM': 100.0, 'SR': 0}") == {"NORM": 100.0, "SR": 0.0}
    assert parse_scp_codes("{}") == {}


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('echo pwned')",
        "{'NORM': __import__('os').getpid()}",
        "[('NORM', 100.0)]",
        "{'NORM': 'high'}",
        "{'NORM': True}",
        "{'NORM': 100.0",
        "",
        None,
    ],
)
def test_parse_scp_codes_rejects_code_and_non_dicts(text):
    with pytest.raises(DataError, match="ecg_id 7"):
        parse_scp_codes(text, where="ptbxl_database.csv ecg_id 7")


def test_malicious_scp_codes_in_the_csv_name_the_row(tmp_path):
    db = write_db(tmp_path, [row(1, 10, 50, 0, "__import__('os').system('touch x')", 1)])
    with pytest.raises(DataError, match=r"ptbxl_database.csv ecg_id 1"):
        load_metadata(db)
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------ superclasses


def test_superclasses_map_diagnostic_codes_in_fixed_order(tmp_path):
    statements = load_statements(write_db(tmp_path, []))
    assert statements == {
        "NORM": "NORM", "IMI": "MI", "NST_": "STTC", "LVH": "HYP", "CLBBB": "CD",
    }  # fmt: skip
    codes = {"LVH": 50.0, "IMI": 100.0, "SR": 0.0, "LVOLT": 100.0}
    assert superclasses_of(codes, statements) == ("MI", "HYP")


def test_likelihood_zero_statements_are_not_superclasses(tmp_path):
    """The paper's rule; the benchmark code would give ("NORM", "STTC") here."""
    statements = load_statements(write_db(tmp_path, []))
    codes = {"NORM": 80.0, "NST_": 0.0}
    assert superclasses_of(codes, statements) == ("NORM",)
    assert superclasses_of(codes, statements, min_likelihood=-1.0) == ("NORM", "STTC")
    assert superclasses_of({"NST_": 0.0, "SR": 0.0}, statements) == ()


def test_binary_label_normal_only_when_exactly_norm():
    assert binary_label(("NORM",)) == 0
    assert binary_label(("NORM", "STTC")) == 1
    assert binary_label(("CD",)) == 1
    assert binary_label(()) is None


def test_missing_scp_statements_names_path_and_fix(tmp_path):
    db = write_db(tmp_path, [row(1, 10, 50, 0, "{'NORM': 100.0}", 1)], statements=None)
    with pytest.raises(DataError, match=r"scp_statements\.csv is missing.*copy scp_statements"):
        load_metadata(db)


def test_statement_with_unknown_superclass_is_an_error(tmp_path):
    db = write_db(tmp_path, [], STATEMENTS + "XYZ,odd,1.0,,,ODD,ODD\n")
    with pytest.raises(DataError, match="'XYZ'.*'ODD'"):
        load_statements(db)


# ------------------------------------------------------------------ ages, folds, flags


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (300, (90.0, True, False)),
        (95, (90.0, True, False)),
        (56.0, (56.0, False, False)),
        (0, (0.0, False, False)),
        (-1, (math.nan, False, True)),
        (150, (math.nan, False, True)),
        (float("nan"), (math.nan, False, True)),
        ("", (math.nan, False, True)),
    ],
)
def test_clean_age(age, expected):
    value, capped, missing = clean_age(age)
    assert (capped, missing) == expected[1:]
    assert value == expected[0] or (math.isnan(value) and math.isnan(expected[0]))


def test_metadata_age_300_sex_and_flags(tmp_path):
    rows = [
        row(1, 10, 300, 1, "{'NORM': 100.0}", 1, height=170, weight=80, drift='", II"'),
        row(2, 11, "", 0, "{'IMI': 50.0}", 2, height=20),
        row(3, 12, 40, 7, "{'NST_': 0.0}", 3),
    ]
    meta = load_metadata(write_db(tmp_path, rows))
    assert meta.loc[1, "age"] == 90.0 and meta.loc[1, "age_capped"]
    assert meta.loc[2, "age_missing"] and math.isnan(meta.loc[2, "age"])
    assert math.isnan(meta.loc[2, "height"])  # 20 cm is impossible -> missing
    assert meta.loc[3, "sex_missing"] and meta.loc[3, "sex"] == -1
    assert meta["baseline_drift"].tolist() == [True, False, False]
    assert meta["superclasses"].tolist() == [("NORM",), ("MI",), ()]
    vec = pd.DataFrame(metadata_vector(meta), columns=META_FEATURES, index=meta.index)
    assert vec.loc[1, "age"] == pytest.approx((90 - 60) / 20)
    assert vec.loc[1, ["age_capped", "sex_female", "sex_male"]].tolist() == [1, 1, 0]
    assert vec.loc[2, ["age", "age_missing", "sex_male", "height", "height_missing"]].tolist() == [
        0, 1, 1, 0, 1,
    ]  # fmt: skip
    assert vec.loc[3, ["sex_male", "sex_female", "sex_missing"]].tolist() == [0, 0, 1]


@pytest.mark.parametrize("fold", [0, 11, "", "x"])
def test_fold_outside_1_to_10_names_file_and_ecg_id(tmp_path, fold):
    rows = [row(1, 10, 50, 0, "{'NORM': 100.0}", 1), row(42, 11, 50, 0, "{'NORM': 100.0}", fold)]
    with pytest.raises(DataError, match=r"ptbxl_database\.csv: ecg_id 42 has strat_fold"):
        load_metadata(write_db(tmp_path, rows))


def test_split_by_fold_parts_and_patient_leak():
    folds = np.array([1, 8, 9, 10, 3, 9])
    parts = split_by_fold(folds, np.array([1, 2, 3, 4, 5, 6]))
    assert {k: v.tolist() for k, v in parts.items()} == {
        "train": [0, 1, 4], "val": [2, 5], "test": [3],
    }  # fmt: skip
    split_by_fold(folds, np.array([1, 1, 3, 4, 5, 6]))  # same patient, folds 1 and 8: one part
    with pytest.raises(LeakageError, match="patient_id 7"):
        split_by_fold(folds, np.array([1, 2, 7, 4, 7, 6]))


# ------------------------------------------------------------------ signals


def test_flat_or_nan_leads():
    signal = ecg_like(0)
    assert flat_or_nan_leads(signal) == []
    signal[3, 500] = np.nan
    signal[4] = 0.0
    signal[5] = 0.7
    assert flat_or_nan_leads(signal) == ["AVR", "AVL", "AVF"]


def test_records_with_nan_or_zero_lead_dropped_and_reported(tmp_path):
    rows = [row(i, 100 + i, 50, 0, "{'NORM': 100.0}" if i != 2 else "{'IMI': 80.0}", i)
            for i in range(1, 6)]  # fmt: skip
    db = write_db(tmp_path, rows)
    for i in range(1, 5):  # record 5 is listed but has no files
        signal = ecg_like(i)
        if i == 3:
            signal[6, 100:200] = np.nan
        if i == 4:
            signal[0] = 0.0
        write_record(db, i, signal)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = build_ptbxl_records(db)
    missing = [w for w in caught if issubclass(w.category, MissingRecordsWarning)]
    assert len(missing) == 1 and "1 of 5 records" in str(missing[0].message)
    assert records.ecg_id.tolist() == [1, 2]
    assert "2 records with a NaN or flat lead dropped: ecg_id 3, 4" in records.report
    assert records.report[-1] == "2 records loaded at 100 Hz"
    assert records.signal.shape == (2, 12, 1000) and records.signal.dtype == np.float32
    assert records.targets.tolist() == [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0]]
    assert records.binary.tolist() == [0, 1]


def test_records_parquet_round_trip_and_corrupt_file(tmp_path):
    n = 3
    records = PtbxlRecords(
        signal=np.random.default_rng(0).standard_normal((n, 12, 1000)).astype(np.float32),
        metadata=np.ones((n, len(META_FEATURES)), np.float32),
        targets=np.eye(5, dtype=np.float32)[:n],
        binary=np.array([0, 1, 1]),
        ecg_id=np.array([1, 2, 3]),
        patient_id=np.array([7, 8, 9]),
        strat_fold=np.array([1, 9, 10]),
        fs=100.0,
        report=("3 records loaded at 100 Hz",),
    )
    path = write_ptbxl_records(records, tmp_path / "r.parquet")
    back = read_ptbxl_records(path)
    np.testing.assert_array_equal(back.signal, records.signal)
    assert back.report == records.report and back.strat_fold.tolist() == [1, 9, 10]
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"r\.parquet is corrupt"):
        read_ptbxl_records(path)


def test_records_shape_check():
    with pytest.raises(ShapeError, match=r"signal has shape \(1, 12, 900\)"):
        PtbxlRecords(
            signal=np.zeros((1, 12, 900), np.float32),
            metadata=np.zeros((1, len(META_FEATURES)), np.float32),
            targets=np.zeros((1, 5), np.float32),
            binary=np.zeros(1, np.int64),
            ecg_id=np.zeros(1, np.int64),
            patient_id=np.zeros(1, np.int64),
            strat_fold=np.ones(1, np.int64),
            fs=100.0,
        )


def test_read_signal_checks_rate_and_corrupt_header(tmp_path):
    write_record(tmp_path, 1, ecg_like(1))
    name = "records100/00000/00001_lr"
    assert read_signal(tmp_path, name, 100, leads=("II", "I")).shape == (2, 1000)
    with pytest.raises(DataError, match=r"00001_lr\.hea says 100 Hz, expected 500 Hz"):
        read_signal(tmp_path, name, 500)
    (tmp_path / f"{name}.hea").write_text("garbage\n")
    with pytest.raises(DataError, match=r"00001_lr: wfdb cannot read it"):
        read_signal(tmp_path, name, 100)


def test_records_subset_keeps_rows_together():
    n = 4
    records = PtbxlRecords(
        signal=np.arange(n, dtype=np.float32)[:, None, None] * np.ones((1, 12, 1000), np.float32),
        metadata=np.zeros((n, len(META_FEATURES)), np.float32),
        targets=np.eye(5, dtype=np.float32)[:n],
        binary=np.array([0, 1, 1, 1]),
        ecg_id=np.array([10, 11, 12, 13]),
        patient_id=np.array([1, 2, 3, 4]),
        strat_fold=np.array([1, 9, 10, 2]),
        fs=100.0,
    )
    part = records.subset(records.split()["train"])
    assert part.ecg_id.tolist() == [10, 13] and part.signal[:, 0, 0].tolist() == [0.0, 3.0]
    assert part.targets[1].tolist() == [0, 0, 0, 1, 0] and part.fs == 100.0
