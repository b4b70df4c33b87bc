"""The convergence benchmark's pieces: time to a threshold, ratios and their bounds, the spacing
of validations, the curve recorder's clock, the run configs, and the plot / CSV output."""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace

import pytest

from ecgfusion.benchmarks import BENCHMARKS, convergence, convergence_curves
from ecgfusion.benchmarks.convergence import choose_val_per_epoch, run_config
from ecgfusion.benchmarks.convergence_curves import (
    CurveRecorder,
    first_reach,
    time_ratio,
    write_outputs,
)
from ecgfusion.errors import ConfigError
from ecgfusion.experiments.presets import load_preset


def curve(*points: tuple[float, float]) -> list[dict[str, float]]:
    """Points of (training seconds, val accuracy); wall = training + 1 s, epoch = seconds / 10,
    F1 = accuracy - 0.1."""
    return [
        {
            "train_s": t,
            "wall_s": t + 1,
            "epoch": t / 10,
            "step": int(t),
            "val_acc": a,
            "val_macro_f1": a - 0.1,
        }
        for t, a in points
    ]


SLOW = curve((10, 0.90), (20, 0.965), (30, 0.975), (40, 0.972), (50, 0.981))
FAST = curve((5, 0.95), (10, 0.971), (15, 0.985))
NEVER = curve((10, 0.80), (20, 0.90), (30, 0.96))


def test_first_reach_is_the_first_point_at_or_above_the_threshold():
    assert first_reach(SLOW, 0.97)["train_s"] == 30  # not 50, and a later dip does not matter
    assert first_reach(SLOW, 0.98)["train_s"] == 50
    assert first_reach(SLOW, 0.975)["train_s"] == 30  # >=, not >
    assert first_reach(SLOW, 0.99) is None
    assert first_reach([], 0.5) is None
    assert first_reach(SLOW, 0.87, key="val_macro_f1")["train_s"] == 30


def test_time_ratio_measured_and_bounds():
    assert time_ratio(SLOW, FAST, 0.97) == (pytest.approx(30 / 10), "measured")
    assert time_ratio(SLOW, FAST, 0.98) == (pytest.approx(50 / 15), "measured")
    assert time_ratio(SLOW, FAST, 0.98, time_key="epoch") == (pytest.approx(5.0 / 1.5), "measured")
    # the slow recipe never gets there: at least its last point's time over the fast one's
    assert time_ratio(NEVER, FAST, 0.97) == (pytest.approx(30 / 10), "lower bound")
    # the fast one never does: at most the slow time over the fast one's last point
    assert time_ratio(FAST, NEVER, 0.97) == (pytest.approx(10 / 30), "upper bound")
    assert time_ratio(NEVER, NEVER, 0.97) == (None, "not reached")
    assert time_ratio([], FAST, 0.97) == (None, "not reached")
    assert time_ratio(SLOW, [], 0.97) == (None, "not reached")


def test_validations_per_epoch_follow_the_rate_and_stay_within_one_per_batch():
    # 0.75 x 300 s x 500 beats/s / 70,000 beats = 1.6 epochs -> 7 validations per epoch
    assert choose_val_per_epoch(500, 70_000, 16, 300) == 7
    # 16 epochs in the budget: once per epoch is plenty
    assert choose_val_per_epoch(5_000, 70_000, 128, 300) == 1
    # 256 beats at batch 128: two batches, so at most two validations per epoch
    assert choose_val_per_epoch(10, 256, 128, 2.5) == 2
    assert choose_val_per_epoch(0.0, 256, 16, 2.5) == 16


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_curve_recorder_excludes_validation_time_and_skips_the_sanity_check(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(convergence_curves.time, "perf_counter", clock)
    trainer = SimpleNamespace(
        sanity_checking=True,
        callback_metrics={"val_acc": 0.1, "val_macro_f1": 0.1},
        global_step=0,
        num_training_batches=8,
    )
    rec = CurveRecorder()
    rec.on_validation_start(trainer, None)  # sanity check, before training starts
    rec.on_validation_end(trainer, None)
    trainer.sanity_checking = False
    rec.on_train_start(trainer, None)
    rec.on_train_batch_start(trainer, None, None, 0)
    clock.now += 4.0  # 4 s of training, 4 steps
    trainer.global_step = 4
    trainer.callback_metrics = {"val_acc": 0.5, "val_macro_f1": 0.4}
    rec.on_validation_start(trainer, None)
    clock.now += 3.0  # validation + checkpoint: a pause
    rec.on_validation_end(trainer, None)
    clock.now += 1.0  # still paused until the next batch starts
    rec.on_train_batch_start(trainer, None, None, 4)
    clock.now += 2.0
    trainer.global_step = 6
    trainer.callback_metrics = {"val_acc": 0.9, "val_macro_f1": 0.8}
    rec.on_validation_start(trainer, None)
    rec.on_validation_end(trainer, None)
    clock.now += 0.5
    rec.on_train_end(trainer, None)
    assert rec.points == [
        {
            "train_s": 4.0,
            "wall_s": 4.0,
            "epoch": 0.5,
            "step": 4,
            "val_acc": 0.5,
            "val_macro_f1": 0.4,
        },
        {
            "train_s": 6.0,
            "wall_s": 10.0,
            "epoch": 0.75,
            "step": 6,
            "val_acc": 0.9,
            "val_macro_f1": 0.8,
        },
    ]
    assert rec.train_s == pytest.approx(6.0) and rec.steps == 6 and rec.epochs == 0.75


@pytest.fixture
def cpu_like(tmp_path):
    path = tmp_path / "fast.yaml"
    path.write_text(
        "description: a test recipe\n"
        "stages:\n"
        "  1d: {trainer: {batch_size: 128, max_epochs: 12, precision: bf16-mixed,\n"
        "                 early_stopping: {patience: 3}}, optim: {warmup: 500},\n"
        "       model: {params: {dropout: 0.05}}}\n"
        "  2d: {trainer: {batch_size: 64, max_epochs: 8}, model: {params: {dropout: 0.3}}}\n"
        "  fusion: {trainer: {batch_size: 256}, optim: {lr: 0.05}}\n"
    )
    return load_preset(str(path))


def test_run_configs_keep_the_recipe_and_add_only_the_measuring_keys(cpu_like):
    one_d = run_config("1D", cpu_like, 300.0, 2, False, None, val_per_epoch=5)
    assert (one_d.model.name, one_d.trainer.batch_size, one_d.trainer.max_epochs) == (
        "cnn_transformer_1d",
        128,
        12,
    )  # the recipe's epochs: schedules are laid out over them
    assert (one_d.optim.warmup, one_d.trainer.precision) == (500, "bf16-mixed")
    assert one_d.trainer.max_time_s == 300.0 and one_d.trainer.val_per_epoch == 5
    assert one_d.trainer.early_stopping is None and one_d.trainer.num_threads == 2
    assert one_d.data.max_val_beats == 4000 and one_d.data.max_beats is None
    assert (one_d.data.dataset, one_d.data.protocol, one_d.trainer.seed) == (
        "mitdb",
        "beat-random",
        0,
    )
    two_d = run_config("2D", cpu_like, 300.0, 2, False, None)
    assert (two_d.model.name, two_d.trainer.batch_size) == ("cnn_2d", 64)
    tiny = run_config("2D", load_preset("paper"), 2.5, 1, True, None)
    assert tiny.data.max_beats == convergence.TINY_MAX_BEATS and tiny.data.max_val_beats is None
    assert (tiny.trainer.batch_size, tiny.optim.name) == (16, "adamax")  # Table II


def test_the_hybrid_is_a_from_scratch_late_fusion_on_the_1d_recipe(cpu_like):
    hybrid = run_config("hybrid", cpu_like, 300.0, 2, False, None)
    one_d = run_config("1D", cpu_like, 300.0, 2, False, None)
    assert hybrid.model.name == "late_fusion" and hybrid.model.backbones is None
    assert hybrid.model.init_from is None
    assert hybrid.model.params == {
        "freeze": False,
        "backbone_1d_params": {"dropout": 0.05},
        "backbone_2d_params": {"dropout": 0.3},
    }
    # the 1d section, not the fusion one (a head-on-frozen-backbones recipe)
    assert hybrid.optim == one_d.optim and hybrid.optim.lr != 0.05
    assert hybrid.trainer == one_d.trainer and hybrid.data == one_d.data
    paper = run_config("hybrid", load_preset("paper"), 300.0, 2, False, None)
    assert (paper.optim.name, paper.optim.scheduler, paper.trainer.batch_size) == (
        "adam",
        "noam",
        16,
    )


def test_a_missing_recipe_fails_before_any_work_naming_the_file():
    with pytest.raises(ConfigError, match=r"no_such_recipe\.yaml not found"):
        convergence.run(tiny=True, recipes=("paper", "no_such_recipe"))
    with pytest.raises(ConfigError, match="two recipes with different names"):
        convergence.run(tiny=True, recipes=("paper", "paper"))


def test_curves_csv_and_plot(tmp_path):
    curves = [
        {"model": m, "recipe": r, "points": c}
        for m, r, c in (
            ("1D", "paper", SLOW),
            ("1D", "cpu", FAST),
            ("2D", "paper", NEVER),
            ("2D", "cpu", []),
        )
    ]
    csv_path, png = write_outputs(curves, tmp_path / "out")
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert len(rows) == len(SLOW) + len(FAST) + len(NEVER)
    assert rows[0] == {
        "model": "1D",
        "recipe": "paper",
        "train_s": "10",
        "wall_s": "11",
        "epoch": "1.0",
        "step": "10",
        "val_acc": "0.9",
        "val_macro_f1": str(0.9 - 0.1),
    }
    assert png.name == "convergence.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_registered_after_train():
    names = list(BENCHMARKS)
    assert names.index("convergence") == names.index("train") + 1
