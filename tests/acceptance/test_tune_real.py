"""`ecgfusion tune` on real MIT-BIH beats: a 3-trial study, a kill, a resume to 4 trials.

500 beats of records 100 and 119 (data.max_beats), the Kachuee CNN, one epoch per trial, batch
64, one thread: each trial is a second or two. Every trial must train on the training part and
be judged on the validation part only; the test part is never built into tensors.
"""

from __future__ import annotations

import csv

import optuna
import pytest
import yaml
from cli_runner import run_cli

from ecgfusion.experiments.tune import STUDY_NAME, storage_url
from ecgfusion.training import datamodule
from ecgfusion.training.config import load_config
from ecgfusion.training.tasks import beat_classification

pytestmark = pytest.mark.acceptance

SPACE = {
    "objective": "val_macro_f1",
    "seed": 0,
    "sampler": {"n_startup_trials": 2},
    "pruner": {"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
    "params": {
        "optim.lr": {"type": "float", "low": 1.0e-4, "high": 3.0e-3, "log": True},
        "trainer.class_weights": {"type": "categorical", "choices": ["none", "sqrt_inverse"]},
        "trainer.label_smoothing": {"type": "float", "low": 0.0, "high": 0.1},
    },
}


@pytest.fixture
def study_files(tmp_path, mitdb_dir, session_cache):
    config = {
        "data": {
            "dataset": "mitdb",
            "records": ["100", "119"],
            "max_beats": 500,
            "data_root": str(mitdb_dir.parent),
            "cache_dir": str(session_cache),
        },
        "model": {"name": "kachuee_cnn"},
        "optim": {"name": "adam", "lr": 1e-3},
        "trainer": {"max_epochs": 1, "batch_size": 64, "eval_batch_size": 256, "num_threads": 1},
    }
    config_path, space_path = tmp_path / "base.yaml", tmp_path / "space.yaml"
    config_path.write_text(yaml.safe_dump(config))
    space_path.write_text(yaml.safe_dump(SPACE))
    return config_path, space_path, tmp_path / "study"


@pytest.fixture
def parts_seen(monkeypatch):
    """The parts every trial's data module holds; reading the test part fails the test."""
    seen: list[set[str]] = []
    original = datamodule.BeatDataModule.__init__

    def recording_init(self, prepared, *args, **kwargs):
        seen.append(set(prepared.index))
        original(self, prepared, *args, **kwargs)

    def no_test(*args, **kwargs):
        raise AssertionError("a study read the test part")

    monkeypatch.setattr(datamodule.BeatDataModule, "__init__", recording_init)
    monkeypatch.setattr(datamodule.BeatDataModule, "test_dataloader", no_test)
    monkeypatch.setattr(beat_classification, "score_test_part", no_test)
    return seen


def read_rows(run_dir):
    with (run_dir / "trials.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_study_runs_resumes_after_a_kill_and_never_reads_the_test_part(
    study_files, parts_seen, capsys
):
    config, space, run_dir = study_files
    args = ["tune", config, "--space", space, "--run-dir", run_dir]

    code, out, err = run_cli([*args, "--trials", "3"], capsys)
    assert code == 0, err
    for name in (
        "study.db",
        "base_config.yaml",
        "space.yaml",
        "command.txt",
        "trials.md",
        "best.yaml",
    ):
        assert (run_dir / name).is_file(), name
    rows = read_rows(run_dir)
    assert [r["trial"] for r in rows] == ["0", "1", "2"]
    assert {r["state"] for r in rows} <= {"COMPLETE", "PRUNED"} and rows[0]["state"] == "COMPLETE"
    assert all(r["epochs"] == "1" and float(r["seconds"]) > 0 for r in rows)
    assert [(run_dir / f"trial_{i:04d}" / "config.yaml").is_file() for i in range(3)] == [True] * 3
    assert parts_seen == [{"train", "val"}] * 3
    assert "best: trial" in out and "trials.csv" in out

    # The Lightning callback reported the objective once per epoch: a complete trial's value is
    # its one epoch's validation macro-F1, the pruner's input.
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage_url(run_dir))
    for trial in study.trials:
        assert list(trial.intermediate_values) == [0]
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert trial.intermediate_values[0] == pytest.approx(trial.value)

    # best.yaml is the base config with the best trial's values: a config `train` accepts
    best = load_config(run_dir / "best.yaml")
    best_trial = max(
        (t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE),
        key=lambda t: t.value,
    )
    assert best.optim.lr == pytest.approx(best_trial.params["optim.lr"])
    assert best.trainer.class_weights == best_trial.params["trainer.class_weights"]
    assert best.data == load_config(config).data and best.model.name == "kachuee_cnn"
    has_plot = (run_dir / "importance.png").is_file()
    assert has_plot or "no parameter importance" in (run_dir / "trials.md").read_text()

    # A kill mid-trial leaves it RUNNING; the resume marks it FAIL and runs one more to reach 4.
    killed = study.ask()
    code, out, err = run_cli([*args, "--trials", "4"], capsys)
    assert code == 0, err
    states = [r["state"] for r in read_rows(run_dir)]
    assert len(states) == 5 and states[killed.number] == "FAIL"
    assert sum(s in ("COMPLETE", "PRUNED") for s in states) == 4
    assert sorted(p.name for p in run_dir.glob("trial_*")) == [
        "trial_0000",
        "trial_0001",
        "trial_0002",
        "trial_0004",
    ]
    assert len(parts_seen) == 4
    assert len((run_dir / "command.txt").read_text().splitlines()) == 2

    # Enough trials already: nothing is trained again.
    code, out, err = run_cli([*args, "--trials", "4"], capsys)
    assert code == 0, err
    assert len(read_rows(run_dir)) == 5 and len(parts_seen) == 4

    # Another space in the same folder is refused, the study untouched.
    other = yaml.safe_load(space.read_text())
    other["params"]["optim.lr"]["high"] = 1.0e-2
    space.write_text(yaml.safe_dump(other))
    code, out, err = run_cli([*args, "--trials", "6"], capsys)
    assert code == 2 and err.startswith("error: ") and "another search space" in err
    assert len(read_rows(run_dir)) == 5 and len(parts_seen) == 4
