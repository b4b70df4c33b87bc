"""Every input gives one line: user errors name the file or option and the fix, bugs say where
their trace went (exit 70), Ctrl-C is `error: interrupted` (exit 130); never a traceback.

Nothing here trains or loads beats: the steps after the check under test are replaced by a
function that fails the test, so a check that comes too late is caught too.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from ecgfusion.cli import main
from ecgfusion.errors import DataError
from ecgfusion.inference.loading import PRETRAINED_DIR

ROOT = Path(__file__).resolve().parents[2]
KACHUEE = ROOT / "configs" / "kachuee_cnn_mitdb.yaml"
CRASH_LINE = re.compile(
    r"^error: unexpected (?P<kind>\w+): (?P<message>.*) "
    r"\(full trace saved to (?P<path>.+); please report it\)$"
)


def run(args, capsys) -> tuple[int, str]:
    """(exit code, stderr) of one `ecgfusion ...` call; stderr never holds a traceback."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return info.value.code, err


def one_error_line(args, capsys, code: int = 2) -> str:
    exit_code, err = run(args, capsys)
    assert exit_code == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def forbid(monkeypatch, *targets: str) -> None:
    """Bad input must be refused before these run (model loading, data loading, training)."""

    def forbidden(*args, **kwargs):
        raise AssertionError("bad input got past the check")

    for target in targets:
        monkeypatch.setattr(target, forbidden)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """Crash traces of these tests go to a temporary cache, never the user's."""
    root = tmp_path / "cache"
    monkeypatch.setenv("ECGFUSION_CACHE", str(root))
    return root


def raise_in_models_list(monkeypatch, exc: BaseException) -> None:
    def broken():
        raise exc

    monkeypatch.setattr("ecgfusion.models.list_models", broken)


# --------------------------------------------------------------------------- the last catch


def test_an_unexpected_error_is_one_line_exit_70_and_a_saved_trace(cache, monkeypatch, capsys):
    raise_in_models_list(monkeypatch, RuntimeError("broken\non two lines"))
    line = one_error_line(["models", "list"], capsys, code=70)
    match = CRASH_LINE.match(line)
    assert match, line
    assert match["kind"] == "RuntimeError" and match["message"] == "broken on two lines"
    trace = Path(match["path"])
    assert trace.parent == cache / "crash" and trace.is_file()
    text = trace.read_text()
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: broken" in text and "in broken" in text
    assert "ecgfusion models list" in text


def test_each_crash_gets_its_own_trace_file(cache, monkeypatch, capsys):
    raise_in_models_list(monkeypatch, ValueError("first"))
    first = CRASH_LINE.match(one_error_line(["models", "list"], capsys, code=70))["path"]
    raise_in_models_list(monkeypatch, ValueError("second"))
    second = CRASH_LINE.match(one_error_line(["models", "list"], capsys, code=70))["path"]
    assert first != second
    assert "first" in Path(first).read_text() and "second" in Path(second).read_text()


def test_an_unwritable_cache_saves_the_trace_in_the_temp_folder(tmp_path, monkeypatch, capsys):
    not_a_folder = tmp_path / "cache-is-a-file"
    not_a_folder.write_text("")
    monkeypatch.setenv("ECGFUSION_CACHE", str(not_a_folder))
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    raise_in_models_list(monkeypatch, RuntimeError("boom"))
    match = CRASH_LINE.match(one_error_line(["models", "list"], capsys, code=70))
    assert match and Path(match["path"]).parent == temp
    assert "RuntimeError: boom" in Path(match["path"]).read_text()


def test_ctrl_c_is_one_line_and_exit_130(cache, monkeypatch, capsys):
    raise_in_models_list(monkeypatch, KeyboardInterrupt())
    assert one_error_line(["models", "list"], capsys, code=130) == "error: interrupted"
    assert not (cache / "crash").exists()


def test_ctrl_c_during_training_is_one_line_and_exit_130(cache, monkeypatch, capsys):
    """Lightning stops gracefully on Ctrl-C and then calls sys.exit(1)."""

    def lightning_fit():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            print("Detected KeyboardInterrupt, attempting graceful shutdown ...")
            raise SystemExit(1) from None

    monkeypatch.setattr("ecgfusion.models.list_models", lightning_fit)
    assert one_error_line(["models", "list"], capsys, code=130) == "error: interrupted"


def test_an_os_error_naming_its_file_is_a_user_error(cache, monkeypatch, capsys):
    raise_in_models_list(monkeypatch, PermissionError(13, "Permission denied", "/data/x.hea"))
    line = one_error_line(["models", "list"], capsys)
    assert line.startswith("error: /data/x.hea: Permission denied; check")
    assert not (cache / "crash").exists()


def test_usage_errors_and_help_still_exit_as_typer_makes_them(cache, capsys):
    """Regression guard (passed before too): SystemExit from typer goes through untouched."""
    code, err = run(["models", "list", "--no-such-option"], capsys)
    assert code == 2 and "No such option" in err
    with pytest.raises(SystemExit) as info:
        main(["models", "--help"])
    assert info.value.code == 0
    assert not (cache / "crash").exists()


# --------------------------------------------------------------------------- numeric options

NO_PREDICT = ("ecgfusion.inference.loading.load_predictor",)


@pytest.mark.parametrize("value", ["nan", "inf", "-360", "0"])
def test_predict_refuses_a_sampling_rate_that_is_not_a_positive_number(
    tmp_path, monkeypatch, capsys, value
):
    forbid(monkeypatch, *NO_PREDICT)
    line = one_error_line(
        ["predict", tmp_path / "x.npy", "--pretrained", "mitdb-cnn-2d", "--fs", value], capsys
    )
    assert "--fs must be a positive finite number" in line and "e.g. --fs 360" in line


def test_predict_refuses_batch_size_0(tmp_path, monkeypatch, capsys):
    forbid(monkeypatch, *NO_PREDICT)
    code, err = run(["predict", tmp_path / "x.npy", "--batch-size", "0"], capsys)
    assert code == 2 and "--batch-size" in err


def test_negative_seeds_are_refused(tmp_path, monkeypatch, capsys):
    forbid(monkeypatch, "ecgfusion.data.cache.load_beats")
    code, err = run(["data", "split", "mitdb", "--seed", "-1"], capsys)
    assert code == 2 and "--seed" in err
    code, err = run(["tune", KACHUEE, "--space", "s.yaml", "--trials", "1", "--seed", "-1"], capsys)
    assert code == 2 and "--seed" in err


def test_tune_refuses_an_infinite_timeout(tmp_path, capsys):
    line = one_error_line(
        ["tune", tmp_path / "no.yaml", "--space", "s.yaml", "--trials", "1", "--timeout", "inf"],
        capsys,
    )
    assert "--timeout must be a positive finite number, got inf" in line


def test_bench_refuses_an_infinite_budget(tmp_path, monkeypatch, capsys):
    forbid(monkeypatch, "ecgfusion.benchmarks.run_benchmark")
    line = one_error_line(
        ["bench", "convergence", "--budget", "inf", "--out", tmp_path / "b"], capsys
    )
    assert "--budget must be a positive finite number" in line


def test_the_finite_check_is_also_in_the_library(tmp_path):
    from ecgfusion.inference.recording import read_recording

    np.save(tmp_path / "x.npy", np.zeros(10_000))
    with pytest.raises(DataError, match="not a finite number"):
        read_recording(tmp_path / "x.npy", fs=float("nan"))


# --------------------------------------------------------------------------- output folders


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a folder\n")
    return path


def test_predict_out_that_is_a_file_is_refused_before_the_model_loads(
    tmp_path, a_file, monkeypatch, capsys
):
    forbid(monkeypatch, *NO_PREDICT)
    args = ["predict", tmp_path / "x.npy", "--pretrained", "mitdb-cnn-2d", "--out"]
    line = one_error_line([*args, a_file], capsys)
    assert f"--out {a_file}: it is a file, not a folder" in line
    line = one_error_line([*args, a_file / "sub"], capsys)
    assert f"{a_file} is a file" in line and "pass a path under a folder" in line


def test_other_out_folders_are_checked_first(tmp_path, a_file, monkeypatch, capsys):
    forbid(
        monkeypatch,
        "ecgfusion.benchmarks.run_benchmark",
        "ecgfusion.experiments.reproduce.reproduce",
        "ecgfusion.training.trainer.train",
    )
    assert "--out" in one_error_line(["bench", "spectrogram", "--out", a_file], capsys)
    assert "--out" in one_error_line(["reproduce", "--out", a_file], capsys)
    assert "--runs" in one_error_line(["reproduce", "--runs", a_file / "r"], capsys)
    line = one_error_line(["train", KACHUEE, "--run-dir", a_file / "run"], capsys)
    assert "--run-dir" in line and "is a file" in line
    # score checks its --out before reading any annotation
    score = ["score", tmp_path / "p.ecgf", tmp_path / "r.atr", "--out", a_file / "t"]
    line = one_error_line(score, capsys)
    assert "--out" in line and "is a file" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent_is_refused(tmp_path):
    from ecgfusion.cli.common import writable_path

    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        with pytest.raises(DataError, match="is not writable"):
            writable_path(parent / "out")
    finally:
        parent.chmod(0o755)


# --------------------------------------------------------------------------- run folders


@pytest.fixture
def run_dir(tmp_path, monkeypatch) -> Path:
    """A finished run (a shipped pretrained one, copied); evaluate must not load any beat."""
    target = tmp_path / "run"
    shutil.copytree(PRETRAINED_DIR / "mitdb-cnn-2d", target)
    forbid(
        monkeypatch,
        "ecgfusion.training.tasks.beat_classification.prepare_split",
        "ecgfusion.training.tasks.beat_classification.load_config_beats",
    )
    return target


def test_evaluate_a_truncated_model_file(run_dir, capsys):
    model = run_dir / "model.pt"
    model.write_bytes(model.read_bytes()[:5000])
    line = one_error_line(["evaluate", run_dir], capsys)
    assert f"{model} is corrupt" in line


@pytest.mark.parametrize("text", ['{"metr', "", "[]", '{"metrics": 1}'])
def test_evaluate_a_corrupt_metrics_file(run_dir, capsys, text):
    (run_dir / "metrics.json").write_text(text)
    line = one_error_line(["evaluate", run_dir], capsys)
    assert str(run_dir / "metrics.json") in line
    assert f"ecgfusion evaluate {run_dir}" in line  # the fix


def test_evaluate_a_truncated_config(run_dir, capsys):
    """Regression guard (load_config already made this one line): a broken config.yaml."""
    config = run_dir / "config.yaml"
    config.write_text(config.read_text()[:300])
    line = one_error_line(["evaluate", run_dir], capsys)
    assert f"{config}: not valid YAML" in line


# --------------------------------------------------------------------------- record headers


def garbage_header_record(folder: Path) -> Path:
    """An annotation file without a sampling rate beside a .hea that is not a header."""
    import wfdb

    folder.mkdir(exist_ok=True)
    wfdb.wrann("100", "atr", np.array([100, 460, 820]), ["N", "N", "V"], write_dir=str(folder))
    (folder / "100.hea").write_bytes(b"garbage \x00\xff not a header\n")
    return folder / "100.atr"


@pytest.mark.parametrize("header", [b"garbage \x00\xff not a header\n", b""])
def test_score_with_a_garbage_header(tmp_path, capsys, header):
    ann = garbage_header_record(tmp_path / "rec")
    (tmp_path / "rec" / "100.hea").write_bytes(header)
    line = one_error_line(["score", ann, ann], capsys)
    assert f"{tmp_path / 'rec' / '100.hea'}: not a readable WFDB header" in line
    assert "re-download" in line


def test_predict_with_a_garbage_header(tmp_path, monkeypatch, capsys):
    """Regression guard (read_recording already wrapped wfdb): one line naming the record."""
    garbage_header_record(tmp_path / "rec")
    monkeypatch.setattr("ecgfusion.inference.loading.load_predictor", lambda *a: object())
    line = one_error_line(
        ["predict", tmp_path / "rec" / "100.hea", "--model", tmp_path, "--out", tmp_path / "o"],
        capsys,
    )
    assert str(tmp_path / "rec" / "100") in line and "wfdb cannot read it" in line
