"""`ecgfusion tune` without data: the search-space file, its check against the run-config schema,
the pruning callback, the results files, and bad input refused before anything is trained."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch
import yaml

from ecgfusion.cli import main
from ecgfusion.errors import ConfigError
from ecgfusion.experiments.search_space import check_space, load_space, trial_config
from ecgfusion.experiments.tune import PruningCallback, check_run_dir
from ecgfusion.experiments.tune_results import (
    BEST_FILE,
    IMPORTANCE_FILE,
    TRIALS_CSV,
    TRIALS_MD,
    write_results,
)
from ecgfusion.training.config import load_config

ROOT = Path(__file__).parents[2]
CONFIGS = ROOT / "configs"
KACHUEE = CONFIGS / "kachuee_cnn_mitdb.yaml"
SHIPPED = [
    ("cnn_transformer_1d", "cnn_transformer_1d_mitdb"),
    ("cnn_2d", "cnn_2d_mitdb"),
    ("kachuee_cnn", "kachuee_cnn_mitdb"),
    ("fusion", "late_fusion_mitdb"),
    ("fusion", "intermediate_concat_mitdb"),
]

SPACE = """
objective: val_macro_f1
pruner: {n_startup_trials: 3, n_warmup_steps: 1}
params:
  optim.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
  trainer.batch_size: {type: categorical, choices: [64, 128, 256]}
  trainer.class_weights: {type: categorical, choices: [none, sqrt_inverse, balanced, sampler]}
  augment.shift: {type: int, low: 0, high: 3}
"""


def write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def space_error(tmp_path: Path, text: str, base: Path = KACHUEE) -> str:
    with pytest.raises(ConfigError) as info:
        check_space(load_space(write(tmp_path, text)), load_config(base), "space.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("space", "config"), SHIPPED, ids=[f"{s}-{c}" for s, c in SHIPPED])
def test_shipped_spaces_fit_their_configs(space, config):
    loaded = load_space(CONFIGS / "search" / f"{space}.yaml")
    check_space(loaded, load_config(CONFIGS / f"{config}.yaml"), space)
    assert loaded.objective == "val_macro_f1" and "optim.lr" in loaded.params
    assert not any(k.startswith(("data.", "model.name")) for k in loaded.params)


def test_space_round_trips_through_its_yaml(tmp_path):
    space = load_space(write(tmp_path, SPACE))
    again = load_space(write(tmp_path, space.to_yaml(), "copy.yaml"))
    assert again == space
    assert space.params["optim.lr"].log and space.params["augment.shift"].type == "int"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params: {optim.lrr: {type: float, low: 0.1, high: 1}}", "optim.lrr: unknown key"),
        ("params: {optim.lr.x: {type: float, low: 0.1, high: 1}}", "optim.lr is a value"),
        (
            "params: {model.params.channels: {type: int, low: 8, high: 32}}",
            "part of the architecture",
        ),
        ("params: {model.name: {type: categorical, choices: [cnn_2d]}}", "not searchable"),
        ("params: {data.seed: {type: int, low: 0, high: 3}}", "data must be the same"),
        ("params: {trainer.seed: {type: int, low: 0, high: 3}}", "seed only fits noise"),
        # kachuee_cnn has no dropout: a space for another model
        ("params: {model.params.dropout: {type: float, low: 0, high: 0.3}}", "has no dropout"),
        # an end of a range outside the schema's range
        ("params: {trainer.label_smoothing: {type: float, low: 0, high: 0.6}}", "less than 0.5"),
        ("params: {optim.warmup_fraction: {type: float, low: 0, high: 1}}", "less than 1"),
        (
            "params: {trainer.class_weights: {type: categorical, choices: [none, inverse]}}",
            "'inverse'",
        ),
    ],
)
def test_space_keys_and_values_are_checked_against_the_config(tmp_path, text, expected):
    assert expected in space_error(tmp_path, text)


def test_dropout_is_searchable_where_the_model_has_it(tmp_path):
    text = "params: {model.params.dropout: {type: float, low: 0.0, high: 0.3}}"
    check_space(load_space(write(tmp_path, text)), load_config(CONFIGS / "cnn_2d_mitdb.yaml"))
    bad = "params: {model.params.dropout: {type: float, low: 0.0, high: 1.5}}"
    assert "dropout must be a number in [0, 1)" in space_error(
        tmp_path, bad, CONFIGS / "cnn_2d_mitdb.yaml"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params: {}", "at least 1 item"),
        ("objective: val_mcc\nparams: {optim.lr: {type: float, low: 0.1, high: 1}}", "objective"),
        ("pruner: {patience: 2}\nparams: {optim.lr: {type: float, low: 0.1, high: 1}}", "unknown"),
        ("params: {optim.lr: {type: float, low: 0, high: 0.1, log: true}}", "low > 0"),
        ("params: {optim.lr: {type: float, low: 0.2, high: 0.1}}", "low must be below high"),
        ("params: {optim.lr: {type: float, low: abc, high: 0.1}}", "must be a number"),
        ("params: {optim.lr: {type: float, low: 0.1, hi: 0.2}}", "optim.lr.hi: unknown key"),
        ("params: {optim.lr: {type: float, high: 0.2}}", "needs low and high"),
        ("params: {optim.lr: {type: float, low: 0.1, high: 0.2, choices: [1]}}", "not choices"),
        ("params: {trainer.batch_size: {type: int, low: 1.5, high: 3}}", "must be an integer"),
        ("params: {trainer.batch_size: {type: categorical, choices: []}}", "non-empty"),
        ("params: {trainer.batch_size: {type: categorical, choices: [64, 64]}}", "distinct"),
        ("params: {optim.betas: {type: categorical, choices: [[0.9, 0.99]]}}", "each choice"),
        ("params: [optim.lr]", "valid dictionary"),
        ("params: {optim.lr: {type: float, low: 0.1, high: [}", "not valid YAML"),
    ],
)
def test_bad_space_files_are_one_config_error(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        load_space(write(tmp_path, text))
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_missing_space_file(tmp_path):
    with pytest.raises(ConfigError, match="search-space file not found"):
        load_space(tmp_path / "nope.yaml")


def test_trial_config_applies_the_sampled_values():
    base = load_config(CONFIGS / "cnn_2d_mitdb.yaml")
    values = {
        "optim.lr": 2e-4,
        "optim.scheduler": "onecycle",
        "trainer.class_weights": "sqrt_inverse",
        "model.params.dropout": 0.05,
        "augment.shift": 2,
    }
    config = trial_config(base, values)
    assert config.optim.lr == 2e-4 and config.optim.scheduler == "onecycle"
    assert config.trainer.class_weights == "sqrt_inverse" and config.augment.shift == 2
    assert config.model.params == {"dropout": 0.05}
    assert config.optim.name == base.optim.name and config.data == base.data
    assert base.model.params == {"dropout": 0.2}  # the base is not changed


# --------------------------------------------------------------------------- pruning


class FakeTrial:
    def __init__(self, prune: bool):
        self.prune = prune
        self.reports: list[tuple[int, float]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return self.prune


def fake_trainer(value: float, epoch: int = 0, sanity: bool = False) -> SimpleNamespace:
    return SimpleNamespace(
        sanity_checking=sanity,
        callback_metrics={"val_macro_f1": torch.tensor(value)},
        current_epoch=epoch,
    )


def test_pruning_callback_reports_every_validation_pass_and_prunes_when_told():
    keep = FakeTrial(prune=False)
    callback = PruningCallback(keep, "val_macro_f1")
    callback.on_validation_end(fake_trainer(0.9, sanity=True), None)  # sanity check: ignored
    callback.on_validation_end(fake_trainer(0.5, epoch=0), None)
    callback.on_validation_end(fake_trainer(0.25, epoch=0), None)  # val_per_epoch 2: own step
    assert keep.reports == [(0, 0.5), (1, 0.25)] and callback.epochs == 1

    prune = FakeTrial(prune=True)
    with pytest.raises(optuna.TrialPruned, match="validation pass 1"):
        PruningCallback(prune, "val_macro_f1").on_validation_end(fake_trainer(0.5), None)
    assert prune.reports == [(0, 0.5)]


def test_pruning_callback_refuses_a_metric_that_was_not_logged():
    trainer = SimpleNamespace(sanity_checking=False, callback_metrics={}, current_epoch=0)
    with pytest.raises(RuntimeError, match="val_macro_f1 was not logged"):
        PruningCallback(FakeTrial(prune=False), "val_macro_f1").on_validation_end(trainer, None)


def test_median_pruner_stops_a_trial_below_the_earlier_ones():
    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0),
    )
    lr = optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    study.add_trial(
        optuna.trial.create_trial(
            params={"optim.lr": 1e-3},
            distributions={"optim.lr": lr},
            value=0.9,
            intermediate_values={0: 0.9},
        )
    )
    good = study.ask()
    PruningCallback(good, "val_macro_f1").on_validation_end(fake_trainer(0.95), None)
    bad = study.ask()
    with pytest.raises(optuna.TrialPruned):
        PruningCallback(bad, "val_macro_f1").on_validation_end(fake_trainer(0.1), None)


# --------------------------------------------------------------------------- results files


def synthetic_study(values: list[float | None]) -> optuna.Study:
    """A study of finished trials (None: pruned) over optim.lr and trainer.class_weights."""
    study = optuna.create_study(direction="maximize")
    distributions = {
        "optim.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
        "trainer.class_weights": optuna.distributions.CategoricalDistribution(["none", "balanced"]),
    }
    for i, value in enumerate(values):
        params = {"optim.lr": 1e-4 * (i + 1), "trainer.class_weights": ["none", "balanced"][i % 2]}
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=distributions,
                value=value,
                state=optuna.trial.TrialState.COMPLETE
                if value is not None
                else optuna.trial.TrialState.PRUNED,
                intermediate_values={0: 0.1 if value is None else value},
                user_attrs={"epochs": 1 if value is None else 3},
            )
        )
    return study


SMALL_SPACE = """
params:
  optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
  trainer.class_weights: {type: categorical, choices: [none, balanced]}
"""


def test_results_files_of_a_study(tmp_path):
    space = load_space(write(tmp_path, SMALL_SPACE))
    base = load_config(KACHUEE)
    study = synthetic_study([0.6, None, 0.8, 0.7, 0.3])
    result = write_results(study, space, base, tmp_path, ["ecgfusion tune x --trials 5"])

    rows = list(csv.DictReader((tmp_path / TRIALS_CSV).open()))
    assert [r["trial"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert [r["state"] for r in rows] == ["COMPLETE", "PRUNED", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert set(rows[0]) == {
        "trial",
        "state",
        "val_macro_f1",
        "optim.lr",
        "trainer.class_weights",
        "epochs",
        "seconds",
    }
    assert float(rows[2]["val_macro_f1"]) == 0.8 and rows[1]["epochs"] == "1"

    assert result["best"] == {
        "trial": 2,
        "value": 0.8,
        "params": {"optim.lr": pytest.approx(3e-4), "trainer.class_weights": "none"},
    }
    best = load_config(tmp_path / BEST_FILE)  # a config `ecgfusion train` accepts
    assert best.optim.lr == pytest.approx(3e-4) and best.trainer.class_weights == "none"
    assert best.model == base.model and best.data == base.data

    assert (tmp_path / IMPORTANCE_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(result["importance"]) == {"optim.lr", "trainer.class_weights"}
    assert sum(result["importance"].values()) == pytest.approx(1.0)
    md = (tmp_path / TRIALS_MD).read_text()
    assert "4 complete, 1 pruned, 0 failed" in md and "Best: trial 2" in md
    assert "| 2 | COMPLETE | 0.8000 |" in md and "ecgfusion tune x --trials 5" in md


def test_no_importance_plot_from_a_single_complete_trial(tmp_path):
    space = load_space(write(tmp_path, SMALL_SPACE))
    result = write_results(synthetic_study([0.5, None]), space, load_config(KACHUEE), tmp_path, [])
    assert result["importance"] is None and not (tmp_path / IMPORTANCE_FILE).exists()
    assert "no parameter importance" in (tmp_path / TRIALS_MD).read_text()
    assert (tmp_path / BEST_FILE).is_file()


def test_no_best_yaml_without_a_complete_trial(tmp_path):
    space = load_space(write(tmp_path, SMALL_SPACE))
    result = write_results(synthetic_study([None]), space, load_config(KACHUEE), tmp_path, [])
    assert result["best"] is None and not (tmp_path / BEST_FILE).exists()
    assert "No trial completed yet" in (tmp_path / TRIALS_MD).read_text()


def test_a_folder_that_is_not_a_study_is_refused(tmp_path):
    space, base = load_space(write(tmp_path, SMALL_SPACE)), load_config(KACHUEE)
    assert check_run_dir(tmp_path / "new", base, space) is False
    other = tmp_path / "other"
    other.mkdir()
    (other / "metrics.json").write_text("{}")
    with pytest.raises(ConfigError, match="not a study folder"):
        check_run_dir(other, base, space)


# --------------------------------------------------------------------------- the command


@pytest.fixture
def no_training(monkeypatch):
    """Bad input must fail before any beat is loaded or any trial trained."""

    def forbidden(*args, **kwargs):
        raise AssertionError("bad input reached data loading or training")

    monkeypatch.setattr("ecgfusion.training.datamodule.load_config_beats", forbidden)
    monkeypatch.setattr("ecgfusion.training.trainer.fit_validation", forbidden)


def cli_error(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("space_text", "extra", "expected"),
    [
        (SMALL_SPACE, ["--trials", "0"], "--trials must be at least 1"),
        (SMALL_SPACE, ["--trials", "3", "--timeout", "0"], "--timeout must be a positive"),
        (SMALL_SPACE, ["--trials", "3", "--set", "optim.lrr=1"], "unknown key optim.lrr"),
        (
            "params: {trainer.bach_size: {type: int, low: 16, high: 64}}",
            ["--trials", "3"],
            "trainer.bach_size: unknown key",
        ),
        (
            "params: {model.params.dense: {type: int, low: 16, high: 64}}",
            ["--trials", "3"],
            "architecture",
        ),
        ("params: {optim.lr: [", ["--trials", "3"], "not valid YAML"),
    ],
)
def test_bad_input_is_one_error_line_and_writes_nothing(
    tmp_path, capsys, no_training, space_text, extra, expected
):
    space = write(tmp_path, space_text)
    run_dir = tmp_path / "study"
    line = cli_error(["tune", KACHUEE, "--space", space, "--run-dir", run_dir, *extra], capsys)
    assert expected in line
    assert not run_dir.exists()


def test_missing_files_are_one_error_line(tmp_path, capsys, no_training):
    space = write(tmp_path, SMALL_SPACE)
    args = ["--trials", "2", "--run-dir", tmp_path / "study"]
    assert "config file not found" in cli_error(
        ["tune", tmp_path / "no.yaml", "--space", space, *args], capsys
    )
    assert "search-space file not found" in cli_error(
        ["tune", KACHUEE, "--space", tmp_path / "no.yaml", *args], capsys
    )
    assert "give a search space" in cli_error(["tune", KACHUEE, *args], capsys)
    assert "--trials N" in cli_error(["tune", KACHUEE, "--space", space], capsys)
    assert not (tmp_path / "study").exists()


def test_a_study_of_multi_seed_or_record_configs_is_refused(tmp_path, capsys, no_training):
    space = write(tmp_path, SMALL_SPACE)
    seeds = yaml.safe_load(KACHUEE.read_text()) | {"seeds": [0, 1]}
    config = write(tmp_path, yaml.safe_dump(seeds), "seeds.yaml")
    args = ["--space", space, "--trials", "2", "--run-dir", tmp_path / "study"]
    assert "remove seeds" in cli_error(["tune", config, *args], capsys)
    records = CONFIGS / "multimodal_ptbxl.yaml"
    assert load_config(records).data.dataset == "ptbxl"
    assert "record dataset" in cli_error(["tune", records, *args], capsys)
    assert not (tmp_path / "study").exists()


def test_tune_is_a_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["tune", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--space" in out and "--trials" in out and "--timeout" in out
