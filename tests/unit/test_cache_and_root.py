"""The Parquet round trip, atomic writes and where data is looked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ecgfusion.data import root
from ecgfusion.data.beats import BeatSet
from ecgfusion.data.cache import cache_dir, read_beats, write_beats
from ecgfusion.errors import DataError
from ecgfusion.io import atomic_write_text


def small() -> BeatSet:
    rng = np.random.default_rng(0)
    return BeatSet(
        signals=rng.random((5, 187), dtype=np.float32),
        labels=np.array([0, 1, 2, 3, 4]),
        class_names=("N", "S", "V", "F", "Q"),
        record=np.array(["100", "100", "101", "201", "202"]),
        patient=np.array(["mitdb:100", "mitdb:100", "mitdb:101", "mitdb:201", "mitdb:201"]),
        sample=np.array([10, 300, 77, 5, 6], dtype=np.int64),
        fs=125.0,
        dataset="mitdb",
        method="kachuee",
        meta={"unmapped_symbols": {"B": 2}},
    )


def test_parquet_round_trip_is_exact(tmp_path):
    beats = small()
    path = write_beats(beats, tmp_path / "b.parquet")
    back = read_beats(path)
    np.testing.assert_array_equal(back.signals, beats.signals)
    assert back.signals.dtype == np.float32
    np.testing.assert_array_equal(back.labels, beats.labels)
    np.testing.assert_array_equal(back.record, beats.record)
    np.testing.assert_array_equal(back.patient, beats.patient)
    np.testing.assert_array_equal(back.sample, beats.sample)
    assert back.class_names == beats.class_names and back.meta == beats.meta


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError):
        write_beats(small(), tmp_path / "b.parquet")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_cache_is_a_one_line_error(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="corrupt.*--force"):
        read_beats(path)


def test_atomic_write_text(tmp_path):
    target = atomic_write_text(tmp_path / "sub" / "r.md", "hello")
    assert target.read_text() == "hello"
    assert [p.name for p in target.parent.iterdir()] == ["r.md"]


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("ECGFUSION_CACHE", str(tmp_path / "env"))
    assert cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert cache_dir() == tmp_path / "env"
    monkeypatch.delenv("ECGFUSION_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "ecgfusion"


def test_data_root_precedence_and_physionet_folder_names(monkeypatch, tmp_path):
    (tmp_path / "arg" / "mit-bih-arrhythmia-database-1.0.0").mkdir(parents=True)
    (tmp_path / "env" / "mitdb").mkdir(parents=True)
    monkeypatch.setenv("ECGFUSION_DATA", str(tmp_path / "env"))
    found = root.database_dir("mitdb", tmp_path / "arg")
    assert found == (tmp_path / "arg" / "mit-bih-arrhythmia-database-1.0.0").resolve()
    assert root.database_dir("mitdb") == (tmp_path / "env" / "mitdb").resolve()


def test_missing_database_says_where_and_how(monkeypatch, tmp_path):
    monkeypatch.setenv("ECGFUSION_DATA", str(tmp_path))
    with pytest.raises(DataError) as err:
        root.database_dir("mitdb")
    message = str(err.value)
    assert str(tmp_path / "mitdb") in message and "dl_database" in message and "\n" not in message


def test_unknown_database_lists_known_ones():
    with pytest.raises(DataError, match="known: .*mitdb"):
        root.database_dir("nope", Path("/"))


def test_atomic_files_get_normal_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        target = atomic_write_text(tmp_path / "r.md", "x")
    finally:
        os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o644
