"""The detection benchmark on two real MIT-BIH records (first minute): its table, JSON and CSVs."""

from __future__ import annotations

import csv
import json

import pytest

from ecgfusion.benchmarks import detection
from ecgfusion.benchmarks.common import FORMAT
from ecgfusion.data.rpeaks import LEGACY_DETECTOR, TRAINING_DETECTOR

pytestmark = pytest.mark.acceptance


def test_detection_bench_scores_ds1_and_report_only_ds2(tmp_path, mitdb_dir, capsys):
    out = tmp_path / "bench"
    detectors = sorted({LEGACY_DETECTOR, TRAINING_DETECTOR})
    code = detection.main(["--records", "101", "100", "--seconds", "60", "--detectors",
                           *detectors, "--out", str(out), "--data-root", str(mitdb_dir.parent)])
    assert code == 0
    assert "report only" in capsys.readouterr().out
    data = json.loads((out / "detection.json").read_text())
    assert data["format"] == FORMAT and data["params"]["seconds"] == 60.0
    parts = {(row["detector"], row["part"]) for row in data["rows"]}
    assert parts == {(d, p) for d in detectors for p in ("DS1", detection.REPORT_ONLY)}
    for row in data["rows"]:
        assert row["records"] == 1 and row["TP"] + row["FN"] == row["beats"] > 60
        assert float(row["Se %"]) > 95 and float(row["+P %"]) > 95 and row["s/record"] > 0
        assert row["Se %"] == f"{100 * row['TP'] / row['beats']:.3f}"
        assert 50 < float(row["±8 ms %"]) <= 100  # matched peaks on the annotated R peak
    assert all(v > 0 for v in data["ratios"].values())
    assert {t["target"] for t in data["targets"]} >= {f"{LEGACY_DETECTOR}: DS2 +P %"}
    with (out / "detection_records.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["record"], r["part"]) for r in rows} == {("101", "DS1"),
                                                         ("100", detection.REPORT_ONLY)}
    assert len(rows) == 2 * len(detectors)
    assert (out / "detection.md").read_text().count("| DS1 |") == len(detectors)
    assert (out / "detection.csv").is_file()


def test_unknown_detector_fails_before_reading(tmp_path):
    from ecgfusion.errors import DataError

    with pytest.raises(DataError, match="unknown R-peak detector"):
        detection.run(records=["100"], detectors=["pan-tompkins"], data_root=str(tmp_path))
