"""Parquet cache of prepared beat sets, keyed by everything that changes the beats.

A prepared set is written once (atomically: temp file, then rename) and read back in well under
a second, so training and benchmarks never re-read the WFDB files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ecgfusion.data.beats import BeatSet, get_segmenter
from ecgfusion.data.registry import get_beat_dataset
from ecgfusion.data.root import database_dir
from ecgfusion.data.storage import cache_dir, fingerprint
from ecgfusion.errors import DataError
from ecgfusion.io import atomic_path, sweep_stale_temporaries

#: Bump when the beat-cutting code changes what a cached set holds (for every dataset)...
CACHE_VERSION = 1
#: ... or only for one dataset, so the others keep their caches. mitdb 2: RR features stored.
DATASET_CACHE_VERSIONS: dict[str, int] = {"mitdb": 2}
#: Parquet column prefix of the RR features: column f"{RR_PREFIX}{name}" per BeatSet.rr_names.
RR_PREFIX = "rr_"


def cache_version(dataset: str) -> int:
    return DATASET_CACHE_VERSIONS.get(dataset, CACHE_VERSION)


def cache_key(dataset: str, method: str, records: list[str] | None, db_dir: Path) -> str:
    payload = {
        "version": cache_version(dataset),
        "dataset": dataset,
        "method": method,
        "records": sorted(records) if records is not None else None,
        "data": fingerprint(db_dir),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def cache_path(
    dataset: str,
    method: str = "kachuee",
    records: list[str] | None = None,
    data_root: str | os.PathLike | None = None,
    cache_dir_: str | os.PathLike | None = None,
) -> Path:
    spec = get_beat_dataset(dataset)
    db_dir = database_dir(spec.database, data_root)
    key = cache_key(dataset, method, records, db_dir)
    return cache_dir(cache_dir_) / f"{dataset}-{method}-{key}.parquet"


def write_beats(beats: BeatSet, path: Path) -> Path:
    n, length = beats.signals.shape
    flat = pa.array(np.ascontiguousarray(beats.signals, dtype=np.float32).reshape(-1))
    columns = {
        "signal": pa.FixedSizeListArray.from_arrays(flat, length),
        "label": pa.array(beats.labels.astype(np.int8)),
        "record": pa.array(beats.record.astype(str)),
        "patient": pa.array(beats.patient.astype(str)),
        "sample": pa.array(beats.sample.astype(np.int64)),
    }
    if beats.rr is not None:
        for j, name in enumerate(beats.rr_names):
            columns[f"{RR_PREFIX}{name}"] = pa.array(beats.rr[:, j].astype(np.float32))
    table = pa.table(columns)
    info = {
        "class_names": list(beats.class_names),
        "fs": beats.fs,
        "dataset": beats.dataset,
        "method": beats.method,
        "meta": beats.meta,
        "cache_version": cache_version(beats.dataset),
        "rr_names": list(beats.rr_names),
    }
    table = table.replace_schema_metadata({"ecgfusion": json.dumps(info, default=str)})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def read_beats(path: Path) -> BeatSet:
    try:
        table = pq.read_table(path)
        info = json.loads(table.schema.metadata[b"ecgfusion"])
        signal = table.column("signal").combine_chunks()
        length = signal.type.list_size
        signals = signal.values.to_numpy(zero_copy_only=False).reshape(-1, length)
        # A cache written before RR features existed (or of a dataset without them) has no
        # "rr_names" and no rr_ columns: rr stays None.
        rr_names = tuple(info.get("rr_names") or ())
        rr = None
        if rr_names:
            rr = np.stack(
                [
                    table.column(f"{RR_PREFIX}{name}").to_numpy().astype(np.float32, copy=False)
                    for name in rr_names
                ],
                axis=1,
            ).reshape(len(table), len(rr_names))
        return BeatSet(
            signals=signals.astype(np.float32, copy=False),
            labels=table.column("label").to_numpy().astype(np.int64),
            class_names=tuple(info["class_names"]),
            record=np.asarray(table.column("record").to_numpy(zero_copy_only=False), dtype=str),
            patient=np.asarray(table.column("patient").to_numpy(zero_copy_only=False), dtype=str),
            sample=table.column("sample").to_numpy(),
            fs=float(info["fs"]),
            dataset=info["dataset"],
            method=info["method"],
            meta=info["meta"],
            rr=rr,
            rr_names=rr_names,
        )
    except FileNotFoundError:
        raise DataError(
            f"cache file {path} is missing; run 'ecgfusion data prepare' again"
        ) from None
    except (OSError, KeyError, ValueError, TypeError, pa.ArrowException) as exc:
        raise DataError(
            f"cache file {path} is corrupt ({type(exc).__name__}); delete it or prepare again "
            "with --force"
        ) from None


def load_beats(
    dataset: str = "mitdb",
    method: str = "kachuee",
    records: list[str] | None = None,
    data_root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    force: bool = False,
) -> BeatSet:
    """The prepared beat set: from the cache when it is there, else built, cached and returned."""
    beats, _, _ = prepare_beats(dataset, method, records, data_root, cache_dir, progress, force)
    return beats


def prepare_beats(
    dataset: str = "mitdb",
    method: str = "kachuee",
    records: list[str] | None = None,
    data_root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    force: bool = False,
) -> tuple[BeatSet, Path, bool]:
    """Like load_beats, also returning the cache path and whether the cache was reused."""
    spec = get_beat_dataset(dataset)
    get_segmenter(method)
    records = [str(r) for r in records] if records else None
    path = cache_path(dataset, method, records, data_root, cache_dir)
    if path.is_file() and not force:
        return read_beats(path), path, True
    sweep_stale_temporaries(path.parent)  # what a killed preparation left in the cache folder
    beats = spec.build(database_dir(spec.database, data_root), method, records, progress)
    write_beats(beats, path)
    return beats, path, False
