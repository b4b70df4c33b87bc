"""Model files: the registry name, the constructor kwargs and the weights, written atomically."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from ecgfusion.errors import ConfigError, DataError
from ecgfusion.io import atomic_write_bytes
from ecgfusion.models.registry import create_model

FORMAT = "ecgfusion-model/1"


def save_model(model: nn.Module, path: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write {"format", "name", "kwargs", "state_dict", "extra"}; ``extra`` must be plain data.

    Only models made by ``create_model`` (or ``load_model``) can be saved: their ``spec`` is what
    rebuilds them. A fusion model's file holds its backbones' weights and hyper-parameters, so it
    loads on its own.
    """
    spec = getattr(model, "spec", None)
    if not spec:
        raise ConfigError(
            f"cannot save {type(model).__name__} to {path}: it has no spec; "
            "build it with ecgfusion.models.create_model"
        )
    payload = {
        "format": FORMAT,
        "name": spec["name"],
        "kwargs": spec["kwargs"],
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": dict(extra or {}),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def read_model_file(path: str | os.PathLike) -> dict:
    """The checked payload of a model file (weights loaded on CPU, no code executed)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"model file {path} does not exist; train or save a model there first")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError) as exc:
        raise DataError(
            f"model file {path} is corrupt or not a torch file ({type(exc).__name__}); "
            "save it again with ecgfusion.models.save_model"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise DataError(
            f"model file {path} is not an {FORMAT} file (found {found!r}); "
            "save it with ecgfusion.models.save_model"
        )
    missing = [k for k in ("name", "kwargs", "state_dict") if k not in payload]
    if missing:
        raise DataError(f"model file {path} lacks {', '.join(missing)}; save it again")
    return payload


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a saved model in eval mode; ``model.extra`` holds what was saved with it."""
    payload = read_model_file(path)
    try:
        model = create_model(payload["name"], **payload["kwargs"])
    except ConfigError as exc:
        raise DataError(f"model file {path} cannot be rebuilt: {exc}") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise DataError(
            f"model file {path} does not match model {payload['name']!r}: "
            f"{' '.join(first[:3])}"
        ) from None
    model.extra = payload.get("extra", {})
    return model.to(map_location).eval()
