"""`ecgfusion predict | score | export` on real MIT-BIH records.

The run folder holds an untrained small model: what is tested here (detector-to-segmenter path,
output files, annotation round trip, leakage warning, ONNX parity, bad input) does not depend on
the weights; the shipped trained models are evaluated in docs/results.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import wfdb

from ecgfusion.cli import main
from ecgfusion.data.labels import BEAT_SYMBOLS
from ecgfusion.data.rpeaks import locate_beats
from ecgfusion.inference.recording import read_recording
from ecgfusion.models import create_model, save_model
from ecgfusion.training.config import load_config, save_config

pytestmark = pytest.mark.acceptance

SMALL = {"n_layers": 2, "channels": 32, "n_heads": 4}


def make_run(
    path,
    name="cnn_transformer_1d",
    params=SMALL,
    protocol="inter-patient",
    session_cache=None,
    mitdb_dir=None,
):
    overrides = [f"data.protocol={protocol}"]
    if session_cache is not None:
        overrides += [f"data.cache_dir={session_cache}", f"data.data_root={mitdb_dir.parent}"]
    config = load_config("configs/cnn_transformer_1d_mitdb.yaml", overrides)
    save_config(config, path)
    torch.manual_seed(0)
    model = create_model(name, n_classes=5, n_samples=187, sampling_rate=125.0, **params)
    save_model(model, path / "model.pt")
    return path


@pytest.fixture(scope="module")
def short_record(tmp_path_factory, mitdb_dir):
    """The first 60 s of record 100 (and of 101) as WFDB records of their own, with annotations."""
    folder = tmp_path_factory.mktemp("records")
    for rec in ("100", "101"):
        signal, fields = wfdb.rdsamp(str(mitdb_dir / rec), sampto=360 * 60)
        wfdb.wrsamp(
            rec,
            fs=360,
            units=fields["units"],
            sig_name=fields["sig_name"],
            p_signal=signal,
            fmt=["212"] * signal.shape[1],
            write_dir=str(folder),
        )
        ann = wfdb.rdann(str(mitdb_dir / rec), "atr", sampto=360 * 60)
        wfdb.wrann(rec, "atr", ann.sample, symbol=ann.symbol, fs=360, write_dir=str(folder))
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, session_cache, mitdb_dir, mitdb_beats):
    return make_run(
        tmp_path_factory.mktemp("run"), session_cache=session_cache, mitdb_dir=mitdb_dir
    )


def cli(args, expect=0):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    assert info.value.code == expect


def test_detector_finds_the_reference_beats(mitdb_dir):
    rec = read_recording(mitdb_dir / "119")  # many PVCs
    _, _, peaks = locate_beats(rec.signal, rec.fs)
    ann = wfdb.rdann(str(mitdb_dir / "119"), "atr")
    ref = ann.sample[np.isin(ann.symbol, list(BEAT_SYMBOLS))]
    cmp = wfdb.processing.compare_annotations(ref, peaks, int(0.15 * 360))
    assert cmp.sensitivity > 0.99 and cmp.positive_predictivity > 0.97
    # Refined onto the R extremum, as the training beats were cut from the annotated R peaks.
    offsets = peaks[cmp.matched_test_inds] - ref[cmp.matched_ref_inds]
    assert np.mean(np.abs(offsets) <= 3) > 0.95


def test_predict_writes_four_outputs_readable_by_wfdb(run_dir, short_record, tmp_path, capsys):
    out = tmp_path / "out"
    cli(["predict", short_record / "100", "--model", run_dir, "--out", out])
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "100.ecgf",
        "100_beats.csv",
        "100_strip.png",
        "100_summary.json",
        "100_summary.md",
    ]
    ann = wfdb.rdann(str(out / "100"), "ecgf")
    assert set(ann.symbol) <= set("NSVFQ") and ann.fs == 360
    ref = wfdb.rdann(str(short_record / "100"), "atr")
    assert abs(len(ann.sample) - np.isin(ref.symbol, list(BEAT_SYMBOLS)).sum()) <= 2
    rows = (out / "100_beats.csv").read_text().splitlines()
    assert rows[0] == "sample,time_s,class,p_N,p_S,p_V,p_F,p_Q" and len(rows) == len(ann.sample) + 1
    probs = np.array([[float(v) for v in r.split(",")[3:]] for r in rows[1:]])
    assert np.allclose(probs.sum(1), 1.0, atol=1e-3)
    summary = json.loads((out / "100_summary.json").read_text())
    assert summary["beats"] == len(ann.sample) and 60 < summary["mean_heart_rate_bpm"] < 90
    assert summary["warnings"] == []  # 100 is a DS2 (test) record of the inter-patient model
    assert (out / "100_strip.png").read_bytes()[:4] == b"\x89PNG"
    # The predictions score against the reference with the EC57-style matcher.
    cli(["score", out / "100.ecgf", short_record / "100.atr"])
    table = capsys.readouterr().out
    assert "| gross |" in table


def test_a_detector_can_be_chosen_by_name(run_dir, short_record, tmp_path, capsys):
    cli(["predict", short_record / "100", "--model", run_dir, "--out", tmp_path,
         "--detector", "gqrs-125-deviation"])  # fmt: skip
    summary = json.loads((tmp_path / "100_summary.json").read_text())
    assert summary["detector"] == "gqrs-125-deviation"
    ref = wfdb.rdann(str(short_record / "100"), "atr")
    ann = wfdb.rdann(str(tmp_path / "100"), "ecgf")
    assert abs(len(ann.sample) - np.isin(ref.symbol, list(BEAT_SYMBOLS)).sum()) <= 2


def test_training_records_warn_loudly(run_dir, short_record, tmp_path, capsys):
    cli(["predict", short_record / "101", "--model", run_dir, "--out", tmp_path])
    assert "LEAKAGE" in capsys.readouterr().out
    assert "LEAKAGE" in json.loads((tmp_path / "101_summary.json").read_text())["warnings"][0]


def test_csv_and_npy_inputs_need_fs(run_dir, short_record, tmp_path, capsys):
    signal, _ = wfdb.rdsamp(str(short_record / "100"), channels=[0])
    np.save(tmp_path / "beats.npy", signal[:, 0])
    cli(["predict", tmp_path / "beats.npy", "--model", run_dir, "--out", tmp_path / "o"], expect=2)
    assert "pass --fs" in capsys.readouterr().err
    cli(
        [
            "predict",
            tmp_path / "beats.npy",
            "--fs",
            360,
            "--model",
            run_dir,
            "--out",
            tmp_path / "o",
        ]
    )
    assert (tmp_path / "o" / "beats.ecgf").is_file()


def test_bf16_inference_keeps_the_shipped_hybrids_labels(short_record):
    """`predict --precision auto` runs bf16 on CPUs that have it: same labels as fp32."""
    from ecgfusion.inference.loading import load_predictor
    from ecgfusion.inference.predict import predict_recording

    predictor = load_predictor(None, "mitdb-late-fusion")
    rec = read_recording(short_record / "100")
    fp32 = predict_recording(rec, predictor)
    bf16 = predict_recording(rec, predictor, bf16=True)
    np.testing.assert_array_equal(fp32.samples, bf16.samples)
    assert np.mean(fp32.labels == bf16.labels) >= 0.99
    assert np.abs(fp32.probs - bf16.probs).max() < 0.05


@pytest.mark.parametrize(
    "args, message",
    [
        (["--precision", "fp8"], "precision must be one of"),
        (["--lead", "V9"], "no lead 'V9'"),
        (["--pretrained", "nope"], "exactly one of"),
        (["--detector", "pan-tompkins"], "--detector: unknown R-peak detector 'pan-tompkins'"),
        (["--detector", "xqrs-125-two-lead"], "needs two leads"),
    ],
)
def test_bad_requests_write_nothing(run_dir, short_record, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    cli(["predict", short_record / "100", "--model", run_dir, "--out", out, *args], expect=2)
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_model_from_another_task_is_refused(tmp_path, short_record, capsys):
    run = make_run(tmp_path / "mm", name="multimodal", params={})
    cli(["predict", short_record / "100", "--model", run, "--out", tmp_path / "out"], expect=2)
    assert "not a beat classifier" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_short_and_low_rate_records_are_refused(tmp_path, short_record, run_dir, capsys):
    signal, fields = wfdb.rdsamp(str(short_record / "100"), sampto=360 * 5)
    wfdb.wrsamp(
        "short",
        fs=360,
        units=fields["units"],
        sig_name=fields["sig_name"],
        p_signal=signal,
        fmt=["212"] * 2,
        write_dir=str(tmp_path),
    )
    cli(["predict", tmp_path / "short", "--model", run_dir, "--out", tmp_path / "o"], expect=2)
    assert "at least 10 s" in capsys.readouterr().err
    np.save(tmp_path / "slow.npy", signal[::8, 0])
    cli(
        ["predict", tmp_path / "slow.npy", "--fs", 45, "--model", run_dir, "--out", tmp_path / "o"],
        expect=2,
    )
    assert "below 100 Hz" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["cnn_transformer_1d", "cnn_2d", "late_fusion"])
def test_onnx_matches_torch_on_real_beats(tmp_path, mitdb_beats, name):
    from ecgfusion.inference.export import export_onnx, onnx_probabilities

    params = {
        "cnn_transformer_1d": SMALL,
        "cnn_2d": {},
        "late_fusion": {"backbone_1d_params": SMALL},
    }[name]
    torch.manual_seed(1)
    model = create_model(name, n_classes=5, n_samples=187, sampling_rate=125.0, **params).eval()
    path = export_onnx(model, tmp_path / "m.onnx")
    beats = torch.from_numpy(mitdb_beats.signals[::997][:100])  # real beats of every record
    with torch.inference_mode():
        expected = torch.softmax(model(beats).scores, dim=1)
    got = onnx_probabilities(path, beats.numpy())
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() < 1e-4


def test_onnx_of_a_rhythm_fusion_takes_beats_and_rr(tmp_path, mitdb_beats):
    """A fusion with the rhythm branch exports with two inputs (beats, rr) that match torch."""
    from ecgfusion.inference.export import export_checked, onnx_probabilities

    torch.manual_seed(1)
    model = create_model(
        "intermediate_fusion", n_classes=5, n_samples=187, sampling_rate=125.0, rhythm=True,
        backbone_1d_params=SMALL, backbone_2d_params={"filters": 4}, hidden=8,
    ).eval()  # fmt: skip
    path, diff = export_checked(model, tmp_path / "m.onnx")
    assert diff < 1e-4
    rows = slice(None, None, 997)
    beats = torch.from_numpy(mitdb_beats.signals[rows][:100])
    rr = torch.from_numpy(mitdb_beats.rr[rows][:100])
    with torch.inference_mode():
        expected = torch.softmax(model(beats, rr).scores, dim=1)
    got = onnx_probabilities(path, beats.numpy(), rr.numpy())
    assert (got - expected).abs().max().item() < 1e-4
