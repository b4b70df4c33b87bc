"""`train` and `evaluate`: from a run config to a run folder, and back to its metrics.

One pipeline for every task (ecgfusion.training.tasks): seed, datamodule, model, Lightning fit
(ecgfusion.training.fit), model.pt, test scores, metrics.json, report and figures. The run
folder's layout is in ecgfusion.training.rundir. Test metrics are always computed from
``model.pt`` by the task's one scoring function, so ``evaluate`` gives the numbers ``train`` wrote.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from ecgfusion.evaluation.plots import epoch_history
from ecgfusion.evaluation.report import METRICS_FILE, read_metrics
from ecgfusion.io import set_aside, sweep_stale_temporaries
from ecgfusion.training.config import CONFIG_FILE, RunConfig, save_config
from ecgfusion.training.fit import add_fit_timing, fit_best, torch_threads
from ecgfusion.training.rundir import (
    CHECKPOINT_DIR,
    LAST_CKPT,
    LOG_DIR,
    METRICS_FORMAT,
    MODEL_FILE,
    check_run_dir,
    model_file,
    read_run_config,
    resume_point,
    seed_dir,
    write_figures,
)
from ecgfusion.training.scoring import METRICS_TOLERANCE, metrics_difference
from ecgfusion.training.tasks.base import Task
from ecgfusion.training.tasks.select import task_for


def train(
    config: RunConfig,
    run_dir: str | os.PathLike,
    resume: bool = False,
    data: Any = None,
    callbacks: list[Callback] | None = None,
) -> dict[str, Any]:
    """Train a config into ``run_dir``: one run, or one ``seed_<s>/`` run per seed + a summary.

    ``data`` is the task's loaded dataset (a BeatSet, PtbxlRecords), to share it between calls;
    with several seeds it is loaded once. A resume skips finished seeds, continues an
    interrupted one from its last checkpoint and starts the ones never begun.
    """
    sweep_stale_temporaries(run_dir, depth=3)  # what a killed run left half-written
    if not config.seeds:
        return train_run(config, run_dir, resume, data, callbacks)
    run_dir = Path(run_dir)
    check_run_dir(run_dir, resume)
    task = task_for(config)
    task.check(config)
    if data is None:
        data = task.load_data(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir)
    results = {}
    for seed in config.seeds:
        sub = seed_dir(run_dir, seed)
        again = resume and (sub / CHECKPOINT_DIR / LAST_CKPT).is_file()
        if resume and sub.is_dir() and not again and not (sub / METRICS_FILE).is_file():
            # Stopped before its first checkpoint: start the seed over, the old folder kept aside.
            set_aside(sub, "unfinished")
        results[seed] = train_run(config.with_seed(seed), sub, again, data, callbacks)
    summary = task.write_summary(run_dir, results)
    return {"summary": summary, "runs": results}


def train_run(
    config: RunConfig,
    run_dir: str | os.PathLike,
    resume: bool = False,
    data: Any = None,
    callbacks: list[Callback] | None = None,
) -> dict[str, Any]:
    """Train one seed into ``run_dir``; returns what metrics.json holds."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir, resume)
    task = task_for(config)
    task.check(config)
    finished = resume_point(run_dir, config, resume)
    if finished is not None:
        return finished
    with torch_threads(config.trainer.num_threads):
        return _train_run(task, config, run_dir, resume, data, callbacks)


def _fit(
    task: Task,
    config: RunConfig,
    run_dir: Path,
    resume: bool,
    data: Any,
    callbacks: list | None,
    parts: tuple[str, ...] | None = None,
) -> tuple[Any, L.LightningModule, L.Trainer, Any, float, dict]:
    """Seed, data, model and module from the task, then the fit; returns
    (datamodule, module, trainer, checkpoint callback, fit seconds, best checkpoint)."""
    L.seed_everything(config.trainer.seed, workers=True, verbose=False)
    dm = task.datamodule(config, data, parts=parts)
    model = task.build_model(config, dm)
    module = task.module(config, model, dm)
    trainer, checkpoint, seconds, best = fit_best(
        config,
        run_dir,
        module,
        lambda: task.fit_datamodule(config, model, dm),
        resume,
        callbacks or (),
    )
    return dm, module, trainer, checkpoint, seconds, best


def _train_run(
    task: Task, config: RunConfig, run_dir: Path, resume: bool, data: Any, callbacks: list | None
) -> dict[str, Any]:
    from ecgfusion.models import save_model

    dm, module, trainer, checkpoint, train_seconds, best = _fit(
        task, config, run_dir, resume, data, callbacks
    )
    best_epoch = int(best.get("epoch", -1)) + 1
    best_score = checkpoint.best_model_score
    best_f1 = float(best_score) if best_score is not None else None
    card = {**task.model_card(config, dm), "best_epoch": best_epoch, "val_macro_f1": best_f1}
    save_model(module.model, run_dir / MODEL_FILE, extra=card)
    scored = task.score(task.load_run_model(run_dir, config, dm), dm, config)
    add_fit_timing(scored["timing"], train_seconds, trainer, resume)
    result = {
        "format": METRICS_FORMAT,
        "run": {
            "model": config.model.name,
            **task.run_section(module, dm),
            "seed": config.trainer.seed,
            "config": CONFIG_FILE,
            "best_epoch": best_epoch,
            "best_val_macro_f1": best_f1,
        },
        "data": task.data_section(config, dm),
        **scored,
        "figures": write_figures(
            run_dir, task.figure_title(config, dm), scored["metrics"], dm.class_names
        ),
    }
    task.write_report(run_dir, result)
    return result


def fit_validation(
    config: RunConfig,
    run_dir: str | os.PathLike,
    data: Any = None,
    callbacks: list[Callback] | None = None,
) -> dict[str, Any]:
    """Fit on the training part and judge on validation only: the test part is never loaded.

    What a hyper-parameter study calls per trial. Returns the best epoch's validation macro-F1,
    the per-epoch history (from the CSV log), the epochs run and the fit's seconds; the run
    folder gets config.yaml, checkpoints and logs but no model.pt or test metrics.
    """
    run_dir = Path(run_dir)
    check_run_dir(run_dir, resume=False)
    task = task_for(config)
    task.check(config)
    with torch_threads(config.trainer.num_threads):
        _, _, trainer, checkpoint, seconds, best = _fit(
            task, config, run_dir, False, data, callbacks, parts=("train", "val")
        )
    score = checkpoint.best_model_score
    return {
        "best_val_macro_f1": float(score) if score is not None else None,
        "best_epoch": int(best.get("epoch", -1)) + 1,
        "epochs_trained": int(trainer.current_epoch),
        "train_seconds": round(seconds, 2),
        "history": epoch_history(run_dir / LOG_DIR).reset_index().to_dict("records"),
    }


def evaluate(run_dir: str | os.PathLike, data: Any = None) -> dict[str, Any]:
    """Recompute the test metrics of a run from its config.yaml and model.pt.

    Returns ``{"metrics", "timing", "reproduced", "difference", "split_label", ...}`` (record
    runs add ``validation`` and ``note``): ``reproduced`` says whether the metrics agree with
    metrics.json within METRICS_TOLERANCE (None when there is none; another CPU may sum in
    another order), ``difference`` the largest one found (0.0: exactly). Nothing in the run
    folder is written. A multi-seed folder returns ``{"runs": {seed: ...}}``.
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    task = task_for(config)
    task.check(config, training=False)
    if config.seeds:
        data = data if data is not None else task.load_data(config)
        return {"runs": {s: evaluate(seed_dir(run_dir, s), data) for s in config.seeds}}
    model_file(run_dir)
    with torch_threads(config.trainer.num_threads):
        dm = task.datamodule(config, data)
        scored = task.score(task.load_run_model(run_dir, config, dm), dm, config)
    stored = read_metrics(run_dir)["metrics"] if (run_dir / METRICS_FILE).is_file() else None
    # Compare what metrics.json holds (JSON round trip: tuples become lists, keys strings).
    difference = (
        None
        if stored is None
        else metrics_difference(json.loads(json.dumps(scored["metrics"])), stored)
    )
    return {
        **scored,
        "reproduced": None if difference is None else difference <= METRICS_TOLERANCE,
        "difference": difference,
        "split_label": task.split_label(dm),
        **task.notes(dm),
    }
