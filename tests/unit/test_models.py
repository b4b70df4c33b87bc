"""Model registry, shapes, boundary checks, gradients, freezing and save/load (synthetic beats)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ecgfusion.errors import ConfigError, DataError, ShapeError
from ecgfusion.models import (
    MODELS,
    ModelOutput,
    create_model,
    list_models,
    load_model,
    save_model,
)
from ecgfusion.models.cnn_transformer_1d import conv_lengths, min_samples

FS = 125.0
BEAT_MODELS = ("cnn_transformer_1d", "cnn_2d", "late_fusion", "intermediate_fusion")
#: Small but structurally complete settings, for the tests that train or run many times.
SMALL_1D = {"channels": 16, "n_layers": 2, "n_heads": 2}
SMALL = {
    "cnn_transformer_1d": SMALL_1D,
    "cnn_2d": {},
    "late_fusion": {"backbone_1d_params": SMALL_1D},
    "intermediate_fusion": {"backbone_1d_params": SMALL_1D},
    "multimodal": {"n_leads": 3, "n_meta": 3, "d_model": 16, "n_heads": 2, "n_layers": 1},
}


def _model(name: str, n_samples: int = 187, n_classes: int = 5, **params):
    return create_model(name, n_classes=n_classes, n_samples=n_samples, sampling_rate=FS, **params)


def _inputs(model, batch: int = 3) -> tuple[torch.Tensor, ...]:
    return tuple(torch.rand(batch, *shape[1:]) for shape in model.input_shapes().values())


def test_every_paper_model_is_registered():
    models = {*BEAT_MODELS, "kachuee_cnn", "multimodal", "rhythm_mlp"}
    assert set(list_models()) == models == set(MODELS)


@pytest.mark.parametrize("name", BEAT_MODELS)
@pytest.mark.parametrize("n_samples", [187, 188, 88])
def test_beat_model_shapes(name, n_samples):
    model = _model(name, n_samples=n_samples).eval()
    for batch in (1, 3):
        x = torch.rand(batch, n_samples)
        out = model(x)
        assert isinstance(out, ModelOutput)
        assert out.scores.shape == (batch, 5)
        assert out.features.shape == (batch, model.feature_dim)
        # [B, 1, n] (a channel axis, as data loaders often add) is the same beat.
        torch.testing.assert_close(model(x[:, None]).scores, out.scores)


def test_paper_shapes_at_187():
    one_d = _model("cnn_transformer_1d")
    assert conv_lengths(187) == [185, 185, 91, 44, 21, 9]
    assert one_d.n_tokens == 9 and one_d.feature_dim == 128
    two_d = _model("cnn_2d")
    assert two_d.spectrogram(torch.rand(2, 187)).shape == (2, 3, 128, 128)
    assert two_d.feature_dim == 64 * 8 * 8
    assert _model("cnn_2d", filters=32).feature_dim == 256 * 8 * 8
    assert _model("cnn_2d", filters=[32, 32, 32, 32]).feature_dim == 32 * 8 * 8
    for mode, width in (("concat", 128), ("sum", 64), ("weighted_sum", 64)):
        fusion = _model("intermediate_fusion", mode=mode, **SMALL["intermediate_fusion"]).eval()
        out = fusion(torch.rand(2, 187))
        assert fusion.feature_dim == width and out.features.shape == (2, width)


@pytest.mark.parametrize("name", BEAT_MODELS)
def test_wrong_beat_shape_names_expected_and_actual(name):
    model = _model(name)
    for bad in (torch.rand(2, 186), torch.rand(2, 2, 187), torch.rand(187)):
        with pytest.raises(ShapeError) as info:
            model(bad)
        message = str(info.value)
        assert "[batch, 187]" in message and str(tuple(bad.shape)) in message


def test_too_short_beats_are_a_config_error_naming_the_minimum():
    shortest = min_samples()
    assert min(conv_lengths(shortest)) == 1 and min(conv_lengths(shortest - 1)) < 1
    _model("cnn_transformer_1d", n_samples=shortest)
    with pytest.raises(ConfigError, match=f"n_samples >= {shortest}"):
        _model("cnn_transformer_1d", n_samples=shortest - 1)


def test_registry_rejects_unknown_names_and_hyper_parameters():
    with pytest.raises(ConfigError, match="known models: cnn_2d, cnn_transformer_1d"):
        _model("resnet")
    with pytest.raises(ConfigError, match=r"n_layer\b.*accepted: channels, n_layers"):
        _model("cnn_transformer_1d", n_layer=4)
    with pytest.raises(ConfigError, match="allowed: concat, sum, weighted_sum"):
        _model("intermediate_fusion", mode="product")
    with pytest.raises(ConfigError, match="n_classes must be a positive integer"):
        _model("cnn_2d", n_classes=0)
    with pytest.raises(ConfigError, match="bad hyper-parameter value"):
        _model("cnn_transformer_1d", n_layers="8")
    with pytest.raises(ConfigError, match="divisible by n_heads=3"):
        _model("cnn_transformer_1d", n_heads=3)


@pytest.mark.parametrize("branches", [("time", "fft", "meta"), ("time",), ("fft", "meta")])
def test_multimodal_shapes(branches):
    model = _model("multimodal", n_samples=250, branches=branches, **SMALL["multimodal"]).eval()
    for batch in (1, 3):
        x, meta = torch.rand(batch, 3, 250), torch.rand(batch, 3)
        out = model(x, meta)
        assert out.scores.shape == (batch, 5)
        assert out.features.shape == (batch, model.feature_dim)
    if "meta" not in branches:  # ignored, so one data pipeline serves every ablation
        torch.testing.assert_close(model(x).scores, out.scores)


def test_multimodal_boundary_errors():
    model = _model("multimodal", n_samples=250, **SMALL["multimodal"])
    cases = [
        ((torch.rand(2, 12, 250), torch.rand(2, 3)), r"\[batch, 3, 250\].*\(2, 12, 250\)"),
        ((torch.rand(2, 3, 200), torch.rand(2, 3)), r"\[batch, 3, 250\].*\(2, 3, 200\)"),
        ((torch.rand(2, 250, 3), torch.rand(2, 3)), "axes look swapped"),
        ((torch.rand(2, 3, 250), torch.rand(2, 4)), r"\[batch=2, 3\].*\(2, 4\)"),
        ((torch.rand(2, 3, 250), None), r"metadata \[batch=2, 3\], got None"),
    ]
    for args, pattern in cases:
        with pytest.raises(ShapeError, match=pattern):
            model(*args)
    with pytest.raises(ConfigError, match="subset of time, fft, meta"):
        _model("multimodal", branches=("time", "image"))
    with pytest.raises(ConfigError, match="fft branch input has 51 steps"):
        _model("multimodal", n_samples=100, n_conv=3, pool=4)


def _assert_gradients(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
    model.train()
    target = torch.arange(inputs[0].shape[0]) % model.n_classes
    F.cross_entropy(model(*inputs).scores, target).backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f"{name} got no gradient"
            assert param.grad.abs().sum() > 0, f"{name} got an all-zero gradient"
        else:
            assert param.grad is None, f"frozen {name} got a gradient"


@pytest.mark.parametrize(
    "name, params",
    [
        ("cnn_transformer_1d", SMALL_1D),
        ("cnn_2d", {}),
        ("late_fusion", {"freeze": False, **SMALL["late_fusion"]}),
        (
            "intermediate_fusion",
            {"freeze": False, "mode": "weighted_sum", **SMALL["intermediate_fusion"]},
        ),
        ("multimodal", SMALL["multimodal"]),
    ],
)
def test_every_trainable_parameter_gets_a_gradient(name, params):
    torch.manual_seed(0)
    n_samples = 250 if name == "multimodal" else 187
    model = _model(name, n_samples=n_samples, **params)
    assert all(p.requires_grad for p in model.parameters()) == (name != "intermediate_fusion")
    _assert_gradients(model, _inputs(model, batch=6))


@pytest.mark.parametrize("name", ["late_fusion", "intermediate_fusion"])
def test_frozen_backbones_get_no_gradient_and_do_not_change(name):
    torch.manual_seed(0)
    model = _model(name, **SMALL[name])
    backbones = [model.backbone_1d, model.backbone_2d]
    before = {k: v.clone() for b in backbones for k, v in b.state_dict().items()}
    head = [p for p in model.parameters() if p.requires_grad]
    assert head and all(not p.requires_grad for b in backbones for p in b.parameters())
    head_before = [p.detach().clone() for p in head]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model.train()
    assert not model.backbone_1d.training and not model.backbone_2d.training
    x = torch.rand(6, 187)
    for _ in range(2):
        optimizer.zero_grad()
        F.cross_entropy(model(x).scores, torch.arange(6) % 5).backward()
        optimizer.step()
    _assert_gradients(model, (x,))
    after = {k: v for b in backbones for k, v in b.state_dict().items()}
    for key, value in before.items():  # weights and BatchNorm running statistics alike
        torch.testing.assert_close(after[key], value, rtol=0, atol=0, msg=key)
    assert any(not torch.equal(a, b) for a, b in zip(head, head_before, strict=True))


def test_unfrozen_fusion_trains_its_backbones_in_train_mode():
    model = _model("late_fusion", freeze=False, **SMALL["late_fusion"]).train()
    assert model.backbone_1d.training and model.backbone_2d.training
    running = model.backbone_2d.blocks[2].running_mean.clone()
    model(torch.rand(4, 187))
    assert not torch.equal(model.backbone_2d.blocks[2].running_mean, running)


@pytest.mark.parametrize("name", ["late_fusion", "intermediate_fusion"])
def test_forward_is_fuse_of_backbone_outputs(name):
    model = _model(name, **SMALL[name]).eval()
    x = torch.rand(4, 187)
    with torch.no_grad():
        cached = model.backbone_outputs(x)
        torch.testing.assert_close(model.fuse(*cached).scores, model(x).scores)
    if name == "late_fusion":
        expected = 0.5 * cached[0].scores + 0.5 * cached[1].scores
        torch.testing.assert_close(model(x).scores, expected)
    with pytest.raises(ShapeError, match=r"features \[batch, 16\].*\(4, 7\)"):
        model.fuse(ModelOutput(cached[0].scores, torch.rand(4, 7)), cached[1])


def test_fusion_from_two_backbone_files(tmp_path):
    torch.manual_seed(0)
    one_d = _model("cnn_transformer_1d", **SMALL_1D)
    two_d = _model("cnn_2d", filters=4)
    save_model(one_d, tmp_path / "1d.pt")
    save_model(two_d, tmp_path / "2d.pt", extra={"val_macro_f1": 0.5})
    loaded_1d, loaded_2d = load_model(tmp_path / "1d.pt"), load_model(tmp_path / "2d.pt")
    assert loaded_2d.extra == {"val_macro_f1": 0.5}
    fusion = _model("late_fusion", backbone_1d=loaded_1d, backbone_2d=loaded_2d).eval()
    assert fusion.spec["kwargs"]["backbone_1d_params"]["n_layers"] == 2
    assert fusion.spec["kwargs"]["backbone_2d_params"] == {"filters": 4}
    x = torch.rand(5, 187)
    with torch.no_grad():
        expected = 0.5 * one_d.eval()(x).scores + 0.5 * two_d.eval()(x).scores
        torch.testing.assert_close(fusion(x).scores, expected)
    # The fusion's own file carries its backbones: it loads without the backbone files.
    save_model(fusion, tmp_path / "fusion.pt")
    (tmp_path / "1d.pt").unlink()
    with torch.no_grad():
        torch.testing.assert_close(load_model(tmp_path / "fusion.pt")(x).scores, expected)
    with pytest.raises(ConfigError, match="n_samples=188 but the fusion model has n_samples=187"):
        _model("late_fusion", backbone_1d=_model("cnn_transformer_1d", n_samples=188))
    with pytest.raises(ConfigError, match="must be a 'cnn_2d' model"):
        _model("late_fusion", backbone_2d=one_d)


@pytest.mark.parametrize("name", [*BEAT_MODELS, "multimodal"])
def test_save_load_round_trip_gives_identical_outputs(name, tmp_path):
    torch.manual_seed(0)
    n_samples = 250 if name == "multimodal" else 187
    model = _model(name, n_samples=n_samples, **SMALL[name])
    # A few training steps so BatchNorm statistics and weights differ from a fresh model.
    inputs = _inputs(model, batch=4)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
    model.train()
    for _ in range(2):
        optimizer.zero_grad()
        F.cross_entropy(model(*inputs).scores, torch.arange(4) % 5).backward()
        optimizer.step()
    path = save_model(model, tmp_path / "model.pt")
    loaded = load_model(path)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.spec == model.spec
    model.eval()
    with torch.no_grad():
        expected, got = model(*inputs), loaded(*inputs)
    torch.testing.assert_close(got.scores, expected.scores, rtol=0, atol=0)
    torch.testing.assert_close(got.features, expected.features, rtol=0, atol=0)
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left nothing behind


def test_load_model_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.pt does not exist"):
        load_model(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="corrupt.pt is corrupt"):
        load_model(corrupt)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(DataError, match="other.pt is not an ecgfusion-model/1 file"):
        load_model(other)
    with pytest.raises(ConfigError, match="has no spec"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "x.pt")
