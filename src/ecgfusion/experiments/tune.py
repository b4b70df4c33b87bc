"""Hyper-parameter studies (`ecgfusion tune`): Optuna over a training recipe, judged on validation.

A study searches the *recipe* of a run config (optimiser, schedule, batch size, class weights,
label smoothing, augmentation, dropout), never the data or the architecture. The search space is
a YAML file (see ``configs/search/``)::

    objective: val_macro_f1          # validation metric, maximised
    seed: 0                          # TPE sampler seed
    sampler: {n_startup_trials: 10}  # random trials before TPE models the space
    pruner: {name: median, n_startup_trials: 3, n_warmup_steps: 1}
    params:
      optim.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
      trainer.batch_size: {type: categorical, choices: [64, 128, 256]}

Every key of ``params`` is a config key path, checked against the run-config schema with each
bound and choice before anything is trained. Each trial is
:func:`ecgfusion.training.trainer.fit_validation` in its own ``trial_NNNN/`` folder: it trains on
the training part and scores the validation part only. The test part is never loaded, so a study
cannot leak the numbers ``ecgfusion train`` later reports.

The study folder::

    study.db          the Optuna study (SQLite): running the same command again resumes it
    base_config.yaml  the run config every trial starts from (after --set)
    space.yaml        the search space, as validated
    command.txt       every command that ran the study, one per line
    trials.csv trials.md   number, state, value, each parameter, epochs, seconds
    best.yaml         the base config with the best trial's values: `ecgfusion train best.yaml`
    importance.png    parameter importance (fANOVA), once two complete trials differ
    trial_NNNN/       each trial's config.yaml, checkpoints and logs
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import optuna
import yaml
from lightning.pytorch.callbacks import Callback
from optuna.trial import FrozenTrial, TrialState
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ecgfusion.data.beats import BeatSet
from ecgfusion.errors import ConfigError, DataError
from ecgfusion.evaluation.report import markdown_table
from ecgfusion.experiments.presets import RECIPE_MODEL_PARAMS
from ecgfusion.io import atomic_path, atomic_write_text
from ecgfusion.training.config import (
    RECORD_DATASETS,
    RunConfig,
    config_differences,
    load_config,
    read_yaml_file,
    set_key,
    validate_config,
)

STUDY_FILE = "study.db"
STUDY_NAME = "ecgfusion-tune"
SPACE_FILE = "space.yaml"
BASE_FILE = "base_config.yaml"
COMMAND_FILE = "command.txt"
TRIALS_CSV = "trials.csv"
TRIALS_MD = "trials.md"
BEST_FILE = "best.yaml"
IMPORTANCE_FILE = "importance.png"
LOCK_FILE = ".tune.lock"

#: Top-level config sections whose keys a study may search: the training recipe.
SEARCHABLE_SECTIONS = ("optim", "trainer", "augment")
#: The model hyper-parameters that are part of the recipe, not the architecture (as in presets).
SEARCHABLE_MODEL_PARAMS = tuple(sorted(RECIPE_MODEL_PARAMS))
#: Recipe keys that are still not worth a search: a seed only fits the noise of one split.
UNSEARCHABLE_KEYS = ("trainer.seed",)
#: Trial states that count toward --trials (a FAIL is retried by the next trial).
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
#: The note on a trial a killed run left RUNNING, marked FAIL by the next run.
INTERRUPTED = "interrupted; marked FAIL on resume"


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


def _space_message(exc: ValidationError, source: str) -> str:
    first = exc.errors()[0]
    path = ".".join(str(p) for p in first["loc"] if not str(p).startswith(("function-", "list[")))
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
        parent = first["loc"][:-1]
        if not parent:
            msg += f"; allowed keys: {', '.join(SearchSpace.model_fields)}"
        elif parent[0] == "params":
            msg += f"; allowed keys: {', '.join(ParamSpec.model_fields)}"
    elif first["type"] == "missing":
        msg = "required key is missing"
    else:
        msg = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    return f"{source}: {path or '(top level)'}: {msg}{more}"


def load_space(path: str | os.PathLike) -> SearchSpace:
    """Read and validate a search-space YAML; every problem is one ConfigError line."""
    path = Path(path)
    raw = read_yaml_file(path, "search-space")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a search space must be a YAML mapping with a params key")
    try:
        return SearchSpace.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_space_message(exc, str(path))) from None


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


def check_base(base: RunConfig, source: str = "config") -> None:
    """What a study needs of its base config, judged without data."""
    from ecgfusion.training.trainer import MODEL_FILE, check_model_section

    if base.seeds:
        raise ConfigError(
            f"{source}: seeds: a study runs one seed per trial (trainer.seed); remove seeds"
        )
    if base.data.dataset in RECORD_DATASETS:
        raise ConfigError(
            f"{source}: data.dataset {base.data.dataset!r} is a record dataset; ecgfusion tune "
            "studies beat datasets"
        )
    check_model_section(base)
    if base.model.backbones is not None:
        for key in ("backbone_1d", "backbone_2d"):
            path = Path(getattr(base.model.backbones, key)).expanduser()
            file = path / MODEL_FILE if path.is_dir() else path
            if not file.is_file():
                raise DataError(
                    f"model.backbones.{key}: {file} not found; train the backbone first and give "
                    "its run folder"
                )


# --------------------------------------------------------------------------- pruning


class PruningCallback(Callback):
    """Report the objective to the trial after every validation pass; prune when told to.

    Not optuna_integration's PyTorchLightningPruningCallback, although it imports with
    Lightning 2.6: it reports at ``step=current_epoch``, so with ``trainer.val_per_epoch > 1``
    every pass after an epoch's first is dropped by ``trial.report`` (a step is reported once)
    and the pruner never sees them. Here the step is the validation pass: 0, 1, 2 ...
    """

    def __init__(self, trial: optuna.Trial, monitor: str):
        self.trial, self.monitor = trial, monitor
        self.step = 0
        self.epochs = 0

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:  # the pre-fit check runs a couple of batches: no score
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise RuntimeError(f"{self.monitor} was not logged; the objective cannot be reported")
        score = float(value)
        self.trial.report(score, step=self.step)
        self.step += 1
        self.epochs = trainer.current_epoch + 1
        if self.trial.should_prune():
            raise optuna.TrialPruned(
                f"pruned at validation pass {self.step} ({self.monitor}={score:.4f})"
            )


# --------------------------------------------------------------------------- the study


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial INFO lines off: tune prints its own (``progress``)."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def trial_dir_name(number: int) -> str:
    return f"trial_{number:04d}"


def storage_url(run_dir: Path) -> str:
    return f"sqlite:///{(run_dir / STUDY_FILE).resolve()}"


def check_run_dir(run_dir: Path, base: RunConfig, space: SearchSpace) -> bool:
    """Whether ``run_dir`` holds this study already (resume); refuse any other non-empty folder."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run folder {run_dir} is a file; choose another --run-dir")
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return False
    if not (run_dir / STUDY_FILE).is_file():
        raise ConfigError(
            f"run folder {run_dir} is not empty and holds no {STUDY_FILE}; it is not a study "
            "folder: choose another --run-dir"
        )
    stored_base, stored_space = run_dir / BASE_FILE, run_dir / SPACE_FILE
    if not (stored_base.is_file() and stored_space.is_file()):
        raise ConfigError(
            f"run folder {run_dir} has {STUDY_FILE} but not {BASE_FILE} and {SPACE_FILE}; "
            "choose another --run-dir"
        )
    changed = config_differences(load_config(stored_base), base)
    if changed:
        raise ConfigError(
            f"run folder {run_dir} holds a study of another config ({stored_base} differs from "
            f"this config with its --set overrides in {', '.join(changed)}); resume it with the "
            "same config or choose another --run-dir"
        )
    if not load_space(stored_space).same_search(space):
        raise ConfigError(
            f"run folder {run_dir} holds a study of another search space ({stored_space}); "
            "resume it with the same space or choose another --run-dir"
        )
    return True


@contextlib.contextmanager
def _study_lock(run_dir: Path) -> Iterator[None]:
    """One process per study folder, so a trial left RUNNING at the start was left by a kill."""
    with open(run_dir / LOCK_FILE, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"another ecgfusion tune is running in {run_dir}; wait for it or choose another "
                "--run-dir"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fail_interrupted(study: optuna.Study, storage: optuna.storages.BaseStorage) -> list[int]:
    """Mark trials a killed process left RUNNING as FAIL: they never finished and do not count."""
    study_id = storage.get_study_id_from_name(study.study_name)
    stale = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, "note", INTERRUPTED)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        stale.append(trial.number)
    return stale


def _state(trial: FrozenTrial) -> str:
    return trial.state.name


def _seconds(trial: FrozenTrial) -> float | None:
    """Wall time of a trial; unknown (None) for one a killed run left behind."""
    duration = trial.duration
    if duration is None or trial.user_attrs.get("note") == INTERRUPTED:
        return None
    return round(duration.total_seconds(), 2)


def trial_rows(study: optuna.Study, space: SearchSpace) -> list[dict[str, Any]]:
    """One row per trial: number, state, value, each parameter, epochs, seconds."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {
            "trial": trial.number,
            "state": _state(trial),
            space.objective: trial.value,
        }
        for key in space.params:
            row[key] = trial.params.get(key)
        row["epochs"] = trial.user_attrs.get("epochs")
        row["seconds"] = _seconds(trial)
        rows.append(row)
    return rows


def format_cell(value: Any, column: str = "") -> str:
    """A table cell: 4 decimals (4 significant digits for small values), seconds to 0.1 s."""
    if value is None:
        return ""
    if isinstance(value, float):
        if column == "seconds":
            return f"{value:.1f}"
        small_or_large = value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4)
        return f"{value:.4g}" if small_or_large else f"{value:.4f}"
    return str(value)


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in columns})
    return out.getvalue()


def _markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    cells = [[format_cell(row[k], k) for k in columns] for row in rows]
    return markdown_table(columns, cells).splitlines()


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(complete, key=lambda t: t.value) if complete else None


def parameter_importance(
    study: optuna.Study, space: SearchSpace
) -> tuple[dict[str, float] | None, str]:
    """fANOVA importance of the parameters that vary among complete trials, and a note."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    varying = [k for k in space.params if len({repr(t.params.get(k)) for t in complete}) > 1]
    if len(complete) < 2 or not varying:
        return None, (
            f"no parameter importance: it needs at least 2 complete trials that differ in a "
            f"parameter ({len(complete)} complete, {len(varying)} parameter(s) varied)"
        )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=space.seed)
    try:
        importance = optuna.importance.get_param_importances(
            study, evaluator=evaluator, params=varying
        )
    except (RuntimeError, ValueError) as exc:
        return None, f"no parameter importance: {exc}"
    note = (
        f"fANOVA importance of the {len(varying)} varied parameter(s) over {len(complete)} "
        "complete trials (sums to 1; with few trials it is a rough guide)"
    )
    return {k: float(v) for k, v in importance.items()}, note


def plot_importance(importance: dict[str, float], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(importance)[::-1]  # most important on top
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(names) + 1.4))
    ax.barh(names, [importance[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance (fANOVA, sums to 1)")
    ax.set_xlim(0, max(1e-9, max(importance.values())) * 1.1)
    ax.set_title(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_results(
    study: optuna.Study, space: SearchSpace, base: RunConfig, run_dir: Path, commands: list[str]
) -> dict[str, Any]:
    """trials.csv, trials.md, best.yaml and importance.png from the study as it stands."""
    rows = trial_rows(study, space)
    columns = ["trial", "state", space.objective, *space.params, "epochs", "seconds"]
    atomic_write_text(run_dir / TRIALS_CSV, _csv_text(rows, columns))
    counts = {s.name: 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1

    best = best_trial(study)
    best_info = None
    if best is not None:
        config = trial_config(base, best.params, f"best trial {best.number}")
        header = (
            f"# Best trial {best.number} of the study in {run_dir} "
            f"({space.objective}={best.value:.4f} on the validation part).\n"
            f"# Train it: ecgfusion train {run_dir / BEST_FILE}\n"
        )
        atomic_write_text(run_dir / BEST_FILE, header + config.to_yaml())
        best_info = {"trial": best.number, "value": best.value, "params": dict(best.params)}

    importance, importance_note = parameter_importance(study, space)
    if importance is not None:
        title = f"{base.model.name}: parameter importance ({counts['COMPLETE']} complete trials)"
        plot_importance(importance, run_dir / IMPORTANCE_FILE, title)

    finished = counts["COMPLETE"] + counts["PRUNED"]
    lines = [
        f"# Study of {base.model.name}: {len(space.params)} parameter(s), {finished} finished "
        "trial(s)",
        "",
        f"Objective: `{space.objective}` on the validation part, maximised. The test part is "
        "never loaded by a study.",
        f"Trials: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
        f"{counts['FAIL']} failed (TPE sampler, seed {space.seed}; pruner {space.pruner.name}). "
        "A pruned trial's value is its last validation score before it was stopped.",
        "",
    ]
    if best_info is not None:
        shown = ", ".join(f"{k}={format_cell(v)}" for k, v in best_info["params"].items())
        lines += [
            f"Best: trial {best_info['trial']}, {space.objective} = {best_info['value']:.4f} "
            f"({shown}); its config is [{BEST_FILE}]({BEST_FILE}).",
            "",
        ]
    else:
        lines += ["No trial completed yet, so there is no best.yaml.", ""]
    lines += _markdown_table(rows, columns)
    lines += ["", "## Parameter importance", "", importance_note.rstrip(".") + "."]
    if importance is not None:
        lines += ["", "| parameter | importance |", "|---|---:|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in importance.items()]
        lines += ["", f"![parameter importance]({IMPORTANCE_FILE})"]
    lines += ["", "## Commands", "", "```", *commands, "```", ""]
    atomic_write_text(run_dir / TRIALS_MD, "\n".join(lines))
    files = [TRIALS_CSV, TRIALS_MD] + ([BEST_FILE] if best_info else [])
    files += [IMPORTANCE_FILE] if importance is not None else []
    return {
        "rows": rows,
        "columns": columns,
        "counts": counts,
        "best": best_info,
        "importance": importance,
        "importance_note": importance_note,
        "files": files,
    }


def tune(
    base: RunConfig,
    space: SearchSpace,
    run_dir: str | os.PathLike,
    n_trials: int,
    timeout: float | None = None,
    beats: BeatSet | None = None,
    command: str | None = None,
    progress: Callable[[str], None] | None = None,
    source: str = "space",
) -> dict[str, Any]:
    """Run (or resume) a study in ``run_dir`` until ``n_trials`` trials have finished.

    COMPLETE and PRUNED trials of earlier runs count toward ``n_trials``; a trial a killed run
    left RUNNING is marked FAIL. ``timeout`` (seconds) stops starting new trials once it has
    passed. Everything the inputs can get wrong is checked before the folder is written.
    """
    from ecgfusion.training.datamodule import load_config_beats
    from ecgfusion.training.trainer import fit_validation

    if n_trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {n_trials}")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"--timeout must be a positive number of seconds, got {timeout}")
    run_dir = Path(run_dir)
    check_base(base)
    check_space(space, base, source)
    resume = check_run_dir(run_dir, base, space)
    if beats is None:
        beats = load_config_beats(base.data)
    say = progress or (lambda _: None)
    say(f"study folder: {run_dir}" + (" (resuming its study)" if resume else ""))

    run_dir.mkdir(parents=True, exist_ok=True)
    with _study_lock(run_dir), _quiet_optuna():
        if not resume:
            atomic_write_text(run_dir / BASE_FILE, base.to_yaml())
        atomic_write_text(run_dir / SPACE_FILE, space.to_yaml())
        command_file = run_dir / COMMAND_FILE
        commands = command_file.read_text().splitlines() if command_file.is_file() else []
        if command:
            commands.append(command)
            atomic_write_text(run_dir / COMMAND_FILE, "\n".join(commands) + "\n")

        storage = optuna.storages.RDBStorage(storage_url(run_dir))
        study = optuna.create_study(
            storage=storage,
            study_name=STUDY_NAME,
            direction="maximize",
            pruner=space.pruner.build(),
            load_if_exists=True,
        )
        stale = _fail_interrupted(study, storage)
        if stale:
            say(f"trial(s) {', '.join(map(str, stale))} were interrupted: marked FAIL")
        # A resumed study reseeds with the trials so far, so its random start-up draws are new
        # points rather than a replay of the first run's.
        n_before = len(study.trials)
        study.sampler = optuna.samplers.TPESampler(
            seed=space.seed + n_before, n_startup_trials=space.sampler.n_startup_trials
        )
        finished = len(study.get_trials(deepcopy=False, states=FINISHED))
        remaining = max(0, n_trials - finished)
        if resume:
            say(f"{finished} finished trial(s) so far, {remaining} to run")

        def objective(trial: optuna.Trial) -> float:
            values = {key: spec.suggest(trial, key) for key, spec in space.params.items()}
            config = trial_config(base, values, f"{source}: trial {trial.number}")
            trial.set_user_attr("dir", trial_dir_name(trial.number))
            pruning = PruningCallback(trial, space.objective)
            try:
                result = fit_validation(
                    config, run_dir / trial_dir_name(trial.number), beats=beats, callbacks=[pruning]
                )
            except optuna.TrialPruned:
                trial.set_user_attr("epochs", pruning.epochs)
                raise
            trial.set_user_attr("epochs", result["epochs_trained"])
            trial.set_user_attr("best_epoch", result["best_epoch"])
            value = result["best_val_macro_f1"]
            # NaN (no validation pass ran) makes Optuna mark the trial FAIL.
            return math.nan if value is None else float(value)

        def report(study: optuna.Study, trial: FrozenTrial) -> None:
            value = "" if trial.value is None else f" {space.objective}={trial.value:.4f}"
            shown = ", ".join(f"{k}={format_cell(v)}" for k, v in trial.params.items())
            say(f"trial {trial.number}: {trial.state.name}{value} ({_seconds(trial)} s) {shown}")

        start = time.perf_counter()
        if remaining:
            study.optimize(
                objective, n_trials=remaining, timeout=timeout, callbacks=[report], catch=()
            )
        results = write_results(study, space, base, run_dir, commands)
    results.update(
        {
            "run_dir": run_dir,
            "resumed": resume,
            "ran": len(study.trials) - n_before,
            "seconds": round(time.perf_counter() - start, 2),
            "files": [STUDY_FILE, BASE_FILE, SPACE_FILE]
            + ([COMMAND_FILE] if commands else [])
            + results["files"],
        }
    )
    return results


def with_seed(space: SearchSpace, seed: int | None) -> SearchSpace:
    """The space with another sampler seed (--seed); the same space when ``seed`` is None."""
    return space if seed is None else space.model_copy(update={"seed": seed})
