"""EC57-style scoring against hand-made annotation pairs."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb

from ecgfusion.errors import DataError
from ecgfusion.inference.score import (
    Annotations,
    format_table,
    gross,
    read_annotations,
    score_record,
    score_table,
)


def ann(samples, symbols, fs=360.0, record="r"):
    return Annotations(record, fs, np.array(samples), np.array(list(symbols)))


def test_hand_made_pair():
    # Reference: N N V A N at 1000..5000. Predicted: the first N right, the second N called V,
    # the V found 40 samples late (within 150 ms = 54 samples) as V, the A missed, the last N
    # found too late (60 samples > 54), plus a false S at 6000.
    ref = ann([1000, 2000, 3000, 4000, 5000], "NNVAN")
    pred = ann([1000, 2002, 3040, 5060, 6000], "NVVNS")
    s = score_record(pred, ref)
    assert (s.tp, s.fn, s.fp) == (3, 2, 2)
    assert s.qrs_se == pytest.approx(3 / 5) and s.qrs_ppv == pytest.approx(3 / 5)
    # N: 3 reference N, one matched as N -> Se 1/3; predicted N: one matched (correct), one extra
    # at 5060 -> +P 1/2. V: 1 reference V matched as V -> Se 1; 2 predicted V, one right -> +P 1/2.
    assert s.class_se(0) == pytest.approx(1 / 3)
    assert s.class_ppv(0) == pytest.approx(1 / 2)
    assert s.class_se(2) == pytest.approx(1.0) and s.class_ppv(2) == pytest.approx(1 / 2)
    # S: the one reference A was missed -> Se 0; the predicted S is false -> +P 0.
    assert s.class_se(1) == 0.0 and s.class_ppv(1) == 0.0
    assert np.isnan(s.class_se(3))  # no F anywhere


def test_gross_pools_beats_and_average_averages_records():
    a = score_record(ann([100, 200], "NN"), ann([100, 200], "NN", record="a"))  # Se 1
    b = score_record(ann([100], "N"), ann([100, 900, 1800, 2700], "NNNN", record="b"))  # Se 1/4
    rows = score_table([a, b])
    assert [r["record"] for r in rows] == ["a", "b", "gross", "average"]
    assert rows[2]["QRS Se"] == pytest.approx(3 / 6)
    assert rows[3]["QRS Se"] == pytest.approx((1 + 0.25) / 2)
    assert gross([a, b]).tp == 3
    assert "| gross | 50.00 |" in format_table(rows)


def test_sampling_rates_must_agree():
    with pytest.raises(DataError, match="360 Hz"):
        score_record(ann([1], "N", fs=125.0), ann([1], "N"))


def test_annotation_file_round_trip(tmp_path):
    wfdb.wrann(
        "rec",
        "ecgf",
        np.array([10, 400, 900]),
        symbol=["N", "V", "S"],
        fs=360,
        write_dir=str(tmp_path),
    )
    back = read_annotations(tmp_path / "rec.ecgf")
    assert back.fs == 360 and back.sample.tolist() == [10, 400, 900]
    assert back.symbol.tolist() == ["N", "V", "S"]
    with pytest.raises(DataError, match="not found"):
        read_annotations(tmp_path / "nope.ecgf")
