"""A trained model ready to predict: weights, classes, segmenter and what it was trained on."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np

from ecgfusion.errors import DataError, EcgFusionError
from ecgfusion.inference.predict import Predictor

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"


def pretrained_names() -> list[str]:
    if not PRETRAINED_DIR.is_dir():
        return []
    # dot-folders are a publish's staging folder or the model it replaced, never a shipped name
    return sorted(
        p.name
        for p in PRETRAINED_DIR.iterdir()
        if not p.name.startswith(".") and (p / "model.pt").is_file()
    )


def resolve_run_dir(run_dir: str | Path | None, pretrained: str | None) -> Path:
    """A run folder holding config.yaml + model.pt (the first seed's, for a multi-seed run)."""
    if (run_dir is None) == (pretrained is None):
        raise DataError("give exactly one of a run folder (RUN_DIR, --model) or --pretrained NAME")
    if pretrained is not None:
        path = PRETRAINED_DIR / pretrained
        if pretrained not in pretrained_names():
            names = ", ".join(pretrained_names()) or "none shipped in this install"
            raise DataError(f"no pretrained model {pretrained!r}; available: {names}")
        return path
    path = Path(run_dir)
    if not path.is_dir():
        raise DataError(f"run folder {path} does not exist; pass the folder `ecgfusion train` made")
    if not (path / "model.pt").is_file():
        seeds = sorted(path.glob("seed_*/model.pt"))
        if not seeds:
            raise DataError(f"{path} holds no model.pt; the run has not finished — train it first")
        path = seeds[0].parent
    if not (path / "config.yaml").is_file():
        raise DataError(f"{path}/config.yaml is missing; the run folder is incomplete")
    return path


def seen_records(config) -> frozenset[str]:
    """Records in the training or validation part of the run's split (both shaped the model)."""
    from ecgfusion.data.cache import load_beats
    from ecgfusion.data.splits import make_split

    data = config.data
    beats = load_beats(data.dataset, data.method, data.records, data.data_root, data.cache_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        split = make_split(beats, data.protocol, data.seed, data.rebalance)
    seen = np.concatenate([split.train, split.val])
    return frozenset(str(r) for r in np.unique(beats.record[seen]))


def check_beat_model(model, class_names: tuple[str, ...], method: str, path: Path) -> None:
    """A model from another task (a record-level model, another class set) cannot label beats."""
    from ecgfusion.data.beats import segment_length

    if getattr(model, "name", "") == "multimodal" or not hasattr(model, "n_samples"):
        raise DataError(
            f"{path}/model.pt is a {getattr(model, 'name', type(model).__name__)} model, "
            "not a beat "
            "classifier; pass a run of cnn_transformer_1d, cnn_2d or a fusion model"
        )
    if model.n_classes != len(class_names):
        raise DataError(
            f"{path}/model.pt scores {model.n_classes} classes but its dataset has "
            f"{len(class_names)} ({', '.join(class_names)}); the run folder is inconsistent"
        )
    expected = segment_length(method)
    if model.n_samples != expected:
        raise DataError(
            f"{path}/model.pt takes {model.n_samples}-sample beats but the {method} segmenter cuts "
            f"{expected}; the run folder is inconsistent"
        )


def card_detector(card: dict, dataset: str, path: Path) -> str:
    """The R-peak detector named by a model card (model.pt's extra), the training beats' one.

    Cards written before detectors had names hold none: the dataset decides (ptbxl-beats ->
    xqrs-250-up, which cut those beats; anything else -> xqrs-125-deviation).
    """
    from ecgfusion.data.rpeaks import DETECTORS, serving_detector

    recorded = card.get("detector")
    if recorded is not None and not (isinstance(recorded, str) and recorded in DETECTORS):
        raise DataError(
            f"{path}/model.pt was trained on beats cut with R-peak detector {recorded!r}, which "
            f"this version does not know ({', '.join(sorted(DETECTORS))}); update ecgfusion"
        )
    return serving_detector(dataset, recorded)


def load_predictor(
    run_dir: str | Path | None = None, pretrained: str | None = None, *, check_leakage: bool = True
) -> Predictor:
    """The run's model, classes and segmenter; ``check_leakage`` also reads and splits its
    training set for ``seen_records`` (seconds; empty when that data is not on this machine)."""
    from ecgfusion.models import load_model
    from ecgfusion.training.config import load_config

    path = resolve_run_dir(run_dir, pretrained)
    config = load_config(path / "config.yaml")
    model = load_model(path / "model.pt")
    from ecgfusion.data.registry import get_beat_dataset

    class_names = get_beat_dataset(config.data.dataset).class_names
    check_beat_model(model, class_names, config.data.method, path)
    detector = card_detector(getattr(model, "extra", None) or {}, config.data.dataset, path)
    seen: frozenset[str] = frozenset()
    if check_leakage:
        # where the training data is not on this machine there is nothing to compare with
        with contextlib.suppress(EcgFusionError):
            seen = seen_records(config)
    return Predictor(
        model=model,
        class_names=class_names,
        method=config.data.method,
        dataset=config.data.dataset,
        protocol=config.data.protocol,
        source=str(path if pretrained is None else f"pretrained:{pretrained}"),
        seen_records=seen,
        detector=detector,
    )
