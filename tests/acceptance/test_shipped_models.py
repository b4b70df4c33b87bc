"""The suite guards what users run: a shipped model on a real record it never saw, scored
against the reference annotations, and `evaluate --pretrained` recomputing a model card."""

from __future__ import annotations

import json
import math

import pytest
import wfdb
from cli_runner import run_cli

from ecgfusion.data.splits import DS2
from ecgfusion.inference import loading

pytestmark = pytest.mark.acceptance

#: Record 233 is in DS2, the patients the inter-patient model never saw (it trained on DS1); its
#: first 5 minutes hold 339 N and 139 V beats. Measured with the shipped model on 2026-12-07:
#: QRS Se / +P 1.000 / 1.000, N 0.736 / 0.869, V 0.741 / 0.780. The thresholds leave a margin
#: for bf16 / other CPUs and catch a broken detector, cutter, model or scorer.
RECORD, MINUTES = "233", 5
THRESHOLDS = {
    "QRS Se": 0.99,
    "QRS +P": 0.99,
    "N Se": 0.65,
    "N +P": 0.80,
    "V Se": 0.65,
    "V +P": 0.70,
}


@pytest.fixture(scope="module")
def unseen_record(tmp_path_factory, mitdb_dir):
    folder = tmp_path_factory.mktemp("unseen")
    fs, stop = 360, 360 * 60 * MINUTES
    signal, fields = wfdb.rdsamp(str(mitdb_dir / RECORD), sampto=stop)
    wfdb.wrsamp(
        RECORD,
        fs=fs,
        units=fields["units"],
        sig_name=fields["sig_name"],
        p_signal=signal,
        fmt=["212"] * signal.shape[1],
        write_dir=str(folder),
    )
    ann = wfdb.rdann(str(mitdb_dir / RECORD), "atr", sampto=stop)
    wfdb.wrann(RECORD, "atr", ann.sample, symbol=ann.symbol, fs=fs, write_dir=str(folder))
    return folder


def test_shipped_hybrid_on_a_record_it_never_saw(unseen_record, tmp_path, capsys):
    name = "mitdb-inter-patient-late-fusion"
    card = json.loads((loading.PRETRAINED_DIR / name / "card.json").read_text())
    assert card["protocol"] == "inter-patient" and RECORD in DS2

    out = tmp_path / "pred"
    args = ["predict", unseen_record / RECORD, "--pretrained", name, "--out", out]
    code, _, err = run_cli([*args, "--precision", "32"], capsys)
    assert code == 0, err
    code, _, err = run_cli(
        ["score", out / f"{RECORD}.ecgf", unseen_record / f"{RECORD}.atr", "--out", tmp_path / "s"],
        capsys,
    )
    assert code == 0, err
    rows = {row["record"]: row for row in json.loads((tmp_path / "s.json").read_text())}
    gross = rows["gross"]
    for key, minimum in THRESHOLDS.items():
        assert not math.isnan(gross[key]) and gross[key] >= minimum, (key, gross[key], minimum)


def test_evaluate_pretrained_recomputes_its_card(capsys):
    name = "mitdb-kachuee-cnn"  # the fastest shipped model to score on the whole test part
    card = json.loads((loading.PRETRAINED_DIR / name / "card.json").read_text())
    code, out, err = run_cli(["evaluate", "--pretrained", name], capsys)
    assert code == 0, err
    assert "reproduces metrics.json" in out
    assert f"{card['metrics']['mcc']:.4f}" in out and f"{card['metrics']['accuracy']:.4f}" in out
