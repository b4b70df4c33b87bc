"""Train, resume, evaluate and refuse bad input on real MIT-BIH beats (records 100, 119, 208, 232).

To stay within seconds on 2 cores the runs use 1,200 of the ~9,000 beats of those records
(data.max_beats), 1-2 epochs, batch 64, and small models: the 1D CNN-Transformer with 32 channels,
one layer and 4 heads, the 2D CNN with base width 4 on 64x64 images. The shipped configs keep the
paper's sizes; only these test configs shrink them.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from cli_runner import run_cli
from lightning.pytorch.callbacks import Callback

from ecgfusion.cli import main
from ecgfusion.evaluation.plots import epoch_history
from ecgfusion.models import fusion as fusion_module
from ecgfusion.models import load_model
from ecgfusion.models.fusion import FusionModel
from ecgfusion.training.config import validate_config
from ecgfusion.training.trainer import evaluate, train

pytestmark = pytest.mark.acceptance

RECORDS = ["100", "119", "208", "232"]
SMALL = {
    "cnn_transformer_1d": {"channels": 32, "n_layers": 1, "n_heads": 4, "dim_feedforward": 32},
    "cnn_2d": {"filters": 4, "image_size": 64},
}


@pytest.fixture(scope="module")
def data_section(mitdb_dir, session_cache):
    return {
        "dataset": "mitdb",
        "records": RECORDS,
        "max_beats": 1200,
        "data_root": str(mitdb_dir.parent),
        "cache_dir": str(session_cache),
    }


def write_config(path, data_section, name, params=None, epochs=1, **extra):
    raw = {
        "data": data_section,
        "model": {"name": name, "params": params if params is not None else SMALL.get(name, {})},
        "optim": {"name": "adamax", "lr": 1e-3},
        # one thread: on a machine shared by several test processes, two threads per process
        # oversubscribe the cores and run many times slower
        "trainer": {"max_epochs": epochs, "batch_size": 64, "eval_batch_size": 256,
                    "num_threads": 1},
    }
    for key, value in extra.items():
        if isinstance(value, dict):
            raw.setdefault(key, {}).update(value)
        else:
            raw[key] = value
    path.write_text(yaml.safe_dump(raw))
    return path


def cli_error(args, capsys) -> str:
    code, _, err = run_cli(args, capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def backbones(tmp_path_factory, data_section):
    """One-epoch runs of the two backbones through the CLI, reused by the fusion tests."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for model in ("cnn_transformer_1d", "cnn_2d"):
        config = write_config(root / f"{model}.yaml", data_section, model)
        with pytest.raises(SystemExit) as info:
            main(["train", str(config), "--run-dir", str(root / model)])
        assert info.value.code == 0
        out[model] = root / model
    return out


def test_backbone_runs_write_the_run_folder(backbones):
    for model, run in backbones.items():
        for name in ("config.yaml", "metrics.json", "report.md", "model.pt",
                     "learning_curves.png", "confusion_matrix.png",
                     "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
            assert (run / name).is_file(), f"{model}: {name}"
        result = json.loads((run / "metrics.json").read_text())
        assert result["data"]["intra_patient"] is True
        assert sum(sum(c.values()) for c in result["data"]["counts"].values()) == 1200
        m = result["metrics"]
        assert m["n"] == sum(result["data"]["counts"]["test"].values())
        assert sum(map(sum, m["confusion_matrix"])) == m["n"]
        assert 0.0 <= m["accuracy"] <= 1.0 and set(m["aami"]) >= {"sveb_sensitivity", "veb_ppv"}
        assert result["timing"]["epochs_trained"] == 1 and result["timing"]["train_seconds"] > 0
        assert result["timing"]["test_samples_per_second"] > 0
        report = (run / "report.md").read_text()
        assert "INTRA-patient" in report and "## Confusion matrix" in report
        assert load_model(run / "model.pt").spec["name"] == model


def test_fusion_trains_head_on_frozen_backbones(backbones, tmp_path, data_section, capsys):
    backbone_section = {"backbone_1d": str(backbones["cnn_transformer_1d"]),
                        "backbone_2d": str(backbones["cnn_2d"])}
    reference = load_model(backbones["cnn_transformer_1d"] / "model.pt").state_dict()
    for model, params in (("late_fusion", {}), ("intermediate_fusion", {"mode": "weighted_sum"})):
        config = write_config(tmp_path / f"{model}.yaml", data_section, model, params,
                              model={"backbones": backbone_section})
        code, out, err = run_cli(["train", str(config), "--run-dir", str(tmp_path / model)], capsys)
        assert code == 0, err
        fused = load_model(tmp_path / model / "model.pt")
        assert fused.spec["name"] == model
        # frozen: the 1D backbone inside the fusion is exactly the trained backbone
        for key, value in fused.backbone_1d.state_dict().items():
            assert torch.equal(value, reference[key]), key


def test_joint_fusion_warm_starts_from_the_frozen_stage(backbones, tmp_path, data_section, capsys):
    """Phase 1 trains the head on frozen backbones; phase 2 starts from phase 1's weights
    (model.init_from) and updates the backbones too, at backbone_lr_scale x the head's lr."""
    from ecgfusion.training.config import load_config
    from ecgfusion.training.tasks.beat_classification import build_datamodule
    from ecgfusion.training.tasks.beat_models import build_model

    backbone_section = {"backbone_1d": str(backbones["cnn_transformer_1d"]),
                        "backbone_2d": str(backbones["cnn_2d"])}
    reference = load_model(backbones["cnn_transformer_1d"] / "model.pt").state_dict()
    frozen_cfg = write_config(tmp_path / "frozen.yaml", data_section, "late_fusion", {},
                              model={"backbones": backbone_section})
    args = ["train", str(frozen_cfg), "--run-dir", str(tmp_path / "frozen")]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    phase1 = load_model(tmp_path / "frozen" / "model.pt")
    for key, value in phase1.backbone_1d.state_dict().items():  # phase 1: backbones untouched
        assert torch.equal(value, reference[key]), key
    joint_cfg = write_config(
        tmp_path / "joint.yaml", data_section, "late_fusion", {"freeze": False},
        model={"backbones": backbone_section, "init_from": str(tmp_path / "frozen")},
        optim={"backbone_lr_scale": 0.1},
    )
    # the joint model starts exactly where phase 1 ended (head included)
    config = load_config(joint_cfg)
    start = build_model(config, build_datamodule(config))
    for key, value in phase1.state_dict().items():
        assert torch.equal(start.state_dict()[key], value), key
    code, _, err = run_cli(["train", str(joint_cfg), "--run-dir", str(tmp_path / "joint")], capsys)
    assert code == 0, err
    phase2 = load_model(tmp_path / "joint" / "model.pt")
    changed = [k for k, v in phase2.backbone_1d.state_dict().items()
               if not torch.equal(v, reference[k])]
    assert changed, "phase 2 must update the backbones"
    # init_from of another model is refused in one line, before training
    bad = write_config(tmp_path / "bad.yaml", data_section, "late_fusion", {"freeze": False},
                       model={"backbones": backbone_section,
                              "init_from": str(backbones["cnn_2d"])})
    line = cli_error(["train", str(bad), "--run-dir", str(tmp_path / "bad")], capsys)
    assert "model.init_from" in line and "cnn_2d" in line


def test_evaluate_reproduces_metrics_json(backbones, capsys):
    run = backbones["cnn_2d"]
    before = (run / "metrics.json").read_bytes()
    code, out, err = run_cli(["evaluate", str(run)], capsys)
    assert code == 0, err
    assert "reproduces metrics.json exactly" in out
    assert (run / "metrics.json").read_bytes() == before


def test_same_config_and_seed_give_the_same_metrics(backbones, tmp_path):
    run = backbones["cnn_transformer_1d"]
    config = validate_config(yaml.safe_load((run / "config.yaml").read_text()))
    again = train(config, tmp_path / "again")
    assert again["metrics"] == json.loads((run / "metrics.json").read_text())["metrics"]


class KillInEpoch(Callback):
    """Stands in for a kill: raises in the middle of a given epoch, after a few batches."""

    def __init__(self, epoch: int, batches: int):
        self.epoch, self.batches = epoch, batches

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx + 1 == self.batches:
            raise RuntimeError("simulated kill")


def test_resume_after_a_kill_mid_epoch(tmp_path, data_section, capsys):
    # Noam steps per batch: its state must come back with the checkpoint too.
    noam = {"name": "adam", "lr": 0.5, "scheduler": "noam", "warmup": 20, "d_model": 32}
    config_file = write_config(
        tmp_path / "c.yaml", data_section, "cnn_transformer_1d", epochs=2, optim=noam
    )
    config = validate_config(yaml.safe_load(config_file.read_text()))
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(config, run, callbacks=[KillInEpoch(epoch=1, batches=3)])
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == 0  # end of the first epoch
    assert not (run / "metrics.json").exists()

    code, out, err = run_cli(["train", "--resume", str(run)], capsys)
    assert code == 0, err
    result = json.loads((run / "metrics.json").read_text())
    assert result["timing"]["epochs_trained"] == 2 and result["timing"]["resumed"] is True
    final = torch.load(last, weights_only=False)
    assert final["epoch"] == 1
    # optimiser steps of two full epochs, and the Noam schedule went on from where it stopped
    steps_per_epoch = -(-sum(result["data"]["counts"]["train"].values()) // 64)
    assert final["global_step"] == 2 * steps_per_epoch
    assert final["lr_schedulers"][0]["last_epoch"] == 2 * steps_per_epoch
    history = epoch_history(run / "logs")
    assert history.index.tolist() == [0, 1]  # the cut epoch was rerun, not counted twice
    assert history[["train_loss", "val_loss", "val_acc"]].notna().all().all()
    # a finished run resumed again is left as it is
    before = (run / "metrics.json").read_bytes()
    assert run_cli(["train", "--resume", str(run)], capsys)[0] == 0
    assert (run / "metrics.json").read_bytes() == before


def test_repeated_seeds_write_summary(tmp_path, data_section, capsys):
    config = write_config(
        tmp_path / "c.yaml", data_section, "cnn_2d",
        optim={"name": "adamw", "scheduler": "cosine"},
        trainer={"early_stopping": {"patience": 1, "monitor": "val_loss"}},
    )
    code, out, err = run_cli(
        ["train", str(config), "--runs", "2", "--run-dir", str(tmp_path / "r")], capsys
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["seeds"] == [0, 1]
    for seed in (0, 1):
        assert (tmp_path / "r" / f"seed_{seed}" / "metrics.json").is_file()
    per_seed = [summary["per_seed"][str(s)]["accuracy"] for s in (0, 1)]
    assert summary["metrics"]["accuracy"]["mean"] == pytest.approx(sum(per_seed) / 2)
    assert "±" in (tmp_path / "r" / "summary.md").read_text()
    code, out, err = run_cli(["evaluate", str(tmp_path / "r")], capsys)
    assert code == 0 and out.count("reproduces metrics.json exactly") == 2, err


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_bad_inputs_fail_in_one_line_and_overwrite_nothing(
    backbones, tmp_path, data_section, capsys
):
    run_1d, run_2d = backbones["cnn_transformer_1d"], backbones["cnn_2d"]
    # a run folder that does not exist
    assert "does not exist" in cli_error(["evaluate", str(tmp_path / "nope")], capsys)
    assert "does not exist" in cli_error(["train", "--resume", str(tmp_path / "nope")], capsys)

    # a checkpoint of another model in the run folder
    mixed = tmp_path / "mixed"
    shutil.copytree(run_1d, mixed)
    shutil.copy(run_2d / "checkpoints" / "last.ckpt", mixed / "checkpoints" / "last.ckpt")
    before = snapshot(mixed)
    line = cli_error(["train", "--resume", str(mixed), "--set", "trainer.max_epochs=2"], capsys)
    assert "holds model 'cnn_2d'" in line and "cnn_transformer_1d" in line
    assert snapshot(mixed) == before
    shutil.copy(run_2d / "model.pt", mixed / "model.pt")
    before = snapshot(mixed)
    assert "holds model 'cnn_2d'" in cli_error(["evaluate", str(mixed)], capsys)
    assert snapshot(mixed) == before

    # a corrupt checkpoint
    (mixed / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    before = snapshot(mixed)
    line = cli_error(["train", "--resume", str(mixed), "--set", "trainer.max_epochs=2"], capsys)
    assert "cannot be read" in line
    assert snapshot(mixed) == before

    # a config whose class count does not match the data: no run folder is made
    params = {**SMALL["cnn_transformer_1d"], "n_classes": 3}
    config = write_config(tmp_path / "c3.yaml", data_section, "cnn_transformer_1d", params)
    line = cli_error(["train", str(config), "--run-dir", str(tmp_path / "c3")], capsys)
    assert "model.params.n_classes=3" in line and "5 classes" in line
    assert not (tmp_path / "c3").exists()

    # a run's model used on beats of another length (centered beats are 87 samples, not 187)
    other = tmp_path / "other"
    shutil.copytree(run_1d, other)
    config_text = (other / "config.yaml").read_text()
    (other / "config.yaml").write_text(config_text.replace("method: kachuee", "method: centered"))
    line = cli_error(["evaluate", str(other)], capsys)
    assert "does not fit" in line and "n_samples 187 (data: 87)" in line

    # a frozen fusion without trained backbones would train a head on random features
    config = write_config(tmp_path / "lf.yaml", data_section, "late_fusion", {})
    line = cli_error(["train", str(config), "--run-dir", str(tmp_path / "lf")], capsys)
    assert "model.backbones" in line and not (tmp_path / "lf").exists()

    # a new run into a finished run's folder
    before = snapshot(run_1d)
    config = write_config(tmp_path / "ok.yaml", data_section, "cnn_transformer_1d")
    assert "not empty" in cli_error(["train", str(config), "--run-dir", str(run_1d)], capsys)
    assert snapshot(run_1d) == before

    # a bad config file: exit 2 before any work
    bad = tmp_path / "bad.yaml"
    bad.write_text(config.read_text().replace("adamax", "adamz"))
    assert "optim.name" in cli_error(["train", str(bad), "--run-dir", str(tmp_path / "b")], capsys)
    assert not (tmp_path / "b").exists()


def test_cached_backbone_outputs_give_the_same_run_as_running_the_backbones(
    backbones, tmp_path, data_section, monkeypatch
):
    """trainer.cache_backbones (the default) trains the head on outputs computed once; the
    metrics must be those of running the frozen backbones every step, for the same seed."""
    backbone_section = {"backbone_1d": str(backbones["cnn_transformer_1d"]),
                        "backbone_2d": str(backbones["cnn_2d"])}
    results, calls = {}, []
    original = FusionModel.cache_backbone_outputs

    def counting(self, x, batch_size=1024):
        calls.append(len(x))
        return original(self, x, batch_size)

    monkeypatch.setattr(FusionModel, "cache_backbone_outputs", counting)
    # earlier tests trained fusions on these backbones: start from an empty output memo
    monkeypatch.setattr(fusion_module, "_OUTPUT_MEMO", {})
    for cache in (True, False):
        config = write_config(tmp_path / f"lf_{cache}.yaml", data_section, "intermediate_fusion",
                              {"mode": "concat"}, epochs=2, model={"backbones": backbone_section},
                              trainer={"cache_backbones": cache})
        results[cache] = train(validate_config(yaml.safe_load(config.read_text())),
                               tmp_path / f"lf_{cache}")
    cached, direct = results[True], results[False]
    assert len(calls) == 3  # train, val and test parts, once, only in the cached run
    assert cached["timing"]["test_backbones_reused"] is False
    assert cached["run"]["best_epoch"] == direct["run"]["best_epoch"]
    assert cached["run"]["best_val_macro_f1"] == pytest.approx(direct["run"]["best_val_macro_f1"],
                                                               abs=1e-6)
    assert cached["metrics"]["confusion_matrix"] == direct["metrics"]["confusion_matrix"]
    for key in ("accuracy", "macro_f1", "mcc"):
        assert cached["metrics"][key] == pytest.approx(direct["metrics"][key], abs=1e-6)
    history = {c: epoch_history(tmp_path / f"lf_{c}" / "logs") for c in (True, False)}
    assert len(history[True]) == len(history[False]) == 2
    for column in ("train_loss", "val_loss"):
        assert history[True][column].to_numpy() == pytest.approx(
            history[False][column].to_numpy(), abs=1e-5)
    # A second stage on the same backbones reuses their test outputs, with the same metrics,
    # and `evaluate` (model.pt on the beats) reproduces the stored metrics exactly.
    again = train(validate_config(yaml.safe_load((tmp_path / "lf_True.yaml").read_text())),
                  tmp_path / "lf_again")
    assert again["timing"]["test_backbones_reused"] is True
    assert again["metrics"]["confusion_matrix"] == cached["metrics"]["confusion_matrix"]
    assert evaluate(tmp_path / "lf_True")["reproduced"] is True


def test_train_and_val_caps_thin_only_their_part(mitdb_beats):
    """max_train_beats / max_val_beats draw from their own part; the test part stays whole."""
    from ecgfusion.training.config import BeatDataConfig
    from ecgfusion.training.datamodule import prepare_split

    whole = prepare_split(BeatDataConfig(dataset="mitdb"), mitdb_beats).index
    capped = prepare_split(
        BeatDataConfig(dataset="mitdb", max_train_beats=500, max_val_beats=300), mitdb_beats
    ).index
    assert len(capped["train"]) == 500 and len(capped["val"]) == 300
    assert set(capped["train"]) <= set(whole["train"])
    assert set(capped["val"]) <= set(whole["val"])
    np.testing.assert_array_equal(capped["test"], whole["test"])
