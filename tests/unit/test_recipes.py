"""Recipe options (issue 12): class-weight policies, schedules, augmentation, label smoothing,
fusion param groups and the Kachuee baseline, each on hand-checked numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ecgfusion.errors import ConfigError
from ecgfusion.training.augment import augment_beats, shift_beats
from ecgfusion.training.config import AugmentConfig, OptimConfig, TrainerConfig, validate_config
from ecgfusion.training.datamodule import SliceSampler, balanced_sample_weights, class_weights
from ecgfusion.training.schedulers import make_schedule, warmup_cosine_factor

LABELS = np.array([0] * 6 + [1] * 3 + [2])  # counts 6, 3, 1, 0 of n = 10 over C = 4


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("balanced", [10 / 24, 10 / 12, 10 / 4, 0.0]),
        ("sqrt_inverse", [math.sqrt(10 / 24), math.sqrt(10 / 12), math.sqrt(10 / 4), 0.0]),
        ("none", [1.0, 1.0, 1.0, 0.0]),
        ("sampler", [1.0, 1.0, 1.0, 0.0]),
    ],
)
def test_class_weight_policies(policy, expected):
    assert class_weights(LABELS, 4, policy).tolist() == pytest.approx(expected)


def test_old_boolean_class_weights_still_read():
    assert TrainerConfig(class_weights=True).class_weights == "balanced"
    assert TrainerConfig(class_weights=False).class_weights == "none"
    with pytest.raises(ValueError):
        TrainerConfig(class_weights="inverse")


def test_balanced_sampler_draws_each_class_about_equally():
    labels = torch.tensor([0] * 900 + [1] * 90 + [2] * 10)
    weights = balanced_sample_weights(labels, 3)
    assert weights[0] == pytest.approx(1 / 900) and weights[-1] == pytest.approx(1 / 10)
    sampler = SliceSampler(len(labels), 100, shuffle=True, seed=0, weights=weights)
    drawn = labels[torch.cat(list(sampler))]
    assert len(drawn) == len(labels)  # an epoch keeps its length
    counts = torch.bincount(drawn, minlength=3).double() / len(drawn)
    assert torch.allclose(counts, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.06)
    # seeded per epoch: the same epoch again is the same draw, the next one another
    assert torch.equal(torch.cat(list(sampler)), torch.cat(list(sampler)))
    sampler.set_epoch(1)
    assert not torch.equal(labels[torch.cat(list(sampler))], drawn)


def test_warmup_cosine_factor_by_hand():
    # 10 steps, 2 of warm-up: 0.5, 1.0, then cosine from 1 down to 0 at step 10
    assert warmup_cosine_factor(0, 10, 2) == pytest.approx(0.5)
    assert warmup_cosine_factor(1, 10, 2) == pytest.approx(1.0)
    assert warmup_cosine_factor(2, 10, 2) == pytest.approx(1.0)
    assert warmup_cosine_factor(6, 10, 2) == pytest.approx(0.5)  # half way through the cosine
    assert warmup_cosine_factor(10, 10, 2) == pytest.approx(0.0)


def _lrs(name: str, steps: int = 20, groups=(1.0,), **kw) -> list[list[float]]:
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in groups]
    optimizer = torch.optim.AdamW(params, lr=groups[0])
    scheduler = make_schedule(optimizer, name, total_steps=steps, **kw)
    seen = []
    for _ in range(steps):
        seen.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return seen


def test_each_schedule_shape():
    cos = [g[0] for g in _lrs("cosine")]
    assert cos[0] == pytest.approx(1.0) and cos[10] == pytest.approx(0.5)
    wc = [g[0] for g in _lrs("warmup_cosine", warmup_fraction=0.1)]
    assert wc[0] == pytest.approx(0.5) and max(wc) == pytest.approx(1.0) and wc[-1] < 0.01
    one = [g[0] for g in _lrs("onecycle", warmup_fraction=0.25)]
    peak = one.index(max(one))
    assert max(one) == pytest.approx(1.0, rel=1e-2) and 3 <= peak <= 6
    assert one[0] == pytest.approx(0.04) and one[-1] < 0.02  # lr / 25 up, then near 0
    noam = [g[0] for g in _lrs("noam", d_model=16, noam_warmup=5)]
    assert noam.index(max(noam)) == 4
    with pytest.raises(ConfigError, match="unknown schedule"):
        _lrs("linear")


def test_schedules_keep_each_param_groups_own_peak():
    # backbones at a tenth of the head's lr stay at a tenth all along
    for name in ("warmup_cosine", "onecycle", "cosine"):
        for backbone, head in _lrs(name, groups=(0.1, 1.0))[1:-1]:
            assert backbone == pytest.approx(head / 10)


def test_augment_shift_by_hand():
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    out = shift_beats(x, torch.tensor([1, -2]))
    assert out.tolist() == [[0.0, 1.0, 2.0, 3.0], [3.0, 4.0, 0.0, 0.0]]


def test_each_augmentation_alone():
    x = torch.linspace(0, 1, 187).repeat(64, 1)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    scaled = augment_beats(x, AugmentConfig(amplitude=0.1), gen())
    ratio = scaled[:, 1:] / x[:, 1:]
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-5)  # one factor a beat
    assert ratio.min() >= 0.9 - 1e-6 and ratio.max() <= 1.1 + 1e-6 and ratio.std() > 0.01
    lifted = augment_beats(x, AugmentConfig(offset=0.05), gen()) - x
    assert torch.allclose(lifted, lifted[:, :1].expand_as(lifted), atol=1e-6)
    assert lifted.abs().max() <= 0.05 + 1e-6 and lifted.std() > 0.005
    noisy = augment_beats(x, AugmentConfig(noise=0.01), gen()) - x
    assert 0.008 < noisy.std() < 0.012 and abs(noisy.mean()) < 0.002
    moved = augment_beats(x, AugmentConfig(shift=3), gen())
    step = 1 / 186
    first = moved[:, 5] - x[:, 5]  # x is a ramp: a shift by s changes it by -s * step
    assert set(torch.round(first / -step).int().tolist()) <= {-3, -2, -1, 0, 1, 2, 3}
    assert not AugmentConfig().active and augment_beats(x, AugmentConfig(), gen()) is not x
    assert torch.equal(x, torch.linspace(0, 1, 187).repeat(64, 1))  # input untouched


def test_label_smoothing_in_training_only():
    from ecgfusion.models import create_model
    from ecgfusion.training.module import BeatClassifier

    model = create_model("kachuee_cnn", n_classes=3, n_samples=187, sampling_rate=125.0)
    module = BeatClassifier(model, OptimConfig(), label_smoothing=0.1)
    scores = torch.tensor([[4.0, 0.0, 0.0]])
    y = torch.tensor([0])
    plain = torch.nn.functional.cross_entropy(scores, y)
    smoothed = torch.nn.functional.cross_entropy(scores, y, label_smoothing=0.1)
    module.train()
    assert module._loss(scores, y).item() == pytest.approx(smoothed.item())
    module.eval()  # validation loss stays the plain one, comparable across recipes
    assert module._loss(scores, y).item() == pytest.approx(plain.item())


def test_fusion_param_groups_scale_the_backbones():
    from ecgfusion.models import create_model
    from ecgfusion.training.module import param_groups

    fusion = create_model(
        "late_fusion", n_classes=5, n_samples=187, sampling_rate=125.0, freeze=False
    )
    groups = param_groups(fusion, OptimConfig(lr=1e-3, backbone_lr_scale=0.1))
    by_name = {g["name"]: g for g in groups}
    assert by_name["backbones"]["lr"] == pytest.approx(1e-4) and by_name["head"]["lr"] == 1e-3
    n_backbone = sum(p.numel() for p in by_name["backbones"]["params"])
    expected = sum(
        p.numel() for b in (fusion.backbone_1d, fusion.backbone_2d) for p in b.parameters()
    )
    assert n_backbone == expected
    assert len(param_groups(fusion, OptimConfig(lr=1e-3))) == 1  # scale 1: one group


def test_kachuee_cnn_shapes_and_size():
    from ecgfusion.models import create_model

    model = create_model("kachuee_cnn", n_classes=5, n_samples=187, sampling_rate=125.0)
    out = model(torch.zeros(3, 187))
    assert out.scores.shape == (3, 5) and out.features.shape == (3, 32)
    assert sum(p.numel() for p in model.parameters()) == 55_013
    with pytest.raises(ConfigError, match="long enough"):
        create_model("kachuee_cnn", n_classes=5, n_samples=40, sampling_rate=125.0)


def test_recipe_keys_are_validated():
    base = {"model": {"name": "cnn_2d"}}
    with pytest.raises(ConfigError, match="trainer.label_smoothing"):
        validate_config({**base, "trainer": {"label_smoothing": 0.7}})
    with pytest.raises(ConfigError, match="augment.shift"):
        validate_config({**base, "augment": {"shift": -1}})
    with pytest.raises(ConfigError, match="optim.scheduler"):
        validate_config({**base, "optim": {"scheduler": "linear"}})
    with pytest.raises(ConfigError, match="optim.backbone_lr_scale"):
        validate_config({**base, "optim": {"backbone_lr_scale": 0}})


def test_gradient_clipping_reaches_the_lightning_trainer(tmp_path):
    from ecgfusion.training.fit import make_trainer

    config = validate_config(
        {"model": {"name": "cnn_2d"}, "trainer": {"gradient_clip_val": 1.0, "val_per_epoch": 4}}
    )
    trainer, _ = make_trainer(config, tmp_path, [])
    assert trainer.gradient_clip_val == 1.0 and trainer.val_check_interval == 0.25
    with pytest.raises(ConfigError, match="trainer.gradient_clip_val"):
        validate_config({"model": {"name": "cnn_2d"}, "trainer": {"gradient_clip_val": 0}})
