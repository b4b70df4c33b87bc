"""The task interface the trainer is driven by (PyHealth's idea): a task knows its data, its
model's inputs, its loss and metrics and its report; the trainer runs the one pipeline."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from torch import nn

from ecgfusion.errors import ConfigError, DataError
from ecgfusion.training.config import CONFIG_FILE, RunConfig
from ecgfusion.training.rundir import model_file


class Task(abc.ABC):
    """One family of classification problems, e.g. beats (multiclass) or records (binary or
    multi-label). Every method takes the run config; ``dm`` is what :meth:`datamodule` built."""

    @abc.abstractmethod
    def check(self, config: RunConfig, training: bool = True) -> None:
        """Refuse what can be judged without data (runs before anything is loaded).
        ``training=False``: the config of a saved model about to be scored (its model.pt holds
        everything it was built from, e.g. a fusion's backbones)."""

    @abc.abstractmethod
    def load_data(self, config: RunConfig) -> Any:
        """The whole prepared dataset, loaded once and shared by the seeds of a run."""

    @abc.abstractmethod
    def datamodule(
        self, config: RunConfig, data: Any = None, parts: Sequence[str] | None = None
    ) -> L.LightningDataModule:
        """The config's split in memory; ``parts`` keeps only those (a study never loads test)."""

    def build_model(self, config: RunConfig, dm: Any) -> nn.Module:
        """The config's model, sized from the data (:func:`sized_model`)."""
        return sized_model(config, dm)

    def check_fits(self, model: nn.Module, dm: Any, what: str) -> None:
        """Raise DataError when a saved ``model`` cannot be used on this data."""
        check_sizes(model, dm, what)

    @abc.abstractmethod
    def module(self, config: RunConfig, model: nn.Module, dm: Any) -> L.LightningModule:
        """The LightningModule that trains ``model``: loss, metrics, optimiser."""

    def fit_datamodule(self, config: RunConfig, model: nn.Module, dm: Any) -> Any:
        """The data the fit sees (a task may precompute inputs); timed as training."""
        return dm

    @abc.abstractmethod
    def score(self, model: nn.Module, dm: Any, config: RunConfig) -> dict[str, Any]:
        """``{"metrics", "timing", ...}`` of ``model`` on the test part."""

    @abc.abstractmethod
    def model_card(self, config: RunConfig, dm: Any) -> dict[str, Any]:
        """What model.pt records about the data it was trained on."""

    def run_section(self, module: L.LightningModule, dm: Any) -> dict[str, Any]:
        """Task-specific entries of metrics.json's ``run``."""
        return {}

    @abc.abstractmethod
    def data_section(self, config: RunConfig, dm: Any) -> dict[str, Any]:
        """metrics.json's ``data``: dataset, split, class counts."""

    @abc.abstractmethod
    def split_label(self, dm: Any) -> str:
        """The split in words, for tables."""

    def notes(self, dm: Any) -> dict[str, Any]:
        """Extra entries an evaluate returns (a subset note, say)."""
        return {}

    @abc.abstractmethod
    def figure_title(self, config: RunConfig, dm: Any) -> str:
        """The title of the run's learning curves and confusion matrix."""

    @abc.abstractmethod
    def write_report(self, run_dir: Path, result: dict[str, Any]) -> None:
        """report.md from what metrics.json holds."""

    @abc.abstractmethod
    def write_summary(self, run_dir: Path, results: dict[int, dict[str, Any]]) -> dict[str, Any]:
        """summary.json and summary.md of several seeds' results."""

    def load_run_model(self, run_dir: Path, config: RunConfig, dm: Any) -> nn.Module:
        """A run folder's model.pt, checked against its config and this data."""
        from ecgfusion.models import load_model

        file = model_file(run_dir)
        model = load_model(file)
        name = (getattr(model, "spec", None) or {}).get("name")
        if name != config.model.name:
            raise DataError(
                f"{file} holds model {name!r} but {run_dir / CONFIG_FILE} names "
                f"{config.model.name!r}; the run folder was mixed up, train it again"
            )
        self.check_fits(model, dm, str(file))
        return model


def sized_model(config: RunConfig, dm: Any, **modules: nn.Module) -> nn.Module:
    """The config's model with the sizes the data gives (``dm.model_sizes``: n_classes,
    n_samples, sampling_rate and, for records, n_leads and n_meta): one signature for every
    model. A model.params key the data also gives must agree with it."""
    from ecgfusion.models import create_model

    params = dict(config.model.params)
    for key, value in dm.model_sizes.items():
        if key in params and params.pop(key) != value:
            names = ", ".join(dm.class_names)
            given = f"{value} classes ({names})" if key == "n_classes" else value
            raise ConfigError(
                f"model.params.{key}={config.model.params[key]} but {dm.description} give "
                f"{given}; remove the key (it comes from the data)"
            )
    return create_model(config.model.name, **dm.model_sizes, **params, **modules)


def check_sizes(model: nn.Module, dm: Any, what: str) -> None:
    """DataError when ``model`` was built for other sizes than ``dm.model_sizes``."""
    want = dm.model_sizes
    got = {key: getattr(model, key, None) for key in want}
    if got != want:
        diff = ", ".join(f"{k} {got[k]} (data: {v})" for k, v in want.items() if got[k] != v)
        raise DataError(
            f"{what} does not fit {dm.description}: {diff}; use a model trained on the same "
            "data, or train it again"
        )
