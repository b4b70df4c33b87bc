"""Reading Lightning checkpoints safely: a zip archive check, then ``weights_only`` unpickling,
then a shape check against the module before Lightning restores anything."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import lightning as L
import torch

from ecgfusion.errors import DataError
from ecgfusion.training.module import CKPT_MODEL_KEY


def is_torch_archive(path: Path) -> bool:
    """A checkpoint torch.save wrote: a zip archive with one ``*/data.pkl``. Checked before
    anything in it is unpickled."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/data.pkl") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def load_checkpoint(path: Path) -> dict:
    """A checkpoint's contents, unpickled with ``weights_only=True``: tensors and plain values
    only, never an object whose unpickling runs code (run folders are shared between people)."""
    if not is_torch_archive(path):
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


def check_checkpoint(path: Path, module: L.LightningModule) -> dict:
    """Refuse a checkpoint of another model before Lightning half-restores it."""
    ckpt = load_checkpoint(path)
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
