"""`train` and `evaluate`: from a run config to a run folder, and back to its metrics.

A run folder holds everything needed to judge, resume or reuse a run::

    config.yaml            the resolved config (what --resume and evaluate read back)
    checkpoints/best.ckpt  best validation macro-F1;  checkpoints/last.ckpt  end of the last epoch
    model.pt               best weights via ecgfusion.models.save_model (fusion configs load it)
    metrics.json report.md learning_curves.png confusion_matrix.png   logs/version_N/metrics.csv

Test metrics are always computed from ``model.pt`` by the same function, so ``evaluate`` gives
exactly the numbers ``train`` wrote.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import pickle
import platform
import sys
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import Tensor, nn

from ecgfusion.data.beats import BeatSet
from ecgfusion.errors import ConfigError, DataError
from ecgfusion.evaluation.metrics import classification_metrics
from ecgfusion.evaluation.plots import (
    CONFUSION_FILE,
    CURVES_FILE,
    epoch_history,
    plot_confusion_matrix,
    plot_learning_curves,
)
from ecgfusion.evaluation.report import METRICS_FILE, read_metrics, write_report, write_summary
from ecgfusion.io import atomic_path, set_aside, sweep_stale_temporaries
from ecgfusion.runtime import training_precision
from ecgfusion.training.config import (
    CONFIG_FILE,
    RESUMABLE_KEYS,
    RUNTIME_KEYS,
    RunConfig,
    config_differences,
    load_config,
    save_config,
)
from ecgfusion.training.datamodule import BeatDataModule, load_config_beats, prepare_split
from ecgfusion.training.module import CKPT_MODEL_KEY, BeatClassifier

MODEL_FILE = "model.pt"
CHECKPOINT_DIR = "checkpoints"
LAST_CKPT = "last.ckpt"
BEST_NAME = "best"
LOG_DIR = "logs"
METRICS_FORMAT = "ecgfusion-metrics/1"


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
def _quiet_lightning() -> Iterator[None]:
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


def _is_tty() -> bool:
    return sys.stdout.isatty() and sys.stderr.isatty()


def _device(config: RunConfig) -> torch.device:
    gpu = config.trainer.accelerator in ("auto", "gpu") and torch.cuda.is_available()
    if config.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        raise ConfigError("trainer.accelerator: 'gpu' was asked for but torch sees no CUDA device")
    return torch.device("cuda" if gpu else "cpu")


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


# --------------------------------------------------------------------------- data and model


def build_datamodule(
    config: RunConfig, beats: BeatSet | None = None, parts: Sequence[str] | None = None
) -> BeatDataModule:
    """The config's split in memory; ``parts`` keeps only those (a study never loads "test")."""
    prepared = prepare_split(config.data, beats)
    if parts is not None:
        prepared.index = {p: prepared.index[p] for p in parts}
    return BeatDataModule(
        prepared,
        batch_size=config.trainer.batch_size,
        eval_batch_size=config.trainer.eval_batch_size,
        seed=config.trainer.seed,
        balanced_sampler=config.trainer.class_weights == "sampler",
    )


def check_model_fits(model: nn.Module, dm: BeatDataModule, what: str) -> None:
    """A model trained for other classes or another beat length cannot be used on these beats."""
    n_classes, n_samples = getattr(model, "n_classes", None), getattr(model, "n_samples", None)
    if n_classes != dm.n_classes or n_samples != dm.n_samples:
        raise DataError(
            f"{what} was built for {n_classes} classes and {n_samples} samples per beat, but "
            f"{dm.beats.dataset} ({dm.beats.method}) has {dm.n_classes} classes "
            f"({', '.join(dm.class_names)}) and {dm.n_samples} samples; use a model trained on "
            "the same dataset and beat method"
        )


def _load_model_file(path: Path) -> nn.Module:
    from ecgfusion.models import load_model

    return load_model(path)


def run_model_file(path: str | os.PathLike, key: str, fix: str) -> Path:
    """The model.pt a config key names (a run folder or the file itself), or a DataError."""
    path = Path(path).expanduser()
    file = path / MODEL_FILE if path.is_dir() else path
    if not file.is_file():
        raise DataError(f"{key}: {file} not found; {fix}")
    return file


def load_backbones(config: RunConfig, dm: BeatDataModule) -> dict[str, nn.Module]:
    """The two trained backbones a fusion config names, checked against the data."""
    backbones = config.model.backbones
    if backbones is None:
        return {}
    out = {}
    for key in ("backbone_1d", "backbone_2d"):
        file = run_model_file(
            getattr(backbones, key),
            f"model.backbones.{key}",
            "train the backbone first and give its run folder",
        )
        model = _load_model_file(file)
        check_model_fits(model, dm, f"model.backbones.{key} ({file})")
        out[key] = model
    return out


def check_model_section(config: RunConfig) -> None:
    """What can be judged about model.* without data: run before anything is loaded."""
    from ecgfusion.models.fusion import FusionModel
    from ecgfusion.models.registry import model_class

    is_fusion = issubclass(model_class(config.model.name), FusionModel)
    if config.model.backbones is not None and not is_fusion:
        raise ConfigError(
            f"model.backbones is only for fusion models; {config.model.name!r} has no backbones"
        )
    if is_fusion and config.model.backbones is None and config.model.params.get("freeze", True):
        raise ConfigError(
            f"model.backbones: {config.model.name!r} with frozen backbones needs the run folders "
            "of the trained backbone_1d and backbone_2d (or model.params.freeze: false to train "
            "fresh ones jointly)"
        )


def build_model(config: RunConfig, dm: BeatDataModule) -> nn.Module:
    """The config's model for this data, fusion backbones loaded from their run folders.

    A resume loads the backbones too: their weights are then replaced by the checkpoint's, but
    their hyper-parameters decide the shapes the checkpoint must fit.
    """
    from ecgfusion.models import create_model

    params = dict(config.model.params)
    if "n_classes" in params and params.pop("n_classes") != dm.n_classes:
        raise ConfigError(
            f"model.params.n_classes={config.model.params['n_classes']} but "
            f"{dm.beats.dataset} has {dm.n_classes} classes ({', '.join(dm.class_names)}); "
            "remove the key (it comes from the data)"
        )
    params.update(load_backbones(config, dm))
    model = create_model(
        config.model.name,
        n_classes=dm.n_classes,
        n_samples=dm.n_samples,
        sampling_rate=dm.sampling_rate,
        **params,
    )
    if config.model.init_from is not None:
        warm_start(model, Path(config.model.init_from))
    return model


def warm_start(model: nn.Module, path: Path) -> None:
    """Start ``model`` from the weights of a trained run of the same model (model.init_from).

    Only weights are taken, never the run's freezing: a frozen fusion stage's head and backbones
    become the starting point of a jointly trained one.
    """
    file = run_model_file(
        path, "model.init_from", "give the run folder (or model.pt) of a finished run of the model"
    )
    source = _load_model_file(file)
    name = (getattr(source, "spec", None) or {}).get("name")
    want = (getattr(model, "spec", None) or {}).get("name")
    own, theirs = model.state_dict(), source.state_dict()
    shapes_differ = {k: tuple(v.shape) for k, v in own.items()} != {
        k: tuple(v.shape) for k, v in theirs.items()
    }
    if name != want or shapes_differ:
        raise DataError(
            f"model.init_from: {file} holds model {name!r} with other weights than this run's "
            f"{want!r}; give a run of the same model and hyper-parameters"
        )
    model.load_state_dict(theirs)


def build_module(
    config: RunConfig, model: nn.Module, dm: BeatDataModule, cached_inputs: bool = False
) -> BeatClassifier:
    tc = config.trainer
    return BeatClassifier(
        model,
        config.optim,
        class_weights=dm.class_weights(tc.class_weights),
        cached_inputs=cached_inputs,
        label_smoothing=tc.label_smoothing,
        augment=config.augment,
        seed=tc.seed,
    )


def uses_backbone_cache(config: RunConfig, model: nn.Module) -> bool:
    from ecgfusion.models.fusion import FusionModel

    return config.trainer.cache_backbones and isinstance(model, FusionModel) and model.freeze


def fit_datamodule(config: RunConfig, model: nn.Module, dm: BeatDataModule) -> BeatDataModule:
    """The data the fit sees: frozen fusion backbones' outputs computed once for the training
    and validation parts (the test part is scored from model.pt on the beats, as always)."""
    if not uses_backbone_cache(config, model):
        return dm
    model.to(_device(config))
    return dm.with_inputs(
        {
            part: model.cache_backbone_outputs(dm.tensors[part][0], config.trainer.eval_batch_size)
            for part in ("train", "val")
        }
    )


# --------------------------------------------------------------------------- checkpoints


def _is_torch_archive(path: Path) -> bool:
    """A checkpoint torch.save wrote: a zip archive with one ``*/data.pkl``. Checked before
    anything in it is unpickled."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/data.pkl") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def _load_checkpoint(path: Path) -> dict:
    """A checkpoint's contents, unpickled with ``weights_only=True``: tensors and plain values
    only, never an object whose unpickling runs code (run folders are shared between people)."""
    if not _is_torch_archive(path):
        raise DataError(
            f"checkpoint {path} cannot be read (not a torch checkpoint archive); it is corrupt "
            "or not a checkpoint: start a new run"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise DataError(
            f"checkpoint {path} holds objects other than tensors and plain values; it was not "
            "written by ecgfusion and is not unpickled (it could run code): start a new run"
        ) from None
    except Exception as exc:  # any unreadable file is the same user problem
        raise DataError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}); it is corrupt or not a "
            "checkpoint: start a new run"
        ) from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise DataError(f"checkpoint {path} has no state_dict; it is not an ecgfusion checkpoint")
    if CKPT_MODEL_KEY not in ckpt:
        raise DataError(
            f"checkpoint {path} has no {CKPT_MODEL_KEY!r} entry; it is not an ecgfusion "
            "checkpoint: start a new run"
        )
    return ckpt


def check_checkpoint(path: Path, module: BeatClassifier) -> dict:
    """Refuse a checkpoint of another model before Lightning half-restores it."""
    ckpt = _load_checkpoint(path)
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
    if expected != found:
        spec = ckpt.get(CKPT_MODEL_KEY) or {}
        expected_name = (getattr(module.model, "spec", None) or {}).get("name", "?")
        raise DataError(
            f"checkpoint {path} holds model {spec.get('name', 'unknown')!r} with other weights "
            f"than the config's model {expected_name!r} "
            f"({len(set(expected) ^ set(found))} differing keys); resume it with its own "
            "config.yaml or start a new run"
        )
    return ckpt


# --------------------------------------------------------------------------- testing


@torch.no_grad()
def predict_scores(model: nn.Module, x: Tensor, batch_size: int, device: torch.device) -> Tensor:
    """Class scores [n, C] in float32 on the CPU, batch by batch, model in eval mode."""
    model.eval().to(device)
    return torch.cat([model(xb.to(device)).scores.float().cpu() for xb in x.split(batch_size)])


def score_test_part(
    model: nn.Module, dm: BeatDataModule, config: RunConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics, timing) of ``model`` on the test part.

    A frozen fusion's backbones give every fusion stage built on them the same test outputs, so
    those are computed by the first stage and reused (keyed by the weights' and beats' hashes;
    equal to running model.pt on the beats). Its test time then covers the head only, and
    ``timing["test_backbones_reused"]`` says so.
    """
    device = _device(config)
    x, y = dm.tensors["test"]
    batch = config.trainer.eval_batch_size
    reused = False
    start = time.perf_counter()
    if uses_backbone_cache(config, model):
        model.eval().to(device)
        packed = model.cache_backbone_outputs(x, batch)
        reused = model.last_cache_hit
        with torch.no_grad():
            scores = torch.cat(
                [model.fuse_packed(p.to(device)).scores.float().cpu() for p in packed.split(batch)]
            )
    else:
        scores = predict_scores(model, x, batch, device)
    seconds = time.perf_counter() - start
    metrics = classification_metrics(scores, y, dm.class_names)
    timing = {
        "test_inference_seconds": round(seconds, 4),
        "test_samples_per_second": round(len(y) / seconds, 1) if seconds > 0 else None,
        "test_batch_size": batch,
        "test_backbones_reused": bool(reused),
        "device": _device_name(device),
        "torch_threads": torch.get_num_threads(),
        "training_precision": training_precision(config.trainer.precision, device.type),
    }
    return metrics, timing


def _data_section(config: RunConfig, dm: BeatDataModule) -> dict[str, Any]:
    split = dm.split
    return {
        "dataset": dm.beats.dataset,
        "method": dm.beats.method,
        "protocol": split.protocol,
        "split_label": split.label,
        "intra_patient": bool(split.intra_patient),
        "split_seed": split.seed,
        "rebalance": config.data.rebalance,
        "max_beats": config.data.max_beats,
        "max_train_beats": config.data.max_train_beats,
        "max_val_beats": config.data.max_val_beats,
        "records": config.data.records,
        "n_samples": dm.n_samples,
        "sampling_rate": dm.sampling_rate,
        "class_names": list(dm.class_names),
        "counts": dm.class_counts(),
        "warnings": list(split.warnings),
    }


def _model_file(run_dir: Path) -> Path:
    file = run_dir / MODEL_FILE
    if not file.is_file():
        raise DataError(
            f"{file} not found: the run did not finish; continue it with "
            f"'ecgfusion train --resume {run_dir}'"
        )
    return file


def _load_run_model(run_dir: Path, config: RunConfig, dm: BeatDataModule) -> nn.Module:
    file = _model_file(run_dir)
    model = _load_model_file(file)
    name = (getattr(model, "spec", None) or {}).get("name")
    if name != config.model.name:
        raise DataError(
            f"{file} holds model {name!r} but {run_dir / CONFIG_FILE} names "
            f"{config.model.name!r}; the run folder was mixed up, train it again"
        )
    check_model_fits(model, dm, str(file))
    return model


# --------------------------------------------------------------------------- train


def _make_trainer(
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
    accelerator = "cpu" if _device(config).type == "cpu" else "gpu"
    trainer = L.Trainer(
        max_epochs=tc.max_epochs,
        max_time=None if tc.max_time_s is None else datetime.timedelta(seconds=tc.max_time_s),
        val_check_interval=None if tc.val_per_epoch == 1 else 1.0 / tc.val_per_epoch,
        gradient_clip_val=tc.gradient_clip_val,
        accelerator=accelerator,
        devices=1,
        precision=training_precision(tc.precision, _device(config).type),
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


def _finished_result(run_dir: Path, config: RunConfig) -> dict[str, Any] | None:
    """The stored result when this exact config already finished in ``run_dir``."""
    metrics_file, config_file = run_dir / METRICS_FILE, run_dir / CONFIG_FILE
    if not (metrics_file.is_file() and config_file.is_file()):
        return None
    if config_differences(load_config(config_file), config):
        return None
    return read_metrics(run_dir)


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    """A resume needs the folder; a new run must not write into someone else's results."""
    if resume:
        if not run_dir.is_dir():
            raise DataError(f"run folder {run_dir} does not exist; nothing to resume")
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run folder {run_dir} is a file; choose another --run-dir")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise ConfigError(
            f"run folder {run_dir} is not empty; continue it with 'ecgfusion train --resume "
            f"{run_dir}' or choose another --run-dir"
        )


def train_run(
    config: RunConfig,
    run_dir: str | os.PathLike,
    resume: bool = False,
    beats: BeatSet | None = None,
    callbacks: list[Callback] | None = None,
) -> dict[str, Any]:
    """Train one seed into ``run_dir``; returns what metrics.json holds."""
    run_dir = Path(run_dir)
    _check_run_dir(run_dir, resume)
    check_model_section(config)
    finished = resume_point(run_dir, config, resume)
    if finished is not None:
        return finished
    with _torch_threads(config.trainer.num_threads):
        return _train_run(config, run_dir, resume, beats, callbacks)


def resume_point(run_dir: Path, config: RunConfig, resume: bool) -> dict[str, Any] | None:
    """On a resume, the stored result when this exact config already finished; otherwise None,
    once it is sure there is a last checkpoint to continue from."""
    if not resume:
        return None
    _check_resumable(run_dir, config)
    finished = _finished_result(run_dir, config)
    if finished is not None:
        return finished
    last = run_dir / CHECKPOINT_DIR / LAST_CKPT
    if not last.is_file():
        raise DataError(
            f"{last} not found: the run stopped before its first epoch ended; start it again"
        )
    return None


def _check_resumable(run_dir: Path, config: RunConfig) -> None:
    """A resume continues the checkpoint's weights, optimiser and schedule state: a change to
    anything but the budget (or where it runs) would be recorded and silently not applied."""
    stored = run_dir / CONFIG_FILE
    if not stored.is_file():
        return
    changed = config_differences(load_config(stored), config, RUNTIME_KEYS + RESUMABLE_KEYS)
    if changed:
        raise ConfigError(
            f"--resume {run_dir}: {', '.join(changed)} cannot change on a resume (the checkpoint "
            "holds the weights, optimiser and schedule of the stored config; a resume may change "
            f"only {', '.join(RESUMABLE_KEYS)}): start a new run, with "
            f"--set model.init_from={run_dir} to begin from this run's weights"
        )


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
    with _quiet_lightning():
        trainer, checkpoint = _make_trainer(config, run_dir, list(callbacks))
        start = time.perf_counter()
        trainer.fit(
            module,
            datamodule=make_datamodule(),
            ckpt_path=last if resume else None,
            weights_only=True,  # checked by check_checkpoint above; never a full unpickle
        )
        seconds = time.perf_counter() - start
    best_path = Path(checkpoint.best_model_path) if checkpoint.best_model_path else last
    best = _load_checkpoint(best_path)
    module.load_state_dict(best["state_dict"])
    return trainer, checkpoint, seconds, best


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """trainer.num_threads for this run only (several processes on few cores: use 1)."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_run(
    config: RunConfig, run_dir: Path, resume: bool, beats: BeatSet | None, callbacks: list | None
) -> dict[str, Any]:
    L.seed_everything(config.trainer.seed, workers=True, verbose=False)
    dm = build_datamodule(config, beats)
    model = build_model(config, dm)
    module = build_module(config, model, dm, cached_inputs=uses_backbone_cache(config, model))
    trainer, checkpoint, train_seconds, best = fit_best(
        config, run_dir, module, lambda: fit_datamodule(config, model, dm), resume, callbacks or ()
    )
    from ecgfusion.models import save_model

    best_score = checkpoint.best_model_score
    save_model(
        module.model,
        run_dir / MODEL_FILE,
        extra={
            "dataset": dm.beats.dataset,
            "method": dm.beats.method,
            "protocol": dm.split.protocol,
            "class_names": list(dm.class_names),
            "best_epoch": int(best.get("epoch", -1)) + 1,
            "val_macro_f1": float(best_score) if best_score is not None else None,
        },
    )
    metrics, timing = score_test_part(_load_run_model(run_dir, config, dm), dm, config)
    add_fit_timing(timing, train_seconds, trainer, resume)
    result = {
        "format": METRICS_FORMAT,
        "run": {
            "model": config.model.name,
            "seed": config.trainer.seed,
            "config": CONFIG_FILE,
            "best_epoch": int(best.get("epoch", -1)) + 1,
            "best_val_macro_f1": float(best_score) if best_score is not None else None,
        },
        "data": _data_section(config, dm),
        "metrics": metrics,
        "timing": timing,
        "figures": _write_figures(run_dir, config, dm, metrics),
    }
    write_report(run_dir, result)
    return result


def fit_validation(
    config: RunConfig,
    run_dir: str | os.PathLike,
    beats: BeatSet | None = None,
    callbacks: list[Callback] | None = None,
) -> dict[str, Any]:
    """Fit on the training part and judge on validation only: the test part is never loaded.

    What a hyper-parameter study calls per trial. Returns the best epoch's validation macro-F1,
    the per-epoch history (from the CSV log), the epochs run and the fit's seconds; the run
    folder gets config.yaml, checkpoints and logs but no model.pt or test metrics.
    """
    run_dir = Path(run_dir)
    _check_run_dir(run_dir, resume=False)
    check_model_section(config)
    with _torch_threads(config.trainer.num_threads):
        L.seed_everything(config.trainer.seed, workers=True, verbose=False)
        dm = build_datamodule(config, beats, parts=("train", "val"))
        model = build_model(config, dm)
        module = build_module(config, model, dm, cached_inputs=uses_backbone_cache(config, model))
        trainer, checkpoint, seconds, best = fit_best(
            config,
            run_dir,
            module,
            lambda: fit_datamodule(config, model, dm),
            False,
            callbacks or (),
        )
    score = checkpoint.best_model_score
    return {
        "best_val_macro_f1": float(score) if score is not None else None,
        "best_epoch": int(best.get("epoch", -1)) + 1,
        "epochs_trained": int(trainer.current_epoch),
        "train_seconds": round(seconds, 2),
        "history": epoch_history(run_dir / LOG_DIR).reset_index().to_dict("records"),
    }


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


def _write_figures(
    run_dir: Path, config: RunConfig, dm: BeatDataModule, metrics: dict[str, Any]
) -> list[str]:
    title = f"{config.model.name} on {dm.beats.dataset} ({dm.split.protocol})"
    return write_figures(run_dir, title, metrics, dm.class_names)


def write_figures(
    run_dir: Path, title: str, metrics: dict[str, Any], class_names: Sequence[str]
) -> list[str]:
    """Learning curves (from the CSV logs) and, when the metrics have one, the confusion matrix."""
    figures = []
    if plot_learning_curves(epoch_history(run_dir / LOG_DIR), run_dir / CURVES_FILE, title):
        figures.append(CURVES_FILE)
    if "confusion_matrix" in metrics:
        plot_confusion_matrix(
            metrics["confusion_matrix"], class_names, run_dir / CONFUSION_FILE, title
        )
        figures.append(CONFUSION_FILE)
    return figures


def seed_dir(run_dir: Path, seed: int) -> Path:
    return run_dir / f"seed_{seed}"


def train(
    config: RunConfig,
    run_dir: str | os.PathLike,
    resume: bool = False,
    beats: BeatSet | None = None,
    callbacks: list[Callback] | None = None,
) -> dict[str, Any]:
    """Train a config into ``run_dir``: one run, or one ``seed_<s>/`` run per seed + a summary.

    With several seeds the beats are loaded once; a resume skips finished seeds, continues an
    interrupted one from its last checkpoint and starts the ones never begun.
    """
    sweep_stale_temporaries(run_dir, depth=3)  # what a killed run left half-written
    if not config.seeds:
        return train_run(config, run_dir, resume, beats, callbacks)
    run_dir = Path(run_dir)
    _check_run_dir(run_dir, resume)
    check_model_section(config)
    if beats is None:
        beats = load_config_beats(config.data)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir)
    results = {}
    for seed in config.seeds:
        sub = seed_dir(run_dir, seed)
        again = resume and (sub / CHECKPOINT_DIR / LAST_CKPT).is_file()
        if resume and sub.is_dir() and not again and not (sub / METRICS_FILE).is_file():
            # Stopped before its first checkpoint: start the seed over, the old folder kept aside.
            set_aside(sub, "unfinished")
        results[seed] = train_run(config.with_seed(seed), sub, again, beats, callbacks)
    summary = write_summary(run_dir, results)
    return {"summary": summary, "runs": results}


# --------------------------------------------------------------------------- evaluate


def _read_run_config(run_dir: Path) -> RunConfig:
    if not run_dir.is_dir():
        raise DataError(f"run folder {run_dir} does not exist")
    file = run_dir / CONFIG_FILE
    if not file.is_file():
        raise DataError(f"{file} not found; {run_dir} is not an ecgfusion run folder")
    return load_config(file)


def evaluate(run_dir: str | os.PathLike, beats: BeatSet | None = None) -> dict[str, Any]:
    """Recompute the test metrics of a run from its config.yaml and model.pt.

    Returns ``{"metrics", "timing", "reproduced", "difference"}``: ``reproduced`` says whether
    the metrics agree with metrics.json within METRICS_TOLERANCE (None when there is none; another
    CPU may sum in another order), ``difference`` the largest one found (0.0: exactly). Nothing
    in the run folder is written. A multi-seed folder returns ``{"runs": {seed: ...}}``.
    """
    run_dir = Path(run_dir)
    config = _read_run_config(run_dir)
    if config.seeds:
        beats = beats if beats is not None else load_config_beats(config.data)
        return {"runs": {s: evaluate(seed_dir(run_dir, s), beats) for s in config.seeds}}
    _model_file(run_dir)
    dm = build_datamodule(config, beats)
    model = _load_run_model(run_dir, config, dm)
    metrics, timing = score_test_part(model, dm, config)
    stored = read_metrics(run_dir)["metrics"] if (run_dir / METRICS_FILE).is_file() else None
    # Compare what metrics.json holds (JSON round trip: tuples become lists, keys strings).
    difference = (
        None if stored is None else metrics_difference(json.loads(json.dumps(metrics)), stored)
    )
    return {
        "metrics": metrics,
        "timing": timing,
        "reproduced": None if difference is None else difference <= METRICS_TOLERANCE,
        "difference": difference,
        "split_label": dm.split.label,
    }


#: Largest difference of a recomputed metric (a rate) or count from the stored one that still
#: reproduces it: a borderline beat may change class on another CPU, nothing more.
METRICS_TOLERANCE = 2e-3


def metrics_difference(new: Any, old: Any) -> float:
    """The largest difference between two metric trees: rates as they are, counts as a fraction
    of the count; infinity where their structure or names differ."""
    if isinstance(new, dict) and isinstance(old, dict):
        if new.keys() != old.keys():
            return float("inf")
        return max((metrics_difference(new[k], old[k]) for k in new), default=0.0)
    if isinstance(new, list) and isinstance(old, list):
        if len(new) != len(old):
            return float("inf")
        return max((metrics_difference(a, b) for a, b in zip(new, old, strict=True)), default=0.0)
    numbers = (int, float)
    if isinstance(new, numbers) and isinstance(old, numbers) and not isinstance(new, bool):
        if new == old or (new != new and old != old):  # equal, or both NaN
            return 0.0
        if isinstance(new, int) and isinstance(old, int):
            return abs(new - old) / max(abs(old), 1000)
        return abs(float(new) - float(old))
    return 0.0 if new == old else float("inf")
