"""Presets as validated YAML (configs/presets/): shipped ones load, bad ones fail in one line."""

from __future__ import annotations

import pytest

from ecgfusion.errors import ConfigError
from ecgfusion.experiments.presets import available_presets, deep_merge, load_preset


def test_shipped_presets_load():
    names = available_presets()
    assert {"quick", "cpu", "paper"} <= set(names)
    for name in names:
        preset = load_preset(name)
        assert preset.name == name and preset.description
    assert load_preset("paper").stages == {}  # Table II exactly
    assert load_preset("cpu").joint and not load_preset("quick").joint


def test_shipped_presets_never_force_emulated_bf16():
    """bf16 autocast on a CPU without AVX512-BF16 / AMX ran 8-10x slower than fp32: presets ask
    for "auto", which is bf16 only where the hardware computes it."""
    for name in available_presets():
        for stage, section in load_preset(name).stages.items():
            precision = section.get("trainer", {}).get("precision", "auto")
            assert precision in ("auto", "32"), (name, stage, precision)


def test_preset_sections_merge_fusion_then_joint(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "description: test\n"
        "stages:\n"
        "  fusion: {optim: {lr: 1.0e-3, name: adamw}, trainer: {max_epochs: 4}}\n"
        "  joint: {optim: {backbone_lr_scale: 0.1}, trainer: {max_epochs: 2}}\n"
    )
    preset = load_preset(str(path))
    assert preset.name == "mine" and preset.section("1d") == {}
    assert preset.section("fusion", joint=True) == {
        "optim": {"lr": 1e-3, "name": "adamw", "backbone_lr_scale": 0.1},
        "trainer": {"max_epochs": 2},
    }


def test_protocol_sections_merge_over_the_stages_in_the_same_order(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "description: test\n"
        "rhythm: true\n"
        "stages:\n"
        "  fusion: {trainer: {max_epochs: 4, class_weights: none}}\n"
        "  joint: {trainer: {max_epochs: 2}}\n"
        "protocols:\n"
        "  inter-patient:\n"
        "    fusion: {trainer: {class_weights: balanced}}\n"
        "    rhythm: {trainer: {class_weights: balanced}}\n"
    )
    preset = load_preset(str(path))
    assert preset.section("fusion", protocol="beat-random") == {
        "trainer": {"max_epochs": 4, "class_weights": "none"}
    }
    assert preset.section("fusion", protocol="inter-patient") == {
        "trainer": {"max_epochs": 4, "class_weights": "balanced"}
    }
    # joint: fusion, joint, then the protocol's fusion and joint
    assert preset.section("fusion", joint=True, protocol="inter-patient") == {
        "trainer": {"max_epochs": 2, "class_weights": "balanced"}
    }
    assert preset.section("rhythm", protocol="inter-patient") == {
        "trainer": {"class_weights": "balanced"}
    }


def test_rhythm_stages_run_only_where_the_beats_carry_rr():
    from ecgfusion.experiments.stages import preset_stages

    cpu = load_preset("cpu")
    keys = {s.key for s in preset_stages(cpu, "mitdb")}
    assert {"rhythm_mlp", "late_fusion_rhythm", "intermediate_concat_rhythm"} <= keys
    assert not {s.key for s in preset_stages(cpu, "ptbxl-beats")} & {"rhythm_mlp"}
    assert "rhythm_mlp" not in {s.key for s in preset_stages(load_preset("quick"), "mitdb")}


def test_deep_merge_changes_neither_argument():
    base, update = {"a": {"b": 1, "c": 2}}, {"a": {"c": 3}, "d": 4}
    assert deep_merge(base, update) == {"a": {"b": 1, "c": 3}, "d": 4}
    assert base == {"a": {"b": 1, "c": 2}} and update == {"a": {"c": 3}, "d": 4}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("description: x\nstages: {1d: {trainer: {max_epoch: 3}}}\n", "trainer.max_epoch"),
        ("description: x\nstages: {1d: {optim: {lr: -1}}}\n", "optim.lr"),
        ("description: x\nstages: {3d: {}}\n", "stages.3d"),
        ("description: x\nstages: {2d: {model: {params: {filters: 32}}}}\n", "architecture"),
        ("description: x\nstages: {2d: {model: {name: cnn_transformer_1d}}}\n", "architecture"),
        ("description: x\nbatch: 3\n", "batch"),
        ("stages: {}\n", "description"),
        ("- a list\n", "mapping"),
        ("description: x\njobs: 0\n", "jobs"),
        ("description: x\nprotocols: {inter-patient: {2d: {optim: {lr: 0}}}}\n", "optim.lr"),
        (
            "description: x\nprotocols: {inter-patient: {2d: {model: {params: {x: 1}}}}}\n",
            "protocols.inter-patient.2d.model.params.x",
        ),
        ("description: x\nprotocols: {strat: {}}\n", "protocols.strat"),
    ],
)
def test_bad_presets_name_the_file_and_key(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message) as info:
        load_preset(str(path))
    assert str(path) in str(info.value)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="quick"):
        load_preset("huge")
