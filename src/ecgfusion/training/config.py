"""Run configs: one YAML file per run, validated before any work starts.

Every mistake a user can make in a config (a typo in a key, a string where a number belongs, a
learning rate of zero) must fail in the first second with the key's path and what is allowed, not
after an hour of data preparation. Hence pydantic models with ``extra="forbid"`` everywhere, and
``--set a.b=value`` overrides checked against the same schema.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from ecgfusion.errors import ConfigError
from ecgfusion.io import atomic_write_text
from ecgfusion.schema import (
    check_key_path,
    parse_yaml,
    read_yaml_file,
    require_mapping,
    set_key,
    validation_message,
)

CONFIG_FILE = "config.yaml"
#: Datasets of whole records (12 leads + metadata): the record task trains them.
RECORD_DATASETS: tuple[str, ...] = ("ptbxl",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class _DataCommon(_Strict):
    """The data.* keys every dataset has."""

    dataset: str = "mitdb"
    seed: int = 0
    #: A subset of records (tests, quick runs); None means the whole database.
    records: list[str] | None = None
    data_root: str | None = None
    cache_dir: str | None = None

    #: Keys of the other kind of data config that configs written before the split into two
    #: kinds carry with their empty default; dropped on reading, refused when set.
    _OTHER_KIND_DEFAULTS: ClassVar[dict[str, Any]] = {}

    @model_validator(mode="before")
    @classmethod
    def _drop_other_kind_defaults(cls, value: Any) -> Any:
        if isinstance(value, dict):
            drop = [
                k for k, v in cls._OTHER_KIND_DEFAULTS.items() if k in value and value[k] == v
            ]
            value = {k: v for k, v in value.items() if k not in drop}
        return value

    @field_validator("records", mode="before")
    @classmethod
    def _records_as_strings(cls, value: Any) -> Any:
        # YAML reads `records: [100, 119]` as ints; record names are strings.
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        known = known_datasets()
        if known and value not in known:
            raise ValueError(f"Input should be one of {', '.join(repr(k) for k in known)}")
        return value


class BeatDataConfig(_DataCommon):
    """data.* of a beat dataset (mitdb, ptbdb, ptbxl-beats, kaggle-*): fixed-length beats."""

    method: Literal["kachuee", "centered"] = "kachuee"
    protocol: Literal["beat-random", "patient-disjoint", "inter-patient", "strat-fold"] = (
        "beat-random"
    )
    #: Random cap on the whole beat set before splitting (quick runs and tests only: it thins
    #: every part, the test part included).
    max_beats: int | None = Field(default=None, ge=1)
    #: Random cap on the training part only, so validation and test stay untouched.
    max_train_beats: int | None = Field(default=None, ge=1)
    #: Random cap on the validation part (it only picks the best epoch and stops early); the
    #: test part, which the reported numbers come from, is never thinned by it.
    max_val_beats: int | None = Field(default=None, ge=1)
    #: "reduced": ecgfusion.data.splits' down-sampling of the training part (the reproduction's
    #: "MIT-BIH reduced"); val/test stay as they are.
    rebalance: Literal["reduced"] | None = None

    _OTHER_KIND_DEFAULTS: ClassVar[dict[str, Any]] = {"task": None, "sampling_rate": None}


class RecordDataConfig(_DataCommon):
    """data.* of a record dataset (ptbxl): whole 12-lead records with their metadata."""

    dataset: str = "ptbxl"
    #: PTB-XL's own patient-disjoint strat_fold split: folds 1-8 / 9 / 10.
    protocol: Literal["strat-fold"] = "strat-fold"
    #: "binary" is NORM-only vs any other superclass, "superclasses" the 5 diagnostic
    #: superclasses as multi-label targets.
    task: Literal["binary", "superclasses"]
    #: 100 (records100) or 500 Hz (records500); None means 100.
    sampling_rate: Literal[100, 500] | None = None

    _OTHER_KIND_DEFAULTS: ClassVar[dict[str, Any]] = {
        "method": "kachuee",
        "max_beats": None,
        "max_train_beats": None,
        "max_val_beats": None,
        "rebalance": None,
    }


#: Tags of the two kinds; in parentheses so that error paths leave them out (_format_loc).
BEATS_TAG, RECORDS_TAG = "(beats)", "(records)"


def _data_kind(value: Any) -> str:
    dataset = value.get("dataset", "mitdb") if isinstance(value, dict) else value.dataset
    return RECORDS_TAG if dataset in RECORD_DATASETS else BEATS_TAG


#: data.*: which of the two kinds is decided by data.dataset, so each kind lists only its keys.
DataConfig = Annotated[
    Annotated[BeatDataConfig, Tag(BEATS_TAG)] | Annotated[RecordDataConfig, Tag(RECORDS_TAG)],
    Discriminator(_data_kind),
]


class BackbonesConfig(_Strict):
    """Run folders (or their model.pt files) of the trained branches of a fusion model: the
    1D and 2D backbones and, for a fusion with a rhythm branch, the rhythm model."""

    backbone_1d: str
    backbone_2d: str
    backbone_rr: str | None = None


class ModelConfig(_Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    backbones: BackbonesConfig | None = None
    #: A run folder (or model.pt) of the same model whose weights start this run: the joint
    #: fusion stage starts from the frozen stage's trained head and backbones (a warm start).
    init_from: str | None = None

    @field_validator("params")
    @classmethod
    def _no_reserved_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        reserved = {"n_samples", "sampling_rate", "backbone_1d", "backbone_2d", "backbone_rr"}
        reserved &= set(value)
        if reserved:
            raise ValueError(
                f"{', '.join(sorted(reserved))} come from the data or model.backbones, "
                "not from model.params"
            )
        return value


class OptimConfig(_Strict):
    name: Literal["adam", "adamw", "adamax", "sgd"] = "adam"
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = Field(default=0.0, ge=0)
    #: Per optimiser step: noam (Table II), cosine (decay to 0), warmup_cosine (linear warm-up
    #: over warmup_fraction of the steps, then cosine to 0), onecycle (torch's OneCycleLR with
    #: lr as its peak and warmup_fraction as its pct_start).
    scheduler: Literal["noam", "cosine", "warmup_cosine", "onecycle"] | None = None
    #: Noam warm-up in optimiser steps and its d_model (the transformer width).
    warmup: int = Field(default=4000, ge=1)
    d_model: int = Field(default=128, ge=1)
    #: Share of all steps spent warming up (warmup_cosine, onecycle).
    warmup_fraction: float = Field(default=0.1, ge=0, lt=1)
    #: Learning-rate multiplier of a fusion model's backbones when they are trained (freeze:
    #: false); the head keeps lr. Below 1 a warm-started joint stage fine-tunes the backbones.
    backbone_lr_scale: float = Field(default=1.0, gt=0, le=1)

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in value):
            raise ValueError("both betas must be in [0, 1)")
        return value


#: none: plain cross-entropy; balanced: n / (C * count_c) (the paper's); sqrt_inverse: the square
#: root of balanced; sampler: unweighted loss, training batches drawn class-balanced.
ClassWeightPolicy = Literal["none", "sqrt_inverse", "balanced", "sampler"]


class AugmentConfig(_Strict):
    """Light, label-preserving changes of each training beat, drawn anew every step.

    amplitude: scale by U(1 - a, 1 + a); offset: add U(-o, o); shift: move by up to ``shift``
    samples either way (zero-filled); noise: add N(0, noise^2). Validation and test beats are
    never changed.
    """

    amplitude: float = Field(default=0.0, ge=0, lt=1)
    offset: float = Field(default=0.0, ge=0)
    shift: int = Field(default=0, ge=0)
    noise: float = Field(default=0.0, ge=0)

    @property
    def active(self) -> bool:
        return bool(self.amplitude or self.offset or self.shift or self.noise)


class EarlyStoppingConfig(_Strict):
    patience: int = Field(default=5, ge=1)
    monitor: Literal["val_macro_f1", "val_loss", "val_acc"] = "val_macro_f1"


class TrainerConfig(_Strict):
    max_epochs: int = Field(default=10, ge=1)
    #: Stop the fit after this many seconds of wall time (budgeted runs: studies, benchmarks).
    max_time_s: float | None = Field(default=None, gt=0)
    #: Validate this many times per training epoch (long epochs, learning curves against time).
    val_per_epoch: int = Field(default=1, ge=1)
    batch_size: int = Field(default=16, ge=1)
    eval_batch_size: int = Field(default=1024, ge=1)
    early_stopping: EarlyStoppingConfig | None = None
    seed: int = 0
    deterministic: bool = True
    num_threads: int | None = Field(default=None, ge=1)
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    #: "auto": bf16-mixed where the device computes bf16 natively (runtime.training_precision),
    #: else 32; presets use it, since emulated bf16 is several times slower than fp32.
    precision: Literal["32", "bf16-mixed", "auto"] = "32"
    log_every_n_steps: int = Field(default=50, ge=1)
    tensorboard: bool = False
    #: How the loss treats rare classes (see ClassWeightPolicy); true / false read as
    #: balanced / none, the two policies of earlier configs.
    class_weights: ClassWeightPolicy = "balanced"
    label_smoothing: float = Field(default=0.0, ge=0, lt=0.5)
    #: Clip the gradients' global L2 norm to this value (None: no clipping); lets the post-norm
    #: encoder take a higher learning rate without collapsing to the majority class.
    gradient_clip_val: float | None = Field(default=None, gt=0)
    #: Frozen fusion backbones: compute their outputs once per part and train only the head.
    cache_backbones: bool = True

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_as_string(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("class_weights", mode="before")
    @classmethod
    def _class_weights_from_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "balanced" if value else "none"
        return value


class RunConfig(_Strict):
    data: DataConfig = Field(default_factory=BeatDataConfig)
    model: ModelConfig
    optim: OptimConfig = Field(default_factory=OptimConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    #: Repeat the run once per seed (trainer.seed is replaced), as the paper reports mean ± std.
    seeds: list[int] | None = None

    @model_validator(mode="after")
    def _seeds_unique(self) -> RunConfig:
        if self.seeds is not None and (not self.seeds or len(set(self.seeds)) != len(self.seeds)):
            raise ValueError("seeds must be a non-empty list of distinct integers")
        return self

    def with_seed(self, seed: int) -> RunConfig:
        """The single-seed config of one repeat."""
        out = self.model_copy(deep=True)
        out.trainer.seed = seed
        out.seeds = None
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def known_datasets() -> tuple[str, ...]:
    """Beat datasets of the data registry, then the record datasets (the record task)."""
    from ecgfusion.data.registry import BEAT_DATASETS

    return (*BEAT_DATASETS, *RECORD_DATASETS)


def validate_config(raw: Any, source: str = "config") -> RunConfig:
    require_mapping(raw, source, "a run config")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, source, RunConfig)) from None


def apply_override(raw: dict[str, Any], text: str) -> None:
    """Apply one ``a.b=value`` override in place; the value is read as YAML (1e-3, true, [1, 2]).
    Under data.* a key of either kind passes here; validation then judges it for the dataset."""
    key, sep, value_text = text.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not sep or not key or any(not p for p in parts):
        raise ConfigError(f"--set {text!r}: expected KEY.PATH=VALUE, e.g. --set optim.lr=1e-3")
    check_key_path(RunConfig, parts, f"--set {text}")
    value = parse_yaml(value_text, f"--set {text}")
    set_key(raw, key, value, f"--set {text}")


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> RunConfig:
    """Read, override and validate a run config; every problem is one ConfigError line."""
    path = Path(path)
    raw = read_yaml_file(path)
    raw = require_mapping({} if raw is None else raw, str(path), "a run config")
    for override in overrides or []:
        apply_override(raw, override)
    source = f"{path}" + (" (with --set overrides)" if overrides else "")
    return validate_config(raw, source)


#: Keys that say where and how a run computes, not what it computes: a run folder whose config
#: differs from a new one only in these holds the same result, so it is reused, never retrained.
RUNTIME_KEYS: tuple[str, ...] = (
    "data.data_root",
    "data.cache_dir",
    "trainer.num_threads",
    "trainer.accelerator",
    # bf16 or fp32 arithmetic: "auto" resolves per machine, like the accelerator
    "trainer.precision",
    "trainer.eval_batch_size",
    "trainer.log_every_n_steps",
    "trainer.tensorboard",
)
#: What ``train --resume`` may change besides RUNTIME_KEYS: the budget. Everything else is in
#: the checkpoint (weights, optimiser and schedule state) and would be silently ignored.
RESUMABLE_KEYS: tuple[str, ...] = (
    "trainer.max_epochs",
    "trainer.max_time_s",
    "trainer.early_stopping",
)


#: Keys holding paths: compared as the files they name, so a relative and an absolute spelling of
#: the same folder are the same config.
PATH_KEYS: tuple[str, ...] = ("model.backbones", "model.init_from")


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(f"{p}.") for p in prefixes)


def _with_real_paths(flat: dict[str, Any]) -> dict[str, Any]:
    return {
        key: os.path.realpath(value) if isinstance(value, str) and _under(key, PATH_KEYS) else value
        for key, value in flat.items()
    }


def config_differences(
    old: RunConfig, new: RunConfig, ignore: tuple[str, ...] = RUNTIME_KEYS
) -> list[str]:
    """Dotted keys whose values differ between two configs, leaving out ``ignore`` (and the
    keys under them)."""
    a, b = (_with_real_paths(_flat(c.model_dump(mode="json"))) for c in (old, new))
    return sorted(
        key for key in a.keys() | b.keys() if a.get(key) != b.get(key) and not _under(key, ignore)
    )


def save_config(config: RunConfig, run_dir: str | os.PathLike) -> Path:
    """Write the resolved config; it is what a resume or an evaluate reads back."""
    return atomic_write_text(Path(run_dir) / CONFIG_FILE, config.to_yaml())
