"""The Python API: load a model, classify beats or a raw recording, train and evaluate.

Everything here delegates to the code behind the CLI (``ecgfusion predict | train | evaluate``),
so a beat is detected, cut and classified exactly as ``ecgfusion predict`` does it. Importing this
module is cheap: torch, wfdb and Lightning are imported by the first call that needs them.

Shapes and units:

- a **beat** is one row of ``[n, n_samples]`` float values (``n_samples`` = 187 for the shipped
  models): the ``kachuee`` cut at 125 Hz (from the R peak, 1.2 x the median RR of its 10-s window,
  min-max normalised to [0, 1], zero-padded), as in :mod:`ecgfusion.data.beats` and the Kaggle
  MIT-BIH set;
- a **signal** is one lead ``[n_samples]`` in any unit (mV as wfdb reads it) at ``fs`` Hz
  (>= 100 Hz, >= 10 s); beats are found with wfdb's XQRS and cut with the model's segmenter;
- **probabilities** are float32 ``[n, n_classes]`` softmax outputs, columns in
  ``Predictor.class_names`` order (MIT-BIH: the AAMI classes N, S, V, F, Q).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ecgfusion.errors import ConfigError, DataError, ShapeError

if TYPE_CHECKING:
    from torch import nn

    from ecgfusion.inference import predict as _predict
    from ecgfusion.inference.predict import Prediction
    from ecgfusion.models.base import EcgModel
    from ecgfusion.training.config import RunConfig

__all__ = [
    "Predictor",
    "create_model",
    "evaluate",
    "list_models",
    "list_pretrained",
    "load_config",
    "load_pretrained",
    "load_run",
    "train",
]


class Predictor:
    """A trained beat classifier with the segmenter it was trained with.

    Made by :func:`load_pretrained` or :func:`load_run`; nothing of the training set is read
    unless :meth:`seen_records` is called (or ``check_leakage=True`` was passed).
    """

    def __init__(self, predictor: _predict.Predictor, config: RunConfig, path: Path):
        self._predictor = predictor
        self._seen: frozenset[str] | None = None
        #: The run's resolved config (data, model, training recipe).
        self.config = config
        #: The run folder the model was loaded from.
        self.path = path

    @property
    def model(self) -> nn.Module:
        """The torch module: ``model(x)`` takes beats [B, n_samples] and returns a
        :class:`ecgfusion.models.ModelOutput` (``scores`` [B, n_classes] logits, ``features``)."""
        return self._predictor.model

    @property
    def class_names(self) -> tuple[str, ...]:
        """Column order of the probabilities, e.g. ``("N", "S", "V", "F", "Q")``."""
        return self._predictor.class_names

    @property
    def n_samples(self) -> int:
        """Length of one beat in samples (187 for the ``kachuee`` segmenter)."""
        return int(self._predictor.model.n_samples)

    @property
    def sampling_rate(self) -> float:
        """Sampling rate of a beat, Hz (125)."""
        from ecgfusion.data.beats import TARGET_FS

        return TARGET_FS

    @property
    def method(self) -> str:
        """The segmenter the model was trained with: ``kachuee`` or ``centered``."""
        return self._predictor.method

    @property
    def dataset(self) -> str:
        return self._predictor.dataset

    @property
    def protocol(self) -> str:
        """The split protocol it was trained under (``inter-patient`` = patient-disjoint)."""
        return self._predictor.protocol

    @property
    def source(self) -> str:
        """``pretrained:NAME`` or the run folder."""
        return self._predictor.source

    def __repr__(self) -> str:
        return (
            f"Predictor({self.source!r}, {self.config.model.name}, dataset={self.dataset}, "
            f"protocol={self.protocol}, classes={''.join(self.class_names)}, "
            f"beats=[n, {self.n_samples}] @ {self.sampling_rate:g} Hz)"
        )

    def predict_beats(self, beats: Any, *, rr: Any = None, batch_size: int = 256) -> np.ndarray:
        """Class probabilities of cut beats.

        ``beats``: array-like float ``[n, n_samples]`` (or ``[n, 1, n_samples]``), each row one
        beat cut by :attr:`method` at 125 Hz and normalised to [0, 1] (the rows of
        ``ecgfusion.data.cache.load_beats(...).signals`` or of the Kaggle CSVs).
        ``rr``: their RR features ``[n, 8]`` (``ecgfusion.features.rr.rr_features`` of the
        record's peaks, or ``load_beats(...).rr``), needed by models with a rhythm branch
        (:attr:`inputs` lists what the model reads).
        Returns float32 ``[n, n_classes]``; each row sums to 1, columns in :attr:`class_names`.
        A wrong shape is a :class:`~ecgfusion.errors.ShapeError`, NaN or inf a ``DataError``.
        """
        from ecgfusion.inference.predict import beat_probabilities

        x = self._check_beats(beats)
        features = None if rr is None else _check_rr(rr, len(x))
        return beat_probabilities(
            self._predictor, x, _check_batch_size(batch_size), rr=features
        )

    @property
    def inputs(self) -> tuple[str, ...]:
        """What the model reads: ("x",) beats, or ("x", "rr") beats and RR features."""
        return tuple(getattr(self.model, "inputs", ("x",)))

    def predict_signal(
        self, signal: Any, fs: float, *, name: str = "signal", batch_size: int = 256
    ) -> Prediction:
        """Detect, cut and classify every beat of one raw ECG lead (what ``ecgfusion predict``
        does with a recording).

        ``signal``: one lead, array-like ``[n_samples]`` (or ``[n_samples, 1]``) in any unit, at
        ``fs`` Hz (>= 100 Hz, at least 10 s). NaN and flat stretches of >= 1 s are skipped and
        listed in ``warnings``. ``name`` is the record name; it triggers the leakage warning when
        it is a record the model was trained on and :meth:`seen_records` has been computed.

        Returns an :class:`ecgfusion.inference.predict.Prediction`: ``samples`` int64 [n] (R
        peaks as indices into ``signal``), ``times`` [n] seconds, ``labels`` int64 [n] (index
        into ``class_names``), ``symbols`` [n] class names, ``probs`` float32 [n, n_classes],
        ``counts()``, ``skipped`` (beats left out), ``warnings`` and ``rr`` float32 [n, 8]
        (each beat's RR-interval features, ``ecgfusion.features.rr.RR_FEATURE_NAMES``: seconds,
        then divided by the recording's mean RR; from the detected peak sequence).
        """
        from ecgfusion.inference.predict import predict_recording

        recording = _recording(_check_signal(signal, _check_fs(fs)), float(fs), str(name))
        return predict_recording(recording, self._predictor, _check_batch_size(batch_size))

    def seen_records(self) -> frozenset[str]:
        """Records of the training and validation part of this model's split (predicting on
        them is leakage). Computed on the first call by reading and splitting the training set
        (seconds; a ``DataError`` where that data is not on this machine), then kept; from then
        on :meth:`predict_signal` warns for those record names."""
        if self._seen is None:
            from ecgfusion.inference.loading import seen_records

            self._seen = seen_records(self.config)
            self._predictor.seen_records = self._seen
        return self._seen

    def _check_beats(self, beats: Any) -> np.ndarray:
        n = self.n_samples
        expected = f"[n, {n}] ({self.method} beats at {self.sampling_rate:g} Hz)"
        x = _as_array(beats, f"predict_beats expects beats of shape {expected}")
        if x.ndim == 3 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 2 or x.shape[1] != n:
            if x.ndim == 1 and len(x) == n:
                hint = "one beat: pass beats[None]"
            elif x.ndim == 2:
                hint = (
                    f"cut them with ecgfusion.data.beats.get_segmenter({self.method!r}) at "
                    f"{self.sampling_rate:g} Hz, or pass the raw lead to predict_signal"
                )
            else:
                hint = "give one row per beat, one lead"
            raise ShapeError(
                f"predict_beats expects beats of shape {expected}, got {x.shape}; {hint}"
            )
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            raise DataError(
                f"predict_beats: {int(bad.sum())} of {len(x)} beats hold NaN or inf values "
                f"(first: row {int(np.flatnonzero(bad)[0])}); drop or repair them"
            )
        return x.astype(np.float32, copy=False)


def _as_array(data: Any, expected: str) -> np.ndarray:
    try:
        x = np.asarray(data)
    except (TypeError, ValueError) as exc:  # ragged lists
        raise ShapeError(f"{expected}, got an array-like NumPy cannot read ({exc})") from None
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number):
        raise ShapeError(f"{expected}, got an array of dtype {x.dtype} and shape {x.shape}")
    return x


def _check_fs(fs: Any) -> float:
    from ecgfusion.inference.recording import MIN_FS

    if isinstance(fs, bool) or not isinstance(fs, Real) or not math.isfinite(fs) or fs <= 0:
        raise ConfigError(
            f"fs must be a finite sampling rate in Hz (>= {MIN_FS:g}), e.g. fs=360, got {fs!r}"
        )
    if fs < MIN_FS:
        raise ConfigError(
            f"fs={fs:g} Hz is below {MIN_FS:g} Hz; QRS complexes cannot be found reliably — "
            "use a signal sampled at 100 Hz or more"
        )
    return float(fs)


def _check_signal(signal: Any, fs: float) -> np.ndarray:
    from ecgfusion.inference.recording import MIN_SECONDS

    need = math.ceil(MIN_SECONDS * fs)
    expected = f"predict_signal expects one lead of shape [n_samples] (>= {need} at {fs:g} Hz)"
    x = _as_array(signal, expected)
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        hint = "pick one lead, e.g. signal[:, 0]" if x.ndim == 2 else "give one lead"
        raise ShapeError(f"{expected}, got {x.shape}; {hint}")
    if len(x) < need:
        raise ShapeError(
            f"{expected}, got {x.shape} ({len(x) / fs:.1f} s); at least {MIN_SECONDS:g} s are "
            "needed to estimate RR intervals"
        )
    return x.astype(np.float64)


def _recording(signal: np.ndarray, fs: float, name: str):
    """A Recording of an in-memory lead, NaN/flat stretches zeroed and listed as
    :func:`ecgfusion.inference.recording.read_recording` does for a file."""
    from ecgfusion.inference.recording import recording_from_lead

    return recording_from_lead(signal, fs, name, "0", Path(name), f"predict_signal: {name}")


def _check_rr(rr: Any, n: int) -> np.ndarray:
    from ecgfusion.features.rr import N_RR_FEATURES

    expected = f"[{n}, {N_RR_FEATURES}] (one row of ecgfusion.features.rr features per beat)"
    x = _as_array(rr, f"predict_beats expects rr of shape {expected}")
    if x.shape != (n, N_RR_FEATURES):
        raise ShapeError(f"predict_beats expects rr of shape {expected}, got {x.shape}")
    if not np.isfinite(x).all():
        raise DataError("predict_beats: rr holds NaN or inf values; compute it with rr_features")
    return x.astype(np.float32, copy=False)


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def _load(run_dir: str | os.PathLike | None, pretrained: str | None, check_leakage: bool):
    from ecgfusion.inference.loading import load_predictor, resolve_run_dir
    from ecgfusion.training.config import load_config as _load_config

    path = resolve_run_dir(run_dir, pretrained)
    inner = load_predictor(run_dir, pretrained, check_leakage=False)
    predictor = Predictor(inner, _load_config(path / "config.yaml"), path)
    if check_leakage:
        predictor.seen_records()
    return predictor


def load_pretrained(name: str, *, check_leakage: bool = False) -> Predictor:
    """A model shipped with the package (:func:`list_pretrained`), e.g. ``"mitdb-late-fusion"``.

    No dataset is read. ``check_leakage=True`` also computes :meth:`Predictor.seen_records`
    (reads and splits the model's training set; a ``DataError`` where it is not on this machine).
    """
    if not isinstance(name, str):
        raise ConfigError(f"load_pretrained expects a model name (str), got {name!r}")
    return _load(None, name, check_leakage)


def load_run(run_dir: str | os.PathLike, *, check_leakage: bool = False) -> Predictor:
    """The model of a finished run folder of :func:`train` / ``ecgfusion train`` (config.yaml +
    model.pt; the first seed's for a multi-seed run). No dataset is read unless
    ``check_leakage=True`` (see :func:`load_pretrained`)."""
    return _load(run_dir, None, check_leakage)


def list_pretrained() -> list[str]:
    """Names of the shipped models (``src/ecgfusion/pretrained/``; each has a card.json)."""
    from ecgfusion.inference.loading import pretrained_names

    return pretrained_names()


def list_models() -> list[str]:
    """Names of the model architectures :func:`create_model` and configs' ``model.name`` know."""
    from ecgfusion.models import list_models as _list_models

    return _list_models()


def create_model(
    name: str,
    *,
    n_classes: int | None = None,
    n_samples: int | None = None,
    sampling_rate: float | None = None,
    **params: Any,
) -> EcgModel:
    """An untrained model by registry name; ``params`` are its hyper-parameters.

    The three settings default to the model's example setting (beat models: 5 classes,
    187-sample beats at 125 Hz). ``model(x)`` takes float beats [B, n_samples] and returns a
    ``ModelOutput`` (``scores`` [B, n_classes] logits, ``features`` [B, F]). Unknown names and
    hyper-parameters are ``ConfigError``\\ s.
    """
    from ecgfusion.models import create_model as _create_model
    from ecgfusion.models.registry import model_class

    setting = dict(model_class(name).example_setting)
    given = {"n_classes": n_classes, "n_samples": n_samples, "sampling_rate": sampling_rate}
    setting.update({k: v for k, v in given.items() if v is not None})
    return _create_model(name, **setting, **params)


def load_config(
    config: str | os.PathLike | Mapping[str, Any], overrides: list[str] | None = None
) -> RunConfig:
    """A validated run config from a YAML file or a mapping of the same structure;
    ``overrides`` are ``"a.b=value"`` strings as with ``ecgfusion train --set``. Every problem
    is one ``ConfigError`` naming the key."""
    from ecgfusion.training.config import apply_override, validate_config
    from ecgfusion.training.config import load_config as _load_config

    if not isinstance(config, Mapping):
        return _load_config(config, overrides)
    raw = copy.deepcopy(dict(config))
    for override in overrides or []:
        apply_override(raw, override)
    return validate_config(raw, "config mapping" + (" (with overrides)" if overrides else ""))


def _config(config: RunConfig | str | os.PathLike | Mapping[str, Any]) -> RunConfig:
    from ecgfusion.training.config import RunConfig

    return config if isinstance(config, RunConfig) else load_config(config)


def train(
    config: RunConfig | str | os.PathLike | Mapping[str, Any],
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
) -> dict[str, Any]:
    """Train a config (a :class:`RunConfig`, a YAML path or a mapping) into ``run_dir`` as
    ``ecgfusion train`` does: config.yaml, checkpoints, model.pt, metrics.json, report.md,
    figures. Returns what metrics.json holds (``metrics``: accuracy, macro_f1, mcc,
    confusion_matrix, ... on the test part; ``timing``; ``data``). ``resume=True`` continues an
    interrupted run from its last checkpoint. Load the result with :func:`load_run`."""
    from ecgfusion.training.trainer import train as _train

    return _train(_config(config), run_dir, resume=resume)


def evaluate(
    run_dir: str | os.PathLike | None = None, *, pretrained: str | None = None
) -> dict[str, Any]:
    """Recompute the test metrics of a run folder (or of a shipped model, ``pretrained=NAME``)
    from its config.yaml and model.pt, as ``ecgfusion evaluate`` does: ``{"metrics", "timing",
    "reproduced", "difference", ...}``, ``reproduced`` saying whether they agree with its
    metrics.json (``{"runs": {seed: ...}}`` for a multi-seed folder). Reads the test part of
    the dataset; writes nothing."""
    from ecgfusion.inference.loading import resolve_run_dir
    from ecgfusion.training.trainer import evaluate as _evaluate

    if pretrained is not None or run_dir is None:
        run_dir = resolve_run_dir(run_dir, pretrained)
    return _evaluate(run_dir)
