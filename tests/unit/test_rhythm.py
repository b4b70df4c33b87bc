"""The rhythm branch and N-way fusion (issue 15): shapes, boundary errors, freezing, the cache,
checkpoints old and new, and named batches (synthetic tensors)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgfusion.errors import ConfigError, DataError, ShapeError
from ecgfusion.models import create_model, load_model, save_model
from ecgfusion.models.base import model_inputs

FS = 125.0
SMALL_1D = {"channels": 16, "n_layers": 1, "n_heads": 2, "dim_feedforward": 16}
SMALL_2D = {"filters": 4, "image_size": 32}
THREE = {"rhythm": True, "backbone_1d_params": SMALL_1D, "backbone_2d_params": SMALL_2D}
FUSIONS = [
    ("late_fusion", {}),
    ("intermediate_fusion", {"mode": "concat", "hidden": 8}),
    ("intermediate_fusion", {"mode": "sum", "hidden": 8}),
    ("intermediate_fusion", {"mode": "weighted_sum", "hidden": 8}),
]


def _model(name, **params):
    return create_model(name, n_classes=5, n_samples=187, sampling_rate=FS, **params)


def test_rhythm_mlp_reads_rr_features_only():
    model = _model("rhythm_mlp", hidden=16).eval()
    assert model.inputs == ("rr",) and model.input_shapes() == {"rr": ("B", 8)}
    out = model(torch.rand(4, 8))
    assert out.scores.shape == (4, 5) and out.features.shape == (4, 16) == (4, model.feature_dim)
    with pytest.raises(ShapeError, match=r"\[batch, 8\].*got \(4, 7\)"):
        model(torch.rand(4, 7))
    with pytest.raises(ShapeError, match="got \\(8,\\)"):
        model(torch.rand(8))
    with pytest.raises(ShapeError, match="floating-point"):
        model(torch.ones(2, 8, dtype=torch.int64))
    with pytest.raises(ConfigError, match="hidden and layers"):
        _model("rhythm_mlp", hidden=0)


@pytest.mark.parametrize(("name", "params"), FUSIONS)
def test_three_way_fusion_shapes_and_forward_is_fuse_of_branches(name, params):
    torch.manual_seed(0)
    model = _model(name, **THREE, **params).eval()
    assert model.inputs == ("x", "rr") and model.branch_keys[-1] == "backbone_rr"
    x, rr = torch.rand(3, 187), torch.rand(3, 8)
    out = model(x, rr)
    hidden = params.get("hidden")
    width = 3 * hidden if params.get("mode") == "concat" else hidden
    if name == "late_fusion":
        width = sum(b.feature_dim for b in model.branches)
    assert out.scores.shape == (3, 5) and out.features.shape == (3, width)
    outputs = model.backbone_outputs(x, rr)
    assert len(outputs) == 3
    torch.testing.assert_close(model.fuse(*outputs).scores, out.scores)
    packed = model.pack_outputs(*outputs)
    assert packed.shape == (3, model.packed_width)
    torch.testing.assert_close(model.fuse_packed(packed).scores, out.scores)
    cached = model.cache_backbone_outputs({"x": x, "rr": rr}, batch_size=2)
    torch.testing.assert_close(cached, packed)


def test_a_rhythm_fusion_needs_rr_of_the_same_beats():
    model = _model("late_fusion", **THREE).eval()
    with pytest.raises(ShapeError, match="needs each beat's RR features"):
        model(torch.rand(2, 187))
    with pytest.raises(ShapeError, match="x has 2 beats but rr has 3 rows"):
        model(torch.rand(2, 187), torch.rand(3, 8))
    with pytest.raises(ShapeError, match="expected 3 branch outputs"):
        model.fuse(*model.backbone_outputs(torch.rand(2, 187), torch.rand(2, 8))[:2])


def test_two_branch_checkpoint_names_are_unchanged():
    late = _model("late_fusion", backbone_1d_params=SMALL_1D, backbone_2d_params=SMALL_2D)
    assert late.inputs == ("x",) and not late.rhythm
    assert {"w1", "w2"} <= set(late.state_dict()) and "w3" not in late.state_dict()
    assert torch.equal(late.w1, torch.full((5,), 0.5))  # 1 / 2 branches, as always
    inter = _model(
        "intermediate_fusion", mode="weighted_sum", backbone_1d_params=SMALL_1D,
        backbone_2d_params=SMALL_2D,
    )  # fmt: skip
    keys = set(inter.state_dict())
    assert {"proj_1d.weight", "proj_2d.weight", "alpha"} <= keys and inter.alpha.shape == (2,)
    assert not any(k.startswith(("proj_rr", "backbone_rr")) for k in keys)
    three = _model("intermediate_fusion", mode="weighted_sum", **THREE)
    assert three.alpha.shape == (3,) and "proj_rr.weight" in three.state_dict()
    assert torch.equal(_model("late_fusion", **THREE).w3, torch.full((5,), 1 / 3))


@pytest.mark.parametrize(("name", "params"), FUSIONS[:2])
def test_three_way_fusion_saves_and_loads(name, params, tmp_path):
    model = _model(name, **THREE, **params).eval()
    save_model(model, tmp_path / "m.pt")
    back = load_model(tmp_path / "m.pt").eval()
    assert back.inputs == ("x", "rr") and back.spec == model.spec
    x, rr = torch.rand(4, 187), torch.rand(4, 8)
    torch.testing.assert_close(back(x, rr).scores, model(x, rr).scores, rtol=0, atol=0)


def test_frozen_branches_get_no_gradient_the_head_does():
    model = _model("intermediate_fusion", **THREE, hidden=8).train()
    assert all(not b.training for b in model.branches)
    model(torch.rand(4, 187), torch.rand(4, 8)).scores.sum().backward()
    for branch in model.branches:
        assert all(p.grad is None and not p.requires_grad for p in branch.parameters())
    assert model.proj_rr.weight.grad is not None and model.head.weight.grad is not None


def test_fusion_takes_trained_rhythm_model_and_checks_its_kind():
    rhythm = _model("rhythm_mlp", hidden=12)
    model = _model("late_fusion", backbone_rr=rhythm, backbone_1d_params=SMALL_1D)
    assert model.rhythm and model.backbone_rr is rhythm
    assert model.spec["kwargs"]["backbone_rr_params"] == {"hidden": 12}
    with pytest.raises(ConfigError, match="backbone_rr must be a 'rhythm_mlp' model"):
        _model("late_fusion", backbone_rr=_model("kachuee_cnn"))


def test_model_inputs_picks_what_the_model_reads():
    batch = {"x": torch.rand(2, 187), "rr": torch.rand(2, 8)}
    assert list(model_inputs(_model("kachuee_cnn"), batch)) == ["x"]
    assert list(model_inputs(_model("rhythm_mlp"), batch)) == ["rr"]
    with pytest.raises(ShapeError, match="reads rr but got x"):
        model_inputs(_model("rhythm_mlp"), {"x": batch["x"]})


def _beats(with_rr: bool):
    from ecgfusion.data.beats import BeatSet
    from ecgfusion.features.rr import RR_FEATURE_NAMES

    n = 60
    rng = np.random.default_rng(0)
    record = np.array([f"r{i % 6}" for i in range(n)])
    return BeatSet(
        signals=rng.random((n, 187)).astype(np.float32),
        labels=np.arange(n) % 5,
        class_names=("N", "S", "V", "F", "Q"),
        record=record,
        patient=record.copy(),
        sample=np.arange(n, dtype=np.int64) * 300,
        fs=125.0,
        dataset="mitdb",
        method="kachuee",
        rr=rng.random((n, 8)).astype(np.float32) if with_rr else None,
        rr_names=RR_FEATURE_NAMES if with_rr else (),
    )


def test_datamodule_serves_named_batches_with_rr_where_the_beats_have_it():
    from ecgfusion.training.config import BeatDataConfig
    from ecgfusion.training.datamodule import BeatDataModule, prepare_split

    config = BeatDataConfig(dataset="mitdb", protocol="beat-random")
    beats = _beats(with_rr=True)
    dm = BeatDataModule(prepare_split(config, beats), batch_size=8)
    assert dm.inputs == ("x", "rr")
    inputs, y = next(iter(dm.train_dataloader()))
    assert inputs["x"].shape == (8, 187) and inputs["rr"].shape == (8, 8)
    rows = dm.prepared.index["train"]
    order = {tuple(beats.signals[i][:4]): i for i in rows}
    for xb, rb, label in zip(inputs["x"], inputs["rr"], y, strict=True):
        i = order[tuple(xb[:4].numpy())]  # the rows stay paired with their labels and RR
        assert label == beats.labels[i] and np.array_equal(rb.numpy(), beats.rr[i])
    plain = BeatDataModule(prepare_split(config, _beats(with_rr=False)), batch_size=8)
    assert plain.inputs == ("x",)
    with pytest.raises(DataError, match="carry no RR features"):
        BeatDataModule(prepare_split(config, _beats(with_rr=False)), 8, inputs=("x", "rr"))
