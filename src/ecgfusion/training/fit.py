"""One Lightning fit into a run folder, for any task: the Trainer with its checkpoints (best
validation macro-F1, and last.ckpt every epoch), early stopping, CSV logs and progress lines;
the resume from last.ckpt; the best weights loaded back."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger

from ecgfusion.errors import ConfigError
from ecgfusion.runtime import training_precision
from ecgfusion.training.callbacks import AtomicCheckpointIO, EpochPrinter, quiet_lightning
from ecgfusion.training.checkpoints import check_checkpoint, load_checkpoint
from ecgfusion.training.config import RunConfig, save_config
from ecgfusion.training.rundir import BEST_NAME, CHECKPOINT_DIR, LAST_CKPT, LOG_DIR


def _is_tty() -> bool:
    return sys.stdout.isatty() and sys.stderr.isatty()


def device(config: RunConfig) -> torch.device:
    gpu = config.trainer.accelerator in ("auto", "gpu") and torch.cuda.is_available()
    if config.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        raise ConfigError("trainer.accelerator: 'gpu' was asked for but torch sees no CUDA device")
    return torch.device("cuda" if gpu else "cpu")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def make_trainer(
    config: RunConfig, run_dir: Path, extra_callbacks: list[Callback]
) -> tuple[L.Trainer, ModelCheckpoint]:
    tc = config.trainer
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / CHECKPOINT_DIR,
        filename=BEST_NAME,
        monitor="val_macro_f1",
        mode="max",
        save_top_k=1,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    # Lightning's save_last only refreshes last.ckpt in an epoch that also saved a new best, so a
    # kill after a few epochs without improvement would lose them all. A second, monitor-less
    # checkpoint overwrites last.ckpt at the end of every epoch instead.
    latest = ModelCheckpoint(
        dirpath=run_dir / CHECKPOINT_DIR,
        filename=Path(LAST_CKPT).stem,
        save_top_k=1,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    callbacks: list[Callback] = [checkpoint, latest]
    if tc.early_stopping is not None:
        monitor = tc.early_stopping.monitor
        callbacks.append(
            EarlyStopping(
                monitor=monitor,
                mode="min" if monitor == "val_loss" else "max",
                patience=tc.early_stopping.patience,
            )
        )
    tty = _is_tty()
    callbacks.append(RichProgressBar() if tty else EpochPrinter())
    loggers: list[Any] = [CSVLogger(save_dir=run_dir, name=LOG_DIR)]
    if tc.tensorboard:
        try:
            from lightning.pytorch.loggers import TensorBoardLogger

            loggers.append(TensorBoardLogger(save_dir=run_dir, name="tensorboard"))
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"trainer.tensorboard: true needs the tensorboard package ({exc}); "
                "pip install tensorboard or set it to false"
            ) from None
    accelerator = "cpu" if device(config).type == "cpu" else "gpu"
    trainer = L.Trainer(
        max_epochs=tc.max_epochs,
        max_time=None if tc.max_time_s is None else datetime.timedelta(seconds=tc.max_time_s),
        val_check_interval=None if tc.val_per_epoch == 1 else 1.0 / tc.val_per_epoch,
        gradient_clip_val=tc.gradient_clip_val,
        accelerator=accelerator,
        devices=1,
        precision=training_precision(tc.precision, device(config).type),
        deterministic=tc.deterministic,
        log_every_n_steps=tc.log_every_n_steps,
        callbacks=[*callbacks, *extra_callbacks],
        logger=loggers,
        enable_progress_bar=tty,
        enable_model_summary=tty,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=run_dir,
    )
    return trainer, checkpoint


def fit_best(
    config: RunConfig,
    run_dir: Path,
    module: L.LightningModule,
    make_datamodule: Callable[[], L.LightningDataModule],
    resume: bool,
    callbacks: Sequence[Callback] = (),
) -> tuple[L.Trainer, ModelCheckpoint, float, dict]:
    """Fit ``module`` into ``run_dir`` (continuing last.ckpt on a resume) and load its best
    checkpoint back; returns (trainer, checkpoint callback, fit seconds, best checkpoint).

    ``make_datamodule`` runs inside the timed fit, so what it prepares (the frozen fusion
    backbones' outputs) counts as training time.
    """
    last = run_dir / CHECKPOINT_DIR / LAST_CKPT
    if resume:
        check_checkpoint(last, module)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir)
    with quiet_lightning():
        trainer, checkpoint = make_trainer(config, run_dir, list(callbacks))
        start = time.perf_counter()
        trainer.fit(
            module,
            datamodule=make_datamodule(),
            ckpt_path=last if resume else None,
            weights_only=True,  # checked by check_checkpoint above; never a full unpickle
        )
        seconds = time.perf_counter() - start
    best_path = Path(checkpoint.best_model_path) if checkpoint.best_model_path else last
    best = load_checkpoint(best_path)
    module.load_state_dict(best["state_dict"])
    return trainer, checkpoint, seconds, best


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """trainer.num_threads for this run only (several processes on few cores: use 1)."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def add_fit_timing(
    timing: dict[str, Any], train_seconds: float, trainer: L.Trainer, resume: bool
) -> dict[str, Any]:
    """What every run's metrics.json records about its fit, next to the test timing."""
    timing.update(
        {
            "train_seconds": round(train_seconds, 2),
            "epochs_trained": int(trainer.current_epoch),
            "resumed": resume,
        }
    )
    return timing
