"""Beat datasets by name: what `ecgfusion data prepare NAME` and a config's data.dataset mean."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ecgfusion.data.beats import BeatSet
from ecgfusion.data.labels import AAMI_CLASSES, PTB_CLASSES
from ecgfusion.data.mitdb import build_mitdb_beats
from ecgfusion.data.ptbxl import build_ptbxl_beats
from ecgfusion.errors import DataError

BeatBuilder = Callable[[Path, str, "list[str] | None", bool], BeatSet]


@dataclass(frozen=True)
class BeatDataset:
    name: str
    database: str  # folder key in ecgfusion.data.root.DATABASE_FOLDERS
    class_names: tuple[str, ...]
    build: BeatBuilder
    description: str = ""


BEAT_DATASETS: dict[str, BeatDataset] = {
    "mitdb": BeatDataset(
        "mitdb",
        "mitdb",
        AAMI_CLASSES,
        build_mitdb_beats,
        "MIT-BIH Arrhythmia, lead MLII, every annotated beat, 5 AAMI classes",
    ),
    "ptbxl-beats": BeatDataset(
        "ptbxl-beats",
        "ptbxl",
        PTB_CLASSES,
        build_ptbxl_beats,
        "PTB-XL lead II, XQRS R peaks, normal (NORM only) vs abnormal (the paper's PTB task)",
    ),
}


def get_beat_dataset(name: str) -> BeatDataset:
    try:
        return BEAT_DATASETS[name]
    except KeyError:
        raise DataError(
            f"unknown dataset {name!r}; choose one of {', '.join(sorted(BEAT_DATASETS))}"
        ) from None
