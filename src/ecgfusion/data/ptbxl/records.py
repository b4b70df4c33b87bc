"""The PTB-XL record-level set (whole 10-s 12-lead records + metadata) and its Parquet cache."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecgfusion.data.ptbxl.metadata import (
    AGE_CENTER,
    AGE_SCALE,
    HEIGHT_CENTER,
    HEIGHT_SCALE,
    META_FEATURES,
    SUPERCLASSES,
    WEIGHT_CENTER,
    WEIGHT_SCALE,
    binary_label,
    split_by_fold,
)
from ecgfusion.data.ptbxl.signals import (
    LEADS,
    RECORD_SECONDS,
    _ecg_id,
    _left_out,
    _usable_records,
    check_sampling_rate,
    flat_or_nan_leads,
    read_signal,
)
from ecgfusion.data.root import database_dir
from ecgfusion.errors import DataError, ShapeError
from ecgfusion.io import atomic_path
from ecgfusion.progress import track

RECORDS_CACHE_VERSION = 1

#: PtbxlRecords fields with one row per record.
ROW_FIELDS = ("signal", "metadata", "targets", "binary", "ecg_id", "patient_id", "strat_fold")


@dataclass(frozen=True)
class PtbxlRecords:
    """Whole 10-s 12-lead records for the multimodal model, one row per record."""

    signal: np.ndarray  # float32 [n, 12, fs * 10], mV
    metadata: np.ndarray  # float32 [n, len(META_FEATURES)]
    targets: np.ndarray  # float32 [n, 5] multi-label, SUPERCLASSES order
    binary: np.ndarray  # int64 [n]: 0 NORM only, 1 any other superclass
    ecg_id: np.ndarray  # int64 [n]
    patient_id: np.ndarray  # int64 [n]
    strat_fold: np.ndarray  # int64 [n]
    fs: float
    lead_names: tuple[str, ...] = LEADS
    meta_names: tuple[str, ...] = META_FEATURES
    class_names: tuple[str, ...] = SUPERCLASSES
    report: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.ecg_id)
        expected = {
            "signal": (n, len(self.lead_names), int(self.fs * RECORD_SECONDS)),
            "metadata": (n, len(self.meta_names)),
            "targets": (n, len(self.class_names)),
            "binary": (n,),
            "patient_id": (n,),
            "strat_fold": (n,),
        }
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ShapeError(f"PtbxlRecords.{name} has shape {got}, expected {shape}")

    def __len__(self) -> int:
        return len(self.ecg_id)

    def subset(self, index: np.ndarray) -> PtbxlRecords:
        return replace(self, **{name: getattr(self, name)[index] for name in ROW_FIELDS})

    def split(self) -> dict[str, np.ndarray]:
        """Indices of train (folds 1-8), val (9) and test (10); raises LeakageError on overlap."""
        return split_by_fold(self.strat_fold, self.patient_id)

    def class_table(self) -> str:
        """Records per superclass (multi-label) and per binary class for each fold part."""
        names = (*self.class_names, "normal", "abnormal")
        lines = [f"{'part':<6}{'records':>9}{'patients':>9}" + "".join(f"{c:>9}" for c in names)]
        for part, idx in {**self.split(), "all": np.arange(len(self))}.items():
            counts = [int(v) for v in self.targets[idx].sum(axis=0)]
            counts += [int((self.binary[idx] == 0).sum()), int((self.binary[idx] == 1).sum())]
            lines.append(
                f"{part:<6}{len(idx):>9}{len(np.unique(self.patient_id[idx])):>9}"
                + "".join(f"{c:>9}" for c in counts)
            )
        return "\n".join(lines)


def metadata_vector(meta: pd.DataFrame) -> np.ndarray:
    """float32 [n, len(META_FEATURES)]: scaled values, 0 where missing, plus the missing flags."""

    def scaled(column: str, center: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
        values = pd.to_numeric(meta[column], errors="coerce").to_numpy(dtype=np.float64)
        missing = ~np.isfinite(values)
        return np.where(missing, 0.0, (values - center) / scale), missing

    age, age_missing = scaled("age", AGE_CENTER, AGE_SCALE)
    height, height_missing = scaled("height", HEIGHT_CENTER, HEIGHT_SCALE)
    weight, weight_missing = scaled("weight", WEIGHT_CENTER, WEIGHT_SCALE)
    sex = meta["sex"].to_numpy()
    columns = {
        "age": age,
        "age_missing": age_missing | meta["age_missing"].to_numpy(dtype=bool),
        "age_capped": meta["age_capped"].to_numpy(dtype=bool),
        "sex_male": sex == 0,
        "sex_female": sex == 1,
        "sex_missing": meta["sex_missing"].to_numpy(dtype=bool),
        "height": height,
        "height_missing": height_missing,
        "weight": weight,
        "weight_missing": weight_missing,
    }
    return np.stack([np.asarray(columns[name], dtype=np.float32) for name in META_FEATURES], 1)


def build_ptbxl_records(
    db_dir: Path,
    sampling_rate: int = 100,
    ids: Sequence[int | str] | None = None,
    progress: bool = False,
) -> PtbxlRecords:
    """Read, check and label the records of one PTB-XL folder (no cache)."""
    db_dir = Path(db_dir)
    meta, column, report = _usable_records(db_dir, sampling_rate, ids)
    signals, bad = [], []
    for eid, name in track(
        list(zip(meta["ecg_id"], meta[column], strict=True)),
        description=f"reading PTB-XL records ({sampling_rate} Hz)",
        enabled=progress,
    ):
        signal = read_signal(db_dir, name, sampling_rate)
        if flat_or_nan_leads(signal):
            bad.append(int(eid))
            continue
        signals.append(signal.astype(np.float32))
    report.append(_left_out(bad, "with a NaN or flat lead dropped"))
    meta = meta.drop(index=bad)
    if not signals:
        raise DataError(f"no usable PTB-XL records under {db_dir}: {'; '.join(report[1:])}")
    targets = np.array(
        [[c in s for c in SUPERCLASSES] for s in meta["superclasses"]], dtype=np.float32
    )
    records = PtbxlRecords(
        signal=np.stack(signals),
        metadata=metadata_vector(meta),
        targets=targets,
        binary=np.array([binary_label(s) for s in meta["superclasses"]], dtype=np.int64),
        ecg_id=meta["ecg_id"].to_numpy(dtype=np.int64),
        patient_id=meta["patient_id"].to_numpy(dtype=np.int64),
        strat_fold=meta["strat_fold"].to_numpy(dtype=np.int64),
        fs=float(sampling_rate),
        report=(*report, f"{len(meta)} records loaded at {sampling_rate} Hz"),
    )
    records.split()  # LeakageError now, not at training time
    return records


def load_ptbxl_records(
    data_root: str | os.PathLike | None = None,
    sampling_rate: int = 100,
    ids: Sequence[int | str] | None = None,
    progress: bool = False,
) -> PtbxlRecords:
    """Straight from the WFDB files; see prepare_ptbxl_records for the cached version."""
    return build_ptbxl_records(database_dir("ptbxl", data_root), sampling_rate, ids, progress)


def records_cache_path(
    db_dir: Path,
    cache_dir: str | os.PathLike | None,
    sampling_rate: int,
    ids: Sequence[int | str] | None,
) -> Path:
    from ecgfusion.data.storage import cache_dir as resolve_cache_dir
    from ecgfusion.data.storage import fingerprint

    payload = {
        "version": RECORDS_CACHE_VERSION,
        "sampling_rate": sampling_rate,
        "ids": sorted({_ecg_id(i) for i in ids}) if ids is not None else None,
        "data": fingerprint(Path(db_dir)),
    }
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return resolve_cache_dir(cache_dir) / f"ptbxl-records-{sampling_rate}hz-{key}.parquet"


def _fixed_list(array: np.ndarray) -> pa.FixedSizeListArray:
    flat = np.ascontiguousarray(array, dtype=np.float32).reshape(len(array), -1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])


def write_ptbxl_records(records: PtbxlRecords, path: Path) -> Path:
    table = pa.table(
        {
            "signal": _fixed_list(records.signal),
            "metadata": _fixed_list(records.metadata),
            "targets": _fixed_list(records.targets),
            "binary": pa.array(records.binary.astype(np.int8)),
            "ecg_id": pa.array(records.ecg_id),
            "patient_id": pa.array(records.patient_id),
            "strat_fold": pa.array(records.strat_fold.astype(np.int8)),
        }
    )
    info = {
        "version": RECORDS_CACHE_VERSION,
        "fs": records.fs,
        "lead_names": list(records.lead_names),
        "meta_names": list(records.meta_names),
        "class_names": list(records.class_names),
        "report": list(records.report),
    }
    table = table.replace_schema_metadata({"ecgfusion": json.dumps(info)})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return Path(path)


def read_ptbxl_records(path: Path) -> PtbxlRecords:
    try:
        table = pq.read_table(path)
        info = json.loads(table.schema.metadata[b"ecgfusion"])
        if info.get("version") != RECORDS_CACHE_VERSION:
            raise ValueError("cache version")
        n_leads, fs = len(info["lead_names"]), float(info["fs"])

        def column(name: str, shape: tuple[int, ...]) -> np.ndarray:
            values = table.column(name).combine_chunks().values.to_numpy(zero_copy_only=False)
            return values.astype(np.float32, copy=False).reshape(-1, *shape)

        return PtbxlRecords(
            signal=column("signal", (n_leads, int(fs * RECORD_SECONDS))),
            metadata=column("metadata", (len(info["meta_names"]),)),
            targets=column("targets", (len(info["class_names"]),)),
            binary=table.column("binary").to_numpy().astype(np.int64),
            ecg_id=table.column("ecg_id").to_numpy().astype(np.int64),
            patient_id=table.column("patient_id").to_numpy().astype(np.int64),
            strat_fold=table.column("strat_fold").to_numpy().astype(np.int64),
            fs=fs,
            lead_names=tuple(info["lead_names"]),
            meta_names=tuple(info["meta_names"]),
            class_names=tuple(info["class_names"]),
            report=tuple(info["report"]),
        )
    except FileNotFoundError:
        raise DataError(
            f"cache file {path} is missing; run 'ecgfusion data prepare ptbxl'"
        ) from None
    except (OSError, KeyError, ValueError, TypeError, ShapeError, pa.ArrowException) as exc:
        raise DataError(
            f"cache file {path} is corrupt ({type(exc).__name__}); delete it or prepare again "
            "with --force"
        ) from None


def prepare_ptbxl_records(
    data_root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    sampling_rate: int = 100,
    force: bool = False,
    progress: bool = False,
    ids: Sequence[int | str] | None = None,
) -> tuple[PtbxlRecords, Path, str]:
    """The record-level set from its Parquet cache, built and cached on first use.

    Returns the records, the cache file and a report (what was left out and why, the counts).
    """
    db_dir = database_dir("ptbxl", data_root)
    check_sampling_rate(sampling_rate)
    path = records_cache_path(db_dir, cache_dir, sampling_rate, ids)
    if path.is_file() and not force:
        records = read_ptbxl_records(path)
        note = f"reused {path}"
    else:
        records = build_ptbxl_records(db_dir, sampling_rate, ids, progress)
        write_ptbxl_records(records, path)
        note = f"wrote {path}"
    report = "\n".join([*records.report, records.class_table(), note])
    return records, path, report
