"""Presets: how long and with which recipe `ecgfusion reproduce` trains each stage, as data.

A preset is a YAML file in ``configs/presets/`` (``quick.yaml``, ``cpu.yaml``, ``paper.yaml``):
a description, which optional stages run, and per stage kind a partial run config that is merged
over the stage's Table-II config. A preset may change the recipe (optimiser, schedule, batch,
epochs, class weights, label smoothing, dropout, augmentation, data caps, the 1D model's
initialisation) but never the architecture: ``model`` may only carry ``params.dropout`` and
``params.init``. Every section is validated against the run-config schema when the preset is
loaded, so a typo fails before any training.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ecgfusion.errors import ConfigError
from ecgfusion.schema import read_yaml_file
from ecgfusion.training.config import validate_config

PRESET_DIR = Path(__file__).resolve().parents[3] / "configs" / "presets"
#: Stage kinds a preset can give a section to ("joint" is merged after "fusion" for the jointly
#: trained fusion stages).
KINDS = ("1d", "2d", "baseline", "rhythm", "fusion", "joint")
Kind = Literal["1d", "2d", "baseline", "rhythm", "fusion", "joint"]
#: User-facing protocols a preset may give its own sections to (experiments.stages.PROTOCOLS).
Protocol = Literal["beat-random", "inter-patient"]
#: The only model keys a preset may set: a recipe changes regularisation and starting weights,
#: not layers (``init``: the 1D model's initialisation, see models/cnn_transformer_1d.py).
RECIPE_MODEL_PARAMS = frozenset({"dropout", "init"})


class Preset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    #: Run the jointly trained (warm-started) fusion stages.
    joint: bool = False
    #: Run the Kachuee et al. residual CNN as Experiment 1's baseline row.
    baseline: bool = True
    #: Independent stages (1D, 2D, baseline) trained side by side in this many processes, each on
    #: max(1, cores // jobs) threads: on 2 cores two single-threaded fits beat one on two threads.
    jobs: int = Field(default=1, ge=1, le=8)
    #: Run the rhythm stages (an RR-feature MLP and the fusions with it as a third view) on
    #: the datasets whose beats carry RR features (MIT-BIH).
    rhythm: bool = False
    stages: dict[Kind, dict[str, Any]] = Field(default_factory=dict)
    #: Per protocol, sections merged over ``stages`` (e.g. class weights for inter-patient).
    protocols: dict[Protocol, dict[Kind, dict[str, Any]]] = Field(default_factory=dict)
    #: What the preset should reach on MIT-BIH beat-random: {stage key: {metric: minimum}},
    #: checked (mean over seeds) on the comparison page that `ecgfusion reproduce` writes.
    targets: dict[str, dict[Literal["accuracy", "macro_f1", "mcc"], float]] = Field(
        default_factory=dict
    )

    def section(
        self, kind: str, joint: bool = False, protocol: str | None = None
    ) -> dict[str, Any]:
        """The merged partial config of a stage kind (``joint``: fusion, then joint), then the
        protocol's own sections for it in the same order."""
        layers = [self.stages] + ([self.protocols[protocol]] if protocol in self.protocols else [])
        out: dict[str, Any] = {}
        for layer in layers:
            out = deep_merge(out, layer.get(kind, {}))
            if joint:
                out = deep_merge(out, layer.get("joint", {}))
        return out


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, mapping by mapping; neither argument is changed."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def available_presets(folder: Path = PRESET_DIR) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _check_recipe_only(source: Path, where: str, section: dict[str, Any]) -> None:
    model = section.get("model")
    if model is None:
        return
    params = model.get("params") if isinstance(model, dict) else None
    extra = set(model) - {"params"} if isinstance(model, dict) else {"model"}
    if params is not None and not isinstance(params, dict):
        extra.add("params")
    elif params:
        extra |= {f"params.{k}" for k in set(params) - RECIPE_MODEL_PARAMS}
    if extra:
        raise ConfigError(
            f"{source}: {where}.model.{sorted(extra)[0]}: a preset changes the "
            "recipe, never the architecture; only model.params.dropout and model.params.init "
            "may be set"
        )


def load_preset(name_or_path: str, folder: Path = PRESET_DIR) -> Preset:
    """A preset by name (``configs/presets/<name>.yaml``) or by path, validated."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = folder / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(available_presets(folder)) or "(none found)"
        raise ConfigError(
            f"unknown preset {name_or_path!r}: {path} not found; choose one of {known} or give "
            "the path of a preset YAML file"
        )
    raw = read_yaml_file(path, "preset")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a preset must be a YAML mapping (description, stages, ...)")
    raw = {"name": path.stem, **raw}
    try:
        preset = Preset.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
    sections = [(f"stages.{kind}", sec) for kind, sec in preset.stages.items()]
    sections += [
        (f"protocols.{protocol}.{kind}", sec)
        for protocol, by_kind in preset.protocols.items()
        for kind, sec in by_kind.items()
    ]
    for where, section in sections:
        _check_recipe_only(path, where, section)
        # Each section must be a valid part of a run config: merged over a minimal one, it is
        # checked by the run-config schema (unknown keys, types, ranges).
        probe = deep_merge({"model": {"name": "cnn_2d"}}, section)
        validate_config(probe, f"{path} ({where})")
    return preset
