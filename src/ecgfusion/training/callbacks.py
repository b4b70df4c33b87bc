"""Lightning callbacks and plugins every fit uses: atomic checkpoints and plain progress lines."""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ecgfusion.io import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """A kill while saving leaves the previous checkpoint, never a truncated one."""

    def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Any = None) -> None:
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


class EpochPrinter(Callback):
    """Plain lines instead of a progress bar when there is no terminal (logs, CI, pipes).

    One line per epoch, printed when the next one starts (or training ends): the module logs the
    epoch's training metrics after the callbacks' ``on_train_epoch_end`` has run. Long epochs
    also get a progress line every ``every_s`` seconds, so a log never looks hung.
    """

    KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1")

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self._start = self._shown = time.perf_counter()
        self._pending: tuple[int, float] | None = None

    def _flush(self, trainer: L.Trainer) -> None:
        if self._pending is None:
            return
        epoch, seconds = self._pending
        m = trainer.callback_metrics
        shown = " ".join(f"{k}={float(m[k]):.4f}" for k in self.KEYS if k in m)
        print(f"epoch {epoch + 1}/{trainer.max_epochs} {shown} ({seconds:.1f} s)", flush=True)
        self._pending = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer)
        self._start = self._shown = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if now - self._shown >= self.every_s:
            self._shown = now
            total = trainer.num_training_batches
            rate = (batch_idx + 1) / (now - self._start)
            print(
                f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: batch "
                f"{batch_idx + 1}/{total} ({rate:.1f} batches/s)",
                flush=True,
            )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._pending = (trainer.current_epoch, time.perf_counter() - self._start)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Drop Lightning's banners and hints that do not apply to in-memory tensor batches."""
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for message in (
                ".*does not have many workers.*",
                ".*exists and is not empty.*",
                ".*smaller than the logging interval.*",
                ".*LeafSpec.*",
                ".*module\\(s\\) in eval mode.*",  # frozen fusion backbones, on purpose
            ):
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        logger.setLevel(level)
