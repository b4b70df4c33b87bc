"""The Kaggle "ECG Heartbeat Categorization" CSVs (Kachuee et al. 2018): 187 values + label per row.

For users who already have mitbih_train.csv / ptbdb_normal.csv: the rows carry no record or
patient, so only the beat-random protocol can be used on them, and every output says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecgfusion.data.beats import KACHUEE_LENGTH, TARGET_FS, BeatSet
from ecgfusion.data.labels import AAMI_CLASSES, PTB_CLASSES
from ecgfusion.errors import DataError

UNKNOWN_PATIENT = "unknown"


def _class_names_for(path: Path) -> tuple[str, ...]:
    return PTB_CLASSES if path.name.startswith("ptbdb") else AAMI_CLASSES


def read_kaggle_csv(path: str | Path, class_names: tuple[str, ...] | None = None) -> BeatSet:
    """Read one Kaggle CSV; every malformed row is an error that names the file, row and fix."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path} not found; download the Kaggle 'ECG Heartbeat Categorization' CSVs"
        )
    names = class_names or _class_names_for(path)
    try:
        frame = pd.read_csv(path, header=None, dtype=np.float64)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: not a numeric CSV ({str(exc).splitlines()[0]})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty") from None
    values = frame.to_numpy()
    if values.shape[1] != KACHUEE_LENGTH + 1:
        raise DataError(
            f"{path}: rows have {values.shape[1]} values, "
            f"expected {KACHUEE_LENGTH} samples + 1 label"
        )
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if len(bad):
        raise DataError(
            f"{path}: row {bad[0] + 1} has a NaN or empty value ({len(bad)} such rows); "
            "fix or remove those rows"
        )
    raw_labels = values[:, -1]
    labels = raw_labels.astype(np.int64)
    wrong = np.flatnonzero((labels != raw_labels) | (labels < 0) | (labels >= len(names)))
    if len(wrong):
        raise DataError(
            f"{path}: row {wrong[0] + 1} has label {raw_labels[wrong[0]]:g}, expected an integer "
            f"0–{len(names) - 1} ({', '.join(names)})"
        )
    n = len(labels)
    return BeatSet(
        signals=values[:, :-1].astype(np.float32),
        labels=labels,
        class_names=names,
        record=np.array([f"kaggle:{path.name}"] * n),
        patient=np.array([UNKNOWN_PATIENT] * n),
        sample=np.arange(n, dtype=np.int64),
        fs=TARGET_FS,
        dataset=f"kaggle:{path.stem}",
        method="kachuee",
        meta={"source": str(path), "intra_patient_only": True},
    )
