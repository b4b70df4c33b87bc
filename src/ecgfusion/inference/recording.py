"""One lead of a recording, from WFDB, CSV or NumPy, checked before any beat is cut."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb

from ecgfusion.errors import DataError

DEFAULT_LEADS = ("MLII", "II", "ii", "ECG", "ECG1")
MIN_FS = 100.0
MIN_SECONDS = 10.0
FLAT_SECONDS = 1.0


@dataclass
class Recording:
    name: str
    signal: np.ndarray  # float64, NaN-free (bad stretches zeroed and listed in `bad_ranges`)
    fs: float
    lead: str
    source: Path
    bad_ranges: list[tuple[float, float]] = field(default_factory=list)  # seconds

    @property
    def seconds(self) -> float:
        return len(self.signal) / self.fs


def _pick(names: list[str], lead: str | None, source: Path) -> int:
    if lead is not None:
        if lead in names:
            return names.index(lead)
        if lead.isdigit() and int(lead) < len(names):
            return int(lead)
        raise DataError(
            f"{source} has no lead {lead!r}; its leads are {', '.join(names)} — pass --lead NAME"
        )
    for candidate in DEFAULT_LEADS:
        if candidate in names:
            return names.index(candidate)
    if len(names) == 1:
        return 0
    raise DataError(
        f"{source} has no MLII/II lead; its leads are {', '.join(names)} — pass --lead NAME"
    )


def _read_wfdb(path: Path, lead: str | None) -> tuple[np.ndarray, float, str]:
    base = path.with_suffix("") if path.suffix in (".hea", ".dat") else path
    if not base.with_suffix(".hea").is_file():
        raise DataError(f"{base}.hea not found; pass a WFDB record (its .hea) or a .csv/.npy file")
    try:
        header = wfdb.rdheader(str(base))
        channel = _pick(list(header.sig_name), lead, base.with_suffix(".hea"))
        rec = wfdb.rdrecord(str(base), channels=[channel])
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{base}: wfdb cannot read it ({exc}); check the .hea and .dat") from None
    return np.asarray(rec.p_signal[:, 0], np.float64), float(header.fs), header.sig_name[channel]


def _read_table(path: Path, lead: str | None) -> tuple[np.ndarray, str]:
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(f"{path}: not a NumPy array file ({exc})") from None
        if array.ndim == 1:
            return array.astype(np.float64), "0"
        if array.ndim != 2:
            raise DataError(f"{path}: expected a 1-D signal or [samples, leads], got {array.shape}")
        names = [str(i) for i in range(array.shape[1])]
        col = _pick(names, lead, path) if lead is not None or len(names) == 1 else 0
        return array[:, col].astype(np.float64), names[col]
    try:
        frame = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: not a CSV file ({str(exc).splitlines()[0]})") from None
    try:
        float(frame.columns[0])
        frame = pd.read_csv(path, header=None)  # no header row: the first row was data
    except ValueError:
        pass
    names = [str(c) for c in frame.columns]
    col = _pick(names, lead, path)
    values = pd.to_numeric(frame.iloc[:, col], errors="coerce").to_numpy(np.float64)
    return values, names[col]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def bad_stretches(signal: np.ndarray, fs: float) -> np.ndarray:
    """Samples that are NaN or part of a flat stretch of at least FLAT_SECONDS."""
    bad = ~np.isfinite(signal)
    same = np.concatenate([[False], np.diff(np.nan_to_num(signal)) == 0])
    min_run = int(FLAT_SECONDS * fs)
    for start, stop in _runs(same):
        if stop - start + 1 >= min_run:
            bad[max(start - 1, 0) : stop] = True
    return bad


def read_recording(path: str | Path, lead: str | None = None, fs: float | None = None) -> Recording:
    """One lead; NaN and flat stretches are zeroed and listed, a wholly bad signal is an error."""
    path = Path(path)
    if path.suffix in (".csv", ".npy"):
        if not path.is_file():
            raise DataError(f"{path} not found")
        if fs is None:
            raise DataError(f"{path}: a {path.suffix} file has no sampling rate; pass --fs HZ")
        signal, lead_name = _read_table(path, lead)
        rate = float(fs)
    else:
        signal, rate, lead_name = _read_wfdb(path, lead)
        if fs is not None and float(fs) != rate:
            raise DataError(f"{path}: the header says {rate:g} Hz but --fs says {fs:g}; drop --fs")
    if not np.isfinite(rate):
        fix = "pass --fs HZ, e.g. --fs 360" if fs is not None else "fix the rate in its .hea"
        raise DataError(f"{path}: sampling rate {rate:g} Hz is not a finite number; {fix}")
    if rate < MIN_FS:
        raise DataError(
            f"{path}: sampling rate {rate:g} Hz is below {MIN_FS:g} Hz; QRS complexes cannot be "
            "found reliably — use a recording sampled at 100 Hz or more"
        )
    if len(signal) < MIN_SECONDS * rate:
        raise DataError(
            f"{path}: {len(signal) / rate:.1f} s long, at least {MIN_SECONDS:g} s are needed to "
            "estimate RR intervals"
        )
    name = path.stem if path.suffix else path.name
    return recording_from_lead(signal, rate, name, lead_name, path, f"{path}: lead {lead_name}")


def recording_from_lead(
    signal: np.ndarray, rate: float, name: str, lead_name: str, path: Path, where: str
) -> Recording:
    """A Recording of one lead already in memory: NaN and flat stretches zeroed and listed (a
    lead that is mostly such stretches is refused, ``where`` naming it)."""
    bad = bad_stretches(signal, rate)
    if bad.mean() > 0.5:
        raise DataError(
            f"{where} is NaN or flat for {bad.mean():.0%} of the recording; check the lead"
        )
    ranges = [(a / rate, b / rate) for a, b in _runs(bad)]
    clean = np.where(bad, 0.0, np.nan_to_num(signal))
    return Recording(name, clean, rate, lead_name, path, ranges)
