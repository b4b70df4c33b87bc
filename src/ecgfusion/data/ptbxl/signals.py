"""PTB-XL signals: reading and checking WFDB records, records missing on disk, the usable set."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb

from ecgfusion.data.ptbxl.metadata import FILENAME_COLUMN, METADATA_FILE, load_metadata
from ecgfusion.errors import DataError

LEADS: tuple[str, ...] = (
    "I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6",
)  # fmt: skip
RECORD_SECONDS = 10
SUBSET_NOTE = (
    "PTB-XL records found under the data root (the shared copy holds ecg_id 1-1999: 1,987 of the "
    "21,799 records of the full release)"
)
SHOW_IDS = 10


class MissingRecordsWarning(UserWarning):
    """Records listed in ptbxl_database.csv have no signal files on disk."""


def flat_or_nan_leads(signal: np.ndarray, lead_names: Sequence[str] = LEADS) -> list[str]:
    """Leads (rows of ``signal`` [leads, samples]) with a non-finite sample or no range."""
    signal = np.asarray(signal, dtype=np.float64)
    finite = np.isfinite(signal).all(axis=1)
    span = np.where(finite, np.ptp(np.where(np.isfinite(signal), signal, 0.0), axis=1), 0.0)
    return [str(lead_names[i]) for i in np.flatnonzero(~finite | (span <= 0.0))]


def record_base(db_dir: Path, filename: str) -> Path:
    return Path(db_dir) / str(filename)


def missing_on_disk(db_dir: Path, meta: pd.DataFrame, sampling_rate: int = 100) -> list[int]:
    """ecg_ids whose .hea or .dat file is absent."""
    column = filename_column(meta, sampling_rate)
    out = []
    for eid, name in zip(meta["ecg_id"], meta[column], strict=True):
        base = record_base(db_dir, name)
        if not (base.with_suffix(".hea").is_file() and base.with_suffix(".dat").is_file()):
            out.append(int(eid))
    return out


def check_sampling_rate(sampling_rate: int) -> int:
    if sampling_rate not in FILENAME_COLUMN:
        raise DataError(
            f"PTB-XL sampling_rate must be 100 (records100) or 500 (records500), "
            f"got {sampling_rate!r}"
        )
    return int(sampling_rate)


def filename_column(meta: pd.DataFrame, sampling_rate: int) -> str:
    column = FILENAME_COLUMN[check_sampling_rate(sampling_rate)]
    if column not in meta.columns:
        raise DataError(f"{METADATA_FILE} has no {column!r} column for {sampling_rate} Hz records")
    return column


def report_missing(db_dir: Path, missing: list[int], n_listed: int, sampling_rate: int) -> str:
    """The single line saying which listed records have no files; also issued as one warning."""
    shown = ", ".join(str(i) for i in missing[:SHOW_IDS]) + (
        ", ..." if len(missing) > SHOW_IDS else ""
    )
    line = (
        f"{len(missing)} of {n_listed} records listed in {Path(db_dir) / METADATA_FILE} have no "
        f"{sampling_rate} Hz files on disk (ecg_id {shown}); they are left out"
    )
    warnings.warn(line, MissingRecordsWarning, stacklevel=3)
    return line


def read_signal(
    db_dir: Path, filename: str, sampling_rate: int = 100, leads: Sequence[str] = LEADS
) -> np.ndarray:
    """One record as float64 [len(leads), samples] in mV, leads in the order asked for.

    One rdrecord call for all leads: wfdb's header parsing costs more than reading 12 leads.
    """
    base = record_base(db_dir, filename)
    try:
        record = wfdb.rdrecord(str(base))
    except Exception as exc:  # wfdb raises bare ValueErrors/IndexErrors on corrupt files
        raise DataError(f"{base}: wfdb cannot read it ({exc}); re-download the record") from None
    if record.fs != sampling_rate:
        raise DataError(
            f"{base}.hea says {record.fs:g} Hz, expected {sampling_rate} Hz; check filename_lr/"
            "filename_hr in ptbxl_database.csv"
        )
    names = [str(n).upper() for n in (record.sig_name or [])]
    absent = [lead for lead in leads if lead.upper() not in names]
    if absent:
        raise DataError(
            f"{base}.hea lacks lead(s) {', '.join(absent)}; PTB-XL records have 12 leads — "
            "re-download the record"
        )
    channels = [names.index(lead.upper()) for lead in leads]
    signal = np.asarray(record.p_signal, dtype=np.float64)[:, channels].T
    expected = RECORD_SECONDS * sampling_rate
    if signal.shape[1] != expected:
        raise DataError(
            f"{base}.dat holds {signal.shape[1]} samples per lead, PTB-XL records hold {expected} "
            f"at {sampling_rate} Hz; re-download the record"
        )
    return signal


def _select(meta: pd.DataFrame, ids: Iterable[int | str] | None, where: Path) -> pd.DataFrame:
    if ids is None:
        return meta
    wanted = [_ecg_id(i) for i in ids]
    unknown = [i for i in wanted if i not in meta.index]
    if unknown:
        raise DataError(
            f"ecg_id(s) {', '.join(map(str, unknown[:SHOW_IDS]))} not in {where}; "
            f"it lists ecg_id {int(meta.index.min())}-{int(meta.index.max())}"
        )
    return meta.loc[sorted(set(wanted))]


def _ecg_id(value: int | str) -> int:
    text = str(value).removeprefix("ptbxl:")
    try:
        return int(text)
    except ValueError:
        raise DataError(f"PTB-XL record {value!r} is not an ecg_id (e.g. 1 or ptbxl:1)") from None


def _id_list(ids: Sequence[int]) -> str:
    shown = ", ".join(map(str, ids[:SHOW_IDS]))
    return shown + (", ..." if len(ids) > SHOW_IDS else "")


def _left_out(ids: Sequence[int], why: str) -> str:
    listed = f": ecg_id {_id_list(ids)}" if len(ids) else ""
    return f"{len(ids)} records {why}{listed}"


def _usable_records(
    db_dir: Path, sampling_rate: int, ids: Sequence[int | str] | None
) -> tuple[pd.DataFrame, str, list[str]]:
    """Metadata rows to read (on disk, with a diagnosis), their filename column and the report."""
    meta = load_metadata(db_dir)
    column = filename_column(meta, sampling_rate)
    meta = _select(meta, ids, db_dir / METADATA_FILE)
    report = [SUBSET_NOTE, f"{len(meta)} records listed in {db_dir / METADATA_FILE}"]
    missing = missing_on_disk(db_dir, meta, sampling_rate)
    if missing:
        report.append(report_missing(db_dir, missing, len(meta), sampling_rate))
        meta = meta.drop(index=missing)
    undiagnosed = meta.index[[len(c) == 0 for c in meta["superclasses"]]].tolist()
    report.append(
        _left_out(undiagnosed, "without a diagnostic statement (likelihood > 0) left out")
    )
    return meta.drop(index=undiagnosed), column, report
