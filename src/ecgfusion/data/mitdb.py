"""MIT-BIH Arrhythmia Database: records, beat annotations and the AAMI beat set.

Reading is wfdb's job (format 212 and all); this module decides which lead, which annotations
are beats, and who the patient is.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb

from ecgfusion.data.beats import (
    TARGET_FS,
    BeatSet,
    get_segmenter,
    resample,
    resample_indices,
)
from ecgfusion.data.labels import AAMI_CLASSES, AAMI_MAP, BEAT_SYMBOLS
from ecgfusion.data.root import database_dir
from ecgfusion.errors import DataError

FS = 360.0
PREFERRED_LEAD = "MLII"
#: The 48 records; 201 and 202 were taken from the same analog tape, i.e. the same patient.
SAME_PATIENT = {"202": "201"}
#: Records with paced beats, excluded from de Chazal's inter-patient protocol.
PACED = ("102", "104", "107", "217")


@dataclass(frozen=True)
class MitdbRecord:
    record: str
    signal: np.ndarray  # float64 [n] in mV at FS
    fs: float
    lead: str
    age: int | None
    sex: str | None
    ann_samples: np.ndarray  # int64
    ann_symbols: np.ndarray  # str

    @property
    def patient(self) -> str:
        return patient_id(self.record)


def patient_id(record: str) -> str:
    return f"mitdb:{SAME_PATIENT.get(record, record)}"


def list_records(db_dir: Path) -> list[str]:
    listing = db_dir / "RECORDS"
    if not listing.is_file():
        raise DataError(f"{listing} is missing; it lists the records of the database")
    try:
        text = listing.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{listing} cannot be read ({exc}); re-download it") from None
    return [r.strip() for r in text.split() if r.strip()]


def _parse_age_sex(comments: list[str]) -> tuple[int | None, str | None]:
    """The first header comment is '<age> <sex> ...'; -1 / '?' mean unknown."""
    if not comments:
        return None, None
    fields = comments[0].split()
    age: int | None = None
    sex: str | None = None
    if fields:
        try:
            age = int(fields[0])
        except ValueError:
            age = None
        if age is not None and age < 0:
            age = None
    if len(fields) > 1 and fields[1] in ("M", "F"):
        sex = fields[1]
    return age, sex


def read_record(db_dir: Path, record: str, lead: str = PREFERRED_LEAD) -> MitdbRecord:
    """One record's lead and its reference annotations, with every failure named by file."""
    base = db_dir / record
    for ext in ("hea", "dat", "atr"):
        path = base.with_suffix(f".{ext}")
        if not path.is_file():
            raise DataError(
                f"{path} is missing; re-download record {record} (or run "
                f"'ecgfusion data verify mitdb' to see every bad file)"
            )
    try:
        header = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises bare ValueErrors/IndexErrors on corrupt headers
        raise DataError(
            f"{base}.hea cannot be parsed ({exc}); re-download record {record}"
        ) from None
    if header.fs != FS:
        raise DataError(
            f"{base}.hea says {header.fs:g} Hz but MIT-BIH records are {FS:g} Hz; "
            "this is not an original MIT-BIH header — re-download the record"
        )
    names = list(header.sig_name or [])
    channel = names.index(lead) if lead in names else 0
    expected_bytes = header.sig_len * len(names) * 3 // 2  # format 212: 12 bits per sample
    actual_bytes = base.with_suffix(".dat").stat().st_size
    if actual_bytes < expected_bytes:
        raise DataError(
            f"{base}.dat is truncated ({actual_bytes} of {expected_bytes} bytes); "
            f"re-download record {record}"
        )
    try:
        rec = wfdb.rdrecord(str(base), channels=[channel])
        ann = wfdb.rdann(str(base), "atr")
    except Exception as exc:
        raise DataError(
            f"{base}: wfdb cannot read it ({exc}); re-download record {record}"
        ) from None
    signal = np.asarray(rec.p_signal[:, 0], dtype=np.float64)
    if len(signal) != header.sig_len:
        raise DataError(
            f"{base}.dat holds {len(signal)} samples, the header says {header.sig_len}; "
            f"re-download record {record}"
        )
    if not np.isfinite(signal).all():
        bad = np.flatnonzero(~np.isfinite(signal))
        raise DataError(
            f"{base}.dat has {len(bad)} NaN/invalid samples in lead {names[channel]} "
            f"(first at {bad[0] / FS:.1f} s); re-download record {record}"
        )
    if np.ptp(signal) == 0:
        raise DataError(f"{base}.dat lead {names[channel]} is flat; re-download record {record}")
    age, sex = _parse_age_sex(list(header.comments or []))
    return MitdbRecord(
        record=record,
        signal=signal,
        fs=float(header.fs),
        lead=names[channel],
        age=age,
        sex=sex,
        ann_samples=np.asarray(ann.sample, dtype=np.int64),
        ann_symbols=np.asarray(ann.symbol, dtype=str),
    )


def record_beats(
    rec: MitdbRecord, method: str = "kachuee", **params: float
) -> tuple[BeatSet, dict]:
    """Cut every annotated beat of one record; returns the beats and what was left out and why.

    The RR features come from every beat annotation of the record (mapped or not, flat or not) at
    the native rate, and are then selected for the kept beats, so a dropped beat still counts as
    the neighbour of the beats around it.
    """
    # Imported here: ecgfusion.features' package __init__ loads torch, which reading a record
    # never needs otherwise; only building MIT-BIH beats pays for it.
    from ecgfusion.features.rr import RR_FEATURE_NAMES, rr_features

    is_beat = np.isin(rec.ann_symbols, list(BEAT_SYMBOLS))
    beat_samples = rec.ann_samples[is_beat]
    beat_symbols = rec.ann_symbols[is_beat]
    rr = rr_features(beat_samples, rec.fs)
    signal = resample(rec.signal, rec.fs, TARGET_FS)
    peaks = np.clip(resample_indices(beat_samples, rec.fs, TARGET_FS), 0, len(signal) - 1)
    # Every beat (mapped or not) counts for the RR median; only AAMI-mapped beats become rows.
    beats, flat = get_segmenter(method)(signal, peaks, TARGET_FS, **params)
    mapped = np.isin(beat_symbols, list(AAMI_MAP))
    keep = mapped & ~flat
    class_index = {c: i for i, c in enumerate(AAMI_CLASSES)}
    labels = np.array([class_index[AAMI_MAP[s]] for s in beat_symbols[keep]], dtype=np.int64)
    n = int(keep.sum())
    beat_set = BeatSet(
        signals=beats[keep],
        labels=labels,
        class_names=AAMI_CLASSES,
        record=np.full(n, rec.record, dtype=object).astype(str),
        patient=np.full(n, rec.patient, dtype=object).astype(str),
        sample=beat_samples[keep],
        fs=TARGET_FS,
        dataset="mitdb",
        method=method,
        rr=rr[keep],
        rr_names=RR_FEATURE_NAMES,
    )
    report = {
        "lead": rec.lead,
        "age": rec.age,
        "sex": rec.sex,
        "beats": n,
        "unmapped": dict(Counter(beat_symbols[~mapped].tolist())),
        "flat_dropped": int((mapped & flat).sum()),
        "non_beat": dict(Counter(rec.ann_symbols[~is_beat].tolist())),
    }
    return beat_set, report


def build_mitdb_beats(
    db_dir: Path,
    method: str = "kachuee",
    records: list[str] | None = None,
    progress: bool = False,
) -> BeatSet:
    """All beats of the given records (default: all 48) as one BeatSet with a provenance report."""
    get_segmenter(method)  # fail on a bad method before reading anything
    available = list_records(db_dir)
    wanted = available if records is None else [str(r) for r in records]
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise DataError(
            f"record(s) {', '.join(unknown)} not in {db_dir / 'RECORDS'}; "
            f"MIT-BIH records are {available[0]}…{available[-1]}"
        )
    parts: list[BeatSet] = []
    reports: dict[str, dict] = {}
    from ecgfusion.progress import track

    for record in track(wanted, description="reading MIT-BIH records", enabled=progress):
        beats, report = record_beats(read_record(db_dir, record), method)
        parts.append(beats)
        reports[record] = report
    unmapped: Counter[str] = Counter()
    for r in reports.values():
        unmapped.update(r["unmapped"])
    meta = {
        "source": str(db_dir),
        "records": reports,
        "unmapped_symbols": dict(unmapped),
        "flat_dropped": sum(r["flat_dropped"] for r in reports.values()),
        "leads": dict(Counter(r["lead"] for r in reports.values())),
    }
    return BeatSet.concatenate(parts, meta=meta)


def load_mitdb_beats(
    records: list[str] | None = None,
    method: str = "kachuee",
    data_root: str | Path | None = None,
    progress: bool = False,
) -> BeatSet:
    """Beats straight from the WFDB files, uncached (ecgfusion.data.cache caches them)."""
    return build_mitdb_beats(database_dir("mitdb", data_root), method, records, progress)
