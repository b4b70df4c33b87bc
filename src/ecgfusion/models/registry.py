"""Models by name: the config names a model, the registry builds it and remembers how."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass

import torch
from torch import nn

from ecgfusion.errors import ConfigError, EcgFusionError
from ecgfusion.models.base import EcgModel, count_parameters

#: name -> model class; filled by :func:`register_model` as the model modules are imported.
MODELS: dict[str, type[EcgModel]] = {}

_COMMON = ("n_classes", "n_samples", "sampling_rate")


def register_model(name: str):
    """Class decorator adding a model under ``name`` (a name can be taken once)."""

    def decorate(cls: type[EcgModel]) -> type[EcgModel]:
        if name in MODELS and MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered to {MODELS[name]}")
        cls.name = name
        MODELS[name] = cls
        return cls

    return decorate


def list_models() -> list[str]:
    return sorted(MODELS)


def model_class(name: str) -> type[EcgModel]:
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; known models: {', '.join(list_models())}"
        ) from None


def accepted_params(name: str) -> list[str]:
    """The model's own hyper-parameters (constructor keywords beyond the common three)."""
    signature = inspect.signature(model_class(name).__init__)
    return [p for p in signature.parameters if p not in ("self", *_COMMON)]


def create_model(
    name: str, *, n_classes: int, n_samples: int, sampling_rate: float, **params
) -> EcgModel:
    """Build a registered model; unknown names and unknown hyper-parameters are ConfigErrors.

    The model remembers ``spec = {"name", "kwargs"}`` (JSON-able; backbone modules are replaced
    by their own specs' kwargs) so :func:`ecgfusion.models.save_model` can rebuild it.
    """
    cls = model_class(name)
    accepted = accepted_params(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"model {name!r} got unknown hyper-parameter(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted) or '(none)'}"
        )
    try:
        model = cls(n_classes=n_classes, n_samples=n_samples, sampling_rate=sampling_rate, **params)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, EcgFusionError):
            raise
        # torch's own complaint about a bad value (a string where an int belongs, a zero width).
        raise ConfigError(f"model {name!r}: bad hyper-parameter value ({exc})") from None
    kwargs = {"n_classes": n_classes, "n_samples": n_samples, "sampling_rate": sampling_rate}
    kwargs.update(model.spec_kwargs(params) if hasattr(model, "spec_kwargs") else params)
    model.spec = {"name": name, "kwargs": _jsonable(name, kwargs)}
    return model


def _jsonable(name: str, kwargs: dict) -> dict:
    """Tuples become lists; anything JSON cannot hold is a ConfigError naming the key."""
    try:
        return json.loads(json.dumps(kwargs))
    except TypeError as exc:
        raise ConfigError(
            f"model {name!r}: hyper-parameters must be plain values (numbers, strings, lists, "
            f"dicts) to be saved with the model: {exc}"
        ) from None


@dataclass(frozen=True)
class ModelSummary:
    """One row of ``ecgfusion models list``."""

    name: str
    parameters: int
    trainable: int
    inputs: dict[str, tuple]
    output: tuple
    features: tuple
    internal: dict[str, tuple]
    setting: dict


def describe_model(name: str, **setting) -> ModelSummary:
    """Build the model in its example setting (or ``setting``) and run one batch through it."""
    cls = model_class(name)
    setting = {**cls.example_setting, **setting}
    model = create_model(name, **setting)
    model.eval()
    inputs = model.input_shapes()
    batch = {k: torch.zeros(2, *shape[1:]) for k, shape in inputs.items()}
    with torch.no_grad():
        out = model(**batch)
    internal = {}
    spectrogram = _find_spectrogram(model)
    if spectrogram is not None:
        internal["spectrogram"] = spectrogram.output_shape(model.n_samples)
    return ModelSummary(
        name=name,
        parameters=count_parameters(model),
        trainable=count_parameters(model, trainable_only=True),
        inputs=inputs,
        output=("B", *out.scores.shape[1:]),
        features=("B", *out.features.shape[1:]),
        internal=internal,
        setting=setting,
    )


def _find_spectrogram(model: nn.Module):
    from ecgfusion.features.spectrogram import Spectrogram

    for module in model.modules():
        if isinstance(module, Spectrogram):
            return module
    return None
