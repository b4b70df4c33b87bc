"""Hyper-parameter studies (`ecgfusion tune`): Optuna over a training recipe, judged on validation.

This module runs (or resumes) a study: it checks the base config, the search space
(:mod:`ecgfusion.experiments.search_space`) and the study folder before anything is trained,
then lets Optuna's TPE sampler draw trials, each
:func:`ecgfusion.training.trainer.fit_validation` in its own ``trial_NNNN/`` folder, pruned by
validation score along the way, and writes the result files
(:mod:`ecgfusion.experiments.tune_results`). A trial trains on the training part and scores the
validation part only; the test part is never loaded, so a study cannot leak the numbers
``ecgfusion train`` later reports. The study folder::

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
import fcntl
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
from lightning.pytorch.callbacks import Callback
from optuna.trial import FrozenTrial, TrialState

from ecgfusion.data.beats import BeatSet
from ecgfusion.errors import ConfigError
from ecgfusion.experiments.search_space import (
    SearchSpace,
    check_space,
    load_space,
    trial_config,
)
from ecgfusion.experiments.tune_results import (
    INTERRUPTED,
    format_cell,
    trial_seconds,
    write_results,
)
from ecgfusion.io import atomic_write_text
from ecgfusion.training.config import (
    RECORD_DATASETS,
    RunConfig,
    config_differences,
    load_config,
)

STUDY_FILE = "study.db"
STUDY_NAME = "ecgfusion-tune"
SPACE_FILE = "space.yaml"
BASE_FILE = "base_config.yaml"
COMMAND_FILE = "command.txt"
LOCK_FILE = ".tune.lock"

#: Trial states that count toward --trials (a FAIL is retried by the next trial).
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def check_base(base: RunConfig, source: str = "config") -> None:
    """What a study needs of its base config, judged without data."""
    from ecgfusion.training.tasks.beat_models import check_model_section, run_model_file

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
            run_model_file(
                getattr(base.model.backbones, key),
                f"model.backbones.{key}",
                "train the backbone first and give its run folder",
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
                    config, run_dir / trial_dir_name(trial.number), data=beats, callbacks=[pruning]
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
            seconds = trial_seconds(trial)
            say(f"trial {trial.number}: {trial.state.name}{value} ({seconds} s) {shown}")

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
