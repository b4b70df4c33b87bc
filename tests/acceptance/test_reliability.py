"""Issue 13: finished work is never destroyed, checkpoints are never fully unpickled, a resume
either applies a change or refuses it, and a SIGKILLed training resumes to the same result.

Small real runs (MIT-BIH records 100, 119, 208, 232; 1,200 beats; a one-layer 1D model), as in
test_training.py.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from cli_runner import run_cli
from test_training import SMALL, data_section, write_config  # noqa: F401 (fixture)

from ecgfusion.experiments.reproduce import _train_stage
from ecgfusion.training.config import load_config, validate_config
from ecgfusion.training.trainer import train

pytestmark = pytest.mark.acceptance


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data_section):  # noqa: F811
    """A finished one-epoch run of the small 1D model."""
    folder = tmp_path_factory.mktemp("reliability")
    config = write_config(folder / "c.yaml", data_section, "cnn_transformer_1d")
    train(load_config(config), folder / "run")
    return folder / "run"


def copy_run(src: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


class Planted:
    """Unpickling this object creates a file: what a shared, malicious checkpoint could do."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_resume_refuses_a_checkpoint_whose_pickle_would_run_code(finished, tmp_path, capsys):
    run = copy_run(finished, tmp_path / "run")
    last = run / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    marker = tmp_path / "code-ran"
    ckpt["callbacks"] = {"planted": Planted(marker)}
    torch.save(ckpt, last)
    before = last.read_bytes()

    code, _, err = run_cli(["train", "--resume", run, "--set", "trainer.max_epochs=2"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert str(last) in lines[0] and "not unpickled" in lines[0]
    assert not marker.exists()  # nothing in the file ran
    assert last.read_bytes() == before


def test_resume_applies_a_longer_budget_and_refuses_what_the_checkpoint_overrides(
    finished, tmp_path, capsys
):
    run = copy_run(finished, tmp_path / "run")
    config_before = (run / "config.yaml").read_text()
    code, _, err = run_cli(["train", "--resume", run, "--set", "optim.lr=0.05"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "optim.lr cannot change on a resume" in err and "model.init_from" in err
    assert (run / "config.yaml").read_text() == config_before  # nothing recorded

    # the budget may grow: training continues from the checkpoint to the new max_epochs
    code, _, err = run_cli(["train", "--resume", run, "--set", "trainer.max_epochs=2"], capsys)
    assert code == 0, err
    result = json.loads((run / "metrics.json").read_text())
    assert result["timing"]["epochs_trained"] == 2 and result["timing"]["resumed"] is True


def test_reproduce_keeps_a_finished_stage_of_another_config(finished, tmp_path, data_section):  # noqa: F811
    run = copy_run(finished, tmp_path / "stage")
    metrics = (run / "metrics.json").read_bytes()
    config = load_config(run / "config.yaml")

    # where it runs is not what it computes: the finished stage is reused as it is
    moved = config.model_copy(deep=True)
    moved.data.cache_dir = str(tmp_path / "elsewhere-cache")
    moved.data.data_root = str(pathlib.Path(data_section["data_root"]) / ".." / "datasets")
    moved.trainer.num_threads = 2
    logs: list[str] = []
    _train_stage(moved, run, None, logs.append)
    assert (run / "metrics.json").read_bytes() == metrics and not logs

    # another learning rate: the old run is kept aside, a new one trained
    other = config.model_copy(deep=True)
    other.optim.lr = 5e-4
    _train_stage(other, run, None, logs.append)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("stage.replaced-")]
    assert len(kept) == 1 and (kept[0] / "metrics.json").read_bytes() == metrics
    assert "optim.lr" in logs[0] and str(kept[0]) in logs[0]
    assert load_config(run / "config.yaml").optim.lr == 5e-4


def _epochs_in_log(run: pathlib.Path) -> list[int]:
    from ecgfusion.evaluation.plots import epoch_history

    return epoch_history(run / "logs").index.tolist()


def test_sigkill_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path, data_section, capsys):  # noqa: F811
    # 3 epochs of 1,200 beats at batch 16: ~60 optimiser steps per epoch, dropout on
    params = {**SMALL["cnn_transformer_1d"], "dropout": 0.2}
    config_file = write_config(
        tmp_path / "c.yaml",
        data_section,
        "cnn_transformer_1d",
        params,
        epochs=3,
        optim={"name": "adamw", "lr": 1e-3, "scheduler": "onecycle"},
        trainer={"batch_size": 16},
        augment={"amplitude": 0.1, "noise": 0.01},
    )
    reference = tmp_path / "reference"
    assert run_cli(["train", config_file, "--run-dir", reference], capsys)[0] == 0

    run = tmp_path / "killed"
    last = run / "checkpoints" / "last.ckpt"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from ecgfusion.cli import main; main()",
            "train",
            str(config_file),
            "--run-dir",
            str(run),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 300
        while not last.is_file():  # the end of the first epoch
            assert proc.poll() is None, "training ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 300 s"
            time.sleep(0.05)
        time.sleep(1.0)  # into the second epoch
        assert proc.poll() is None, "training finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "metrics.json").exists()
    stopped_at = torch.load(last, weights_only=True)["epoch"]
    assert stopped_at in (0, 1)

    code, _, err = run_cli(["train", "--resume", run], capsys)
    assert code == 0, err
    result = json.loads((run / "metrics.json").read_text())
    expected = json.loads((reference / "metrics.json").read_text())
    assert result["timing"]["epochs_trained"] == 3 and result["timing"]["resumed"] is True
    assert _epochs_in_log(run) == [0, 1, 2]  # at most the cut epoch repeated, none counted twice
    assert result["metrics"]["accuracy"] == expected["metrics"]["accuracy"]
    assert result["metrics"]["mcc"] == pytest.approx(expected["metrics"]["mcc"], abs=1e-6)
    assert result["metrics"]["confusion_matrix"] == expected["metrics"]["confusion_matrix"]
    assert not list(run.rglob("*.tmp"))  # the killed run's temporaries were swept
    assert yaml.safe_load((run / "config.yaml").read_text())["trainer"]["max_epochs"] == 3
    assert validate_config(yaml.safe_load((run / "config.yaml").read_text()))


def test_a_seed_stopped_before_its_first_checkpoint_is_kept_aside(tmp_path, data_section, capsys):  # noqa: F811
    config_file = write_config(tmp_path / "c.yaml", data_section, "cnn_transformer_1d")
    config = load_config(config_file)
    config.seeds = [0, 1]
    run = tmp_path / "run"
    train(config.model_copy(update={"seeds": [0]}), run)  # seed 0 finished
    (run / "config.yaml").write_text(config.to_yaml())
    unfinished = run / "seed_1"
    (unfinished / "logs").mkdir(parents=True)
    (unfinished / "logs" / "notes.txt").write_text("kept")

    code, _, err = run_cli(["train", "--resume", run], capsys)
    assert code == 0, err
    kept = [p for p in run.iterdir() if p.name.startswith("seed_1.unfinished-")]
    assert len(kept) == 1 and (kept[0] / "logs" / "notes.txt").read_text() == "kept"
    assert (run / "seed_1" / "metrics.json").is_file()
