"""The search space of an `ecgfusion tune` study: its YAML schema, validated against run configs.

A study searches the *recipe* of a run config (optimiser, schedule, batch size, class weights,
label smoothing, augmentation, dropout), never the data or the architecture. This module reads
the search-space file (see ``configs/search/``), checks every key against the run-config schema
with each bound and choice before anything is trained, and applies a trial's values to the base
config; running the study is :mod:`ecgfusion.experiments.tune`. A space file::

    objective: val_macro_f1          # validation metric, maximised
    seed: 0                          # TPE sampler seed
    sampler: {n_startup_trials: 10}  # random trials before TPE models the space
    pruner: {name: median, n_startup_trials: 3, n_warmup_steps: 1}
    params:
      optim.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
      trainer.batch_size: {type: categorical, choices: [64, 128, 256]}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import optuna
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ecgfusion.errors import ConfigError
from ecgfusion.experiments.presets import RECIPE_MODEL_PARAMS
from ecgfusion.schema import read_yaml_file, set_key, validation_message
from ecgfusion.training.config import RunConfig, validate_config

#: Top-level config sections whose keys a study may search: the training recipe.
SEARCHABLE_SECTIONS = ("optim", "trainer", "augment")
#: The model hyper-parameters that are part of the recipe, not the architecture (as in presets).
SEARCHABLE_MODEL_PARAMS = tuple(sorted(RECIPE_MODEL_PARAMS))
#: Recipe keys that are still not worth a search: a seed only fits the noise of one split.
UNSEARCHABLE_KEYS = ("trainer.seed",)


# --------------------------------------------------------------------------- the space file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Choice = bool | int | float | str | None


class ParamSpec(_Strict):
    """One searched key: a float or int range (optionally log-scaled or stepped) or choices."""

    type: Literal["float", "int", "categorical"]
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = None
    choices: list[Choice] | None = None

    @field_validator("low", "high", "step", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"must be a number, got {value!r}")
        return value

    @field_validator("choices", mode="before")
    @classmethod
    def _scalar_choices(cls, value: Any) -> Any:
        if isinstance(value, list):
            for choice in value:
                if choice is not None and not isinstance(choice, bool | int | float | str):
                    raise ValueError(
                        f"each choice must be a number, string, boolean or null, got {choice!r}"
                    )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        if self.type == "categorical":
            if self.low is not None or self.high is not None or self.step is not None or self.log:
                raise ValueError("a categorical parameter takes choices, not low/high/step/log")
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty list of choices")
            if len({repr(c) for c in self.choices}) != len(self.choices):
                raise ValueError(f"choices must be distinct, got {self.choices}")
            return self
        if self.choices is not None:
            raise ValueError(f"a {self.type} parameter takes low and high, not choices")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter needs low and high")
        if self.type == "int":
            for name in ("low", "high", "step"):
                value = getattr(self, name)
                if value is not None and not isinstance(value, int):
                    raise ValueError(f"{name} of an int parameter must be an integer, got {value}")
        if not self.low < self.high:
            raise ValueError(
                f"low must be below high, got {self.low} and {self.high} (fix a value with --set)"
            )
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scaled range needs low > 0, got {self.low}")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"step must be positive, got {self.step}")
        return self

    def bounds(self) -> list[Any]:
        """Every value a trial can draw at the edges: both ends of a range, or every choice."""
        return list(self.choices) if self.type == "categorical" else [self.low, self.high]

    def suggest(self, trial: optuna.Trial, key: str) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(key, self.choices)
        if self.type == "int":
            return trial.suggest_int(key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(key, self.low, self.high, step=self.step, log=self.log)


class PrunerSpec(_Strict):
    """Optuna's MedianPruner: stop a trial whose validation metric, after ``n_warmup_steps``
    validation passes, is below the median of earlier trials at the same pass; ``none`` never
    prunes."""

    name: Literal["median", "none"] = "median"
    n_startup_trials: int = Field(default=3, ge=0)
    n_warmup_steps: int = Field(default=1, ge=0)
    interval_steps: int = Field(default=1, ge=1)

    def build(self) -> optuna.pruners.BasePruner:
        if self.name == "none":
            return optuna.pruners.NopPruner()
        return optuna.pruners.MedianPruner(
            n_startup_trials=self.n_startup_trials,
            n_warmup_steps=self.n_warmup_steps,
            interval_steps=self.interval_steps,
        )


class SamplerSpec(_Strict):
    #: Trials drawn at random before TPE models the space.
    n_startup_trials: int = Field(default=10, ge=0)


class SearchSpace(_Strict):
    #: The validation metric a trial is judged by (maximised). The trainer keeps the epoch of the
    #: best val_macro_f1, and it is the metric logged every validation pass that suits five
    #: imbalanced classes (MCC is not logged per epoch, accuracy is dominated by N).
    objective: Literal["val_macro_f1"] = "val_macro_f1"
    seed: int = 0
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    params: dict[str, ParamSpec] = Field(min_length=1)

    def to_yaml(self) -> str:
        raw = self.model_dump(mode="json", exclude={"params"})
        raw["params"] = {
            key: spec.model_dump(mode="json", exclude_defaults=True)
            for key, spec in self.params.items()
        }
        return yaml.safe_dump(raw, sort_keys=False)

    def same_search(self, other: SearchSpace) -> bool:
        """Same objective, params and pruner: a study may be resumed with another seed only."""
        return self.model_dump(exclude={"seed"}) == other.model_dump(exclude={"seed"})


def load_space(path: str | os.PathLike) -> SearchSpace:
    """Read and validate a search-space YAML; every problem is one ConfigError line."""
    path = Path(path)
    raw = read_yaml_file(path, "search-space")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a search space must be a YAML mapping with a params key")
    try:
        return SearchSpace.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, str(path), SearchSpace)) from None


# --------------------------------------------------------------------------- space x config


def trial_config(base: RunConfig, values: dict[str, Any], source: str = "trial") -> RunConfig:
    """The base config with ``values`` ({key path: value}) applied, validated as a run config."""
    raw = base.model_dump(mode="json")
    for key, value in values.items():
        set_key(raw, key, value, source)
    return validate_config(raw, source)


def _check_key(key: str, base: RunConfig, source: str) -> None:
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(f"{source}: {key!r} is not a config key path such as optim.lr")
    recipe = "a study searches the training recipe only: optim.*, trainer.*, augment.* and " + (
        ", ".join(f"model.params.{p}" for p in SEARCHABLE_MODEL_PARAMS)
    )
    if parts[0] == "model":
        if parts[:2] == ["model", "params"] and len(parts) == 3:
            if parts[2] not in SEARCHABLE_MODEL_PARAMS:
                raise ConfigError(
                    f"{source}: {key} is part of the architecture, which a study never searches; "
                    f"{recipe}"
                )
            from ecgfusion.models.registry import accepted_params

            if parts[2] not in accepted_params(base.model.name):
                raise ConfigError(
                    f"{source}: model {base.model.name!r} has no {parts[2]} hyper-parameter; "
                    "remove the key from the space"
                )
            return
        raise ConfigError(f"{source}: {key} is not searchable; {recipe}")
    if parts[0] not in SEARCHABLE_SECTIONS:
        what = "the data must be the same for every trial" if parts[0] == "data" else ""
        raise ConfigError(
            f"{source}: {key} is not searchable{'; ' + what if what else ''}; {recipe}"
        )
    if key in UNSEARCHABLE_KEYS:
        raise ConfigError(f"{source}: {key} is not searchable: a seed only fits noise")


def check_space(space: SearchSpace, base: RunConfig, source: str = "space") -> None:
    """Refuse a space that names a key the schema lacks, a non-recipe key or a bad value.

    Each bound and each choice is applied alone to the base config and validated, so a typo or an
    out-of-range end fails now, not at the trial that happens to draw it.
    """
    for key, spec in space.params.items():
        where = f"{source}: params.{key}"
        _check_key(key, base, where)
        for value in spec.bounds():
            if key == "model.params.dropout" and not (
                isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1
            ):
                raise ConfigError(f"{where}: dropout must be a number in [0, 1), got {value!r}")
            trial_config(base, {key: value}, f"{where} = {value!r}")


def with_seed(space: SearchSpace, seed: int | None) -> SearchSpace:
    """The space with another sampler seed (--seed); the same space when ``seed`` is None."""
    return space if seed is None else space.model_copy(update={"seed": seed})
