"""Beat models from a run config: sized from the beats, fusion backbones loaded from their run
folders, warm starts, and the frozen backbones' outputs computed once for a fusion fit."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from ecgfusion.errors import ConfigError, DataError
from ecgfusion.training.config import RunConfig
from ecgfusion.training.datamodule import BeatDataModule
from ecgfusion.training.fit import device
from ecgfusion.training.module import BeatClassifier
from ecgfusion.training.rundir import MODEL_FILE
from ecgfusion.training.tasks.base import check_sizes, sized_model


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
    """The trained branches a fusion config names (1D, 2D and, if given, the rhythm model),
    checked against the data."""
    backbones = config.model.backbones
    if backbones is None:
        return {}
    out = {}
    from ecgfusion.models.fusion import BRANCHES

    for key in BRANCHES:  # the fusion's own branch order
        if getattr(backbones, key) is None:
            continue
        file = run_model_file(
            getattr(backbones, key),
            f"model.backbones.{key}",
            "train the backbone first and give its run folder",
        )
        model = _load_model_file(file)
        check_sizes(model, dm, f"model.backbones.{key} ({file})")
        out[key] = model
    return out


def check_model_section(config: RunConfig, training: bool = True) -> None:
    """What can be judged about model.* without data: run before anything is loaded. A saved
    fusion (``training=False``) needs no backbone folders: its model.pt holds them."""
    from ecgfusion.models.fusion import FusionModel
    from ecgfusion.models.registry import model_class

    is_fusion = issubclass(model_class(config.model.name), FusionModel)
    if config.model.backbones is not None and not is_fusion:
        raise ConfigError(
            f"model.backbones is only for fusion models; {config.model.name!r} has no backbones"
        )
    frozen = config.model.params.get("freeze", True) and training
    if is_fusion and config.model.backbones is None and frozen:
        raise ConfigError(
            f"model.backbones: {config.model.name!r} with frozen backbones needs the run folders "
            "of the trained backbone_1d and backbone_2d (or model.params.freeze: false to train "
            "fresh ones jointly)"
        )
    backbones = config.model.backbones
    if is_fusion and frozen and config.model.params.get("rhythm") and (
        backbones is None or backbones.backbone_rr is None
    ):
        raise ConfigError(
            f"model.backbones.backbone_rr: {config.model.name!r} with a frozen rhythm branch "
            "needs the run folder of a trained rhythm_mlp (or model.params.freeze: false)"
        )


def build_model(config: RunConfig, dm: BeatDataModule) -> nn.Module:
    """The config's model for this data, fusion backbones loaded from their run folders.

    A resume loads the backbones too: their weights are then replaced by the checkpoint's, but
    their hyper-parameters decide the shapes the checkpoint must fit.
    """
    model = sized_model(config, dm, **load_backbones(config, dm))
    missing = [k for k in getattr(model, "inputs", ("x",)) if k not in dm.inputs]
    if missing:
        raise DataError(
            f"model {config.model.name!r} reads {', '.join(missing)}, which {dm.description} "
            "do not carry; rhythm models need beats with RR features (data.dataset: mitdb)"
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
    model.to(device(config))
    return dm.with_inputs(
        {
            part: model.cache_backbone_outputs(dm.tensors[part][0], config.trainer.eval_batch_size)
            for part in ("train", "val")
        }
    )
