"""The Kaggle heartbeat CSV reader on the real sample rows, and its bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from ecgfusion.data.kaggle import read_kaggle_csv
from ecgfusion.data.splits import make_split
from ecgfusion.errors import DataError

pytestmark = pytest.mark.acceptance


def test_reads_the_real_rows(kaggle_dir):
    beats = read_kaggle_csv(kaggle_dir / "mitbih_train_head.csv")
    assert beats.signals.shape == (10, 187) and beats.signals.dtype == np.float32
    assert beats.class_names == ("N", "S", "V", "F", "Q")
    assert beats.class_counts()["N"] == 10
    assert beats.signals[0, 0] == pytest.approx(0.9779411554336548)


def test_kaggle_rows_cannot_be_split_by_patient(kaggle_dir):
    beats = read_kaggle_csv(kaggle_dir / "mitbih_train_head.csv")
    with pytest.raises(DataError, match="no patient id|without a patient"):
        make_split(beats, "patient-disjoint")


def _write(tmp_path, rows, name="mitbih_train.csv"):
    path = tmp_path / name
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r.__setitem__(5, "nan"), "row 2 has a NaN"),
        (lambda r: r.__setitem__(5, ""), "row 2 has a NaN"),
        (lambda r: r.pop(), "187 samples"),
        (lambda r: r.__setitem__(-1, "7.0"), "row 2 has label 7"),
    ],
)
def test_bad_rows_name_file_and_row(kaggle_dir, tmp_path, mutate, message):
    lines = (kaggle_dir / "mitbih_train_head.csv").read_text().splitlines()[:3]
    rows = [line.split(",") for line in lines]
    mutate(rows[1])
    if len(rows[1]) != len(rows[0]):  # wrong length: make every row that length
        rows = [r[: len(rows[1])] for r in rows]
    path = _write(tmp_path, rows)
    with pytest.raises(DataError, match=message) as err:
        read_kaggle_csv(path)
    assert "mitbih_train.csv" in str(err.value)


def test_ptbdb_files_get_two_classes(kaggle_dir, tmp_path):
    lines = (kaggle_dir / "mitbih_train_head.csv").read_text().splitlines()[:2]
    path = tmp_path / "ptbdb_normal.csv"
    path.write_text("\n".join(lines) + "\n")
    assert read_kaggle_csv(path).class_names == ("normal", "abnormal")
