"""Run configs: good files load, every mistake is one ConfigError line naming the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecgfusion.errors import ConfigError
from ecgfusion.schema import parse_yaml
from ecgfusion.training.config import (
    RunConfig,
    known_datasets,
    load_config,
    save_config,
)

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))

GOOD = """
data: {dataset: mitdb, records: [100, "119"], max_train_beats: 300}
model: {name: cnn_2d, params: {dropout: 2e-1}}
optim: {name: adamax, lr: 1e-3, weight_decay: 1e-5}
trainer: {max_epochs: 2, precision: 32, early_stopping: {patience: 3}}
"""


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_are_valid(path):
    dataset = parse_yaml(path.read_text(), str(path))["data"]["dataset"]
    if dataset not in known_datasets():
        pytest.skip(f"dataset {dataset!r} is not registered in ecgfusion.data.registry yet")
    config = load_config(path)
    assert config.model.name and config.trainer.max_epochs >= 1


def test_shipped_configs_cover_every_model_and_dataset():
    names = {p.stem for p in CONFIGS}
    for suffix in ("mitdb", "ptbxl"):
        for model in ("cnn_transformer_1d", "cnn_2d", "late_fusion", "intermediate_concat",
                      "intermediate_sum", "intermediate_weighted_sum"):
            assert f"{model}_{suffix}" in names


def test_good_file_types_and_defaults(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.data.records == ["100", "119"]  # YAML ints become record names
    assert config.model.params == {"dropout": 0.2}  # 2e-1 is a float, not the string "2e-1"
    assert config.optim.lr == pytest.approx(1e-3) and config.optim.weight_decay == 1e-5
    assert config.trainer.precision == "32"
    assert config.trainer.early_stopping.monitor == "val_macro_f1"
    assert config.trainer.deterministic and config.trainer.class_weights


def test_saved_config_reads_back_equal(tmp_path):
    config = load_config(write(tmp_path, GOOD), ["optim.lr=0.01", "seeds=[1, 2]"])
    saved = save_config(config, tmp_path / "run")
    assert load_config(saved) == config
    assert not list((tmp_path / "run").glob("*.tmp"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # unknown key, nested: path and the keys allowed there
        (GOOD.replace("lr: 1e-3", "lrate: 1e-3"), ["optim.lrate", "unknown key", "weight_decay"]),
        # unknown top-level section
        (GOOD + "optimiser: {}\n", ["optimiser", "unknown key", "trainer"]),
        # wrong type
        (GOOD.replace("max_epochs: 2", "max_epochs: ten"), ["trainer.max_epochs", "integer"]),
        (GOOD.replace("[100, \"119\"]", "100"), ["data.records", "list"]),
        # impossible values
        (GOOD.replace("lr: 1e-3", "lr: 0"), ["optim.lr", "greater than 0"]),
        (
            GOOD.replace("max_epochs: 2", "max_epochs: 0"),
            ["trainer.max_epochs", "greater than or equal to 1"],
        ),
        (GOOD.replace("weight_decay: 1e-5", "weight_decay: -1"), ["optim.weight_decay"]),
        # a value outside a closed set names the allowed ones
        (GOOD.replace("adamax", "rmsprop"), ["optim.name", "'adam', 'adamw', 'adamax' or 'sgd'"]),
        (GOOD.replace("precision: 32", "precision: 16"), ["trainer.precision", "'bf16-mixed'"]),
        (GOOD.replace("dataset: mitdb", "dataset: nope"), ["data.dataset", "'mitdb'"]),
        (GOOD.replace("patience: 3", "patience: 3, monitor: acc"), ["early_stopping.monitor"]),
        # a required section is missing
        (GOOD.replace("model: {name: cnn_2d, params: {dropout: 2e-1}}", ""), ["model", "missing"]),
        # keys that come from the data or model.backbones
        (GOOD.replace("dropout: 2e-1", "n_samples: 100"), ["model.params", "n_samples"]),
    ],
)
def test_bad_file_names_key_path(tmp_path, text, expected):
    path = write(tmp_path, text)
    message = error_of(path)
    assert str(path) in message
    for part in expected:
        assert part in message, message


def test_not_yaml_and_not_a_mapping(tmp_path):
    assert "not valid YAML at line 2" in error_of(write(tmp_path, "data: {\nmodel: [", "a.yaml"))
    assert "mapping" in error_of(write(tmp_path, "- 1\n- 2\n", "b.yaml"))
    assert "not found" in error_of(tmp_path / "missing.yaml")


def test_overrides(tmp_path):
    path = write(tmp_path, GOOD)
    config = load_config(
        path,
        ["optim.lr=3e-4", "model.params.n_layers=2", "data.records=[100, 101]",
         "trainer.early_stopping=null", "optim.scheduler=cosine"],
    )
    assert config.optim.lr == pytest.approx(3e-4)
    assert config.model.params == {"dropout": 0.2, "n_layers": 2}
    assert config.data.records == ["100", "101"]
    assert config.trainer.early_stopping is None and config.optim.scheduler == "cosine"
    # an override can create a section the file left to its default
    created = load_config(path, ["trainer.early_stopping.patience=9"])
    assert created.trainer.early_stopping.patience == 9


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("optim.lrr=1", ["optim.lrr", "allowed keys here", "weight_decay"]),
        ("nothing.at.all=1", ["nothing", "allowed keys here", "trainer"]),
        ("optim.lr.x=1", ["optim.lr is a value"]),
        ("optim.lr", ["KEY.PATH=VALUE"]),
        ("optim.lr=-1", ["optim.lr", "greater than 0"]),
        ("trainer.max_epochs=[1", ["not valid YAML"]),
    ],
)
def test_bad_overrides(tmp_path, override, expected):
    message = error_of(write(tmp_path, GOOD), [override])
    for part in expected:
        assert part in message, message


def test_with_seed_gives_single_seed_config(tmp_path):
    config = load_config(write(tmp_path, GOOD), ["seeds=[3, 4]"])
    one = config.with_seed(4)
    assert one.trainer.seed == 4 and one.seeds is None and config.seeds == [3, 4]
    with pytest.raises(ConfigError, match="seeds"):
        load_config(write(tmp_path, GOOD), ["seeds=[1, 1]"])
    assert isinstance(one, RunConfig)


def test_config_differences_leave_out_where_a_run_computes():
    from ecgfusion.training.config import RESUMABLE_KEYS, RUNTIME_KEYS, config_differences

    a = RunConfig.model_validate(parse_yaml(GOOD, "good"))
    b = a.model_copy(deep=True)
    b.data.cache_dir, b.trainer.num_threads = "/elsewhere", 2
    assert config_differences(a, b) == []
    b.optim.lr, b.trainer.max_epochs = a.optim.lr * 2, 7
    assert config_differences(a, b) == ["optim.lr", "trainer.max_epochs"]
    assert config_differences(a, b, RUNTIME_KEYS + RESUMABLE_KEYS) == ["optim.lr"]


def test_metrics_difference_tolerates_a_borderline_beat_only():
    from ecgfusion.training.scoring import METRICS_TOLERANCE, metrics_difference

    stored = {"accuracy": 0.98, "confusion_matrix": [[5000, 3], [2, 400]], "auroc": float("nan")}
    assert metrics_difference(stored, stored) == 0.0
    one_beat = {**stored, "accuracy": 0.9802, "confusion_matrix": [[4999, 4], [2, 400]]}
    assert 0 < metrics_difference(one_beat, stored) <= METRICS_TOLERANCE
    assert metrics_difference({**stored, "accuracy": 0.97}, stored) > METRICS_TOLERANCE
    assert metrics_difference({"accuracy": 0.98}, stored) == float("inf")


def test_config_differences_compare_paths_as_the_folders_they_name(tmp_path, monkeypatch):
    from ecgfusion.training.config import config_differences

    monkeypatch.chdir(tmp_path)
    a = RunConfig.model_validate(parse_yaml(GOOD, "good"))
    a.model.init_from = "runs/stage"
    b = a.model_copy(deep=True)
    b.model.init_from = str(tmp_path / "runs" / "stage")
    assert config_differences(a, b) == []
    b.model.init_from = str(tmp_path / "runs" / "other")
    assert config_differences(a, b) == ["model.init_from"]
