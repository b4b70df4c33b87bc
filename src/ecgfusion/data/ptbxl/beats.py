"""The PTB normal/abnormal beat set: lead II of PTB-XL's 100 Hz records, cut at detected R peaks.

The R peaks come from the ``xqrs-250-up`` detector of :mod:`ecgfusion.data.rpeaks` (measured on
LUDB for 100 Hz leads); its name is kept in the beat set's meta["detector"] so a model trained on
these beats is served with the same detector.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ecgfusion.data.beats import TARGET_FS, BeatSet, get_segmenter, resample_indices
from ecgfusion.data.labels import PTB_CLASSES
from ecgfusion.data.ptbxl.metadata import FOLD_PARTS, binary_label
from ecgfusion.data.ptbxl.signals import (
    SUBSET_NOTE,
    _left_out,
    _usable_records,
    flat_or_nan_leads,
    read_signal,
)
from ecgfusion.data.root import database_dir
from ecgfusion.data.rpeaks import XQRS_250_UP, detect_r_peaks, get_detector
from ecgfusion.errors import DataError
from ecgfusion.progress import track

#: The R-peak detector the beat set is cut with (see ecgfusion.data.rpeaks for the measurement).
DETECTOR = XQRS_250_UP


def build_ptbxl_beats(
    db_dir: Path,
    method: str = "kachuee",
    records: list[str] | None = None,
    progress: bool = False,
) -> BeatSet:
    """The PTB normal/abnormal beat set (lead II, 125 Hz) from PTB-XL's 100 Hz records.

    ``records`` are ecg_ids ("1" or "ptbxl:1"). Per-record folds are in meta["record_folds"].
    """
    segment = get_segmenter(method)
    db_dir = Path(db_dir)
    fs = 100
    meta, column, report = _usable_records(db_dir, fs, records)
    parts: list[BeatSet] = []
    bad_lead: list[int] = []
    too_few: list[int] = []
    flat_dropped = 0
    folds: dict[str, int] = {}
    for eid, name, fold, patient, classes in track(
        list(
            zip(
                meta["ecg_id"],
                meta[column],
                meta["strat_fold"],
                meta["patient_id"],
                meta["superclasses"],
                strict=True,
            )
        ),
        description="detecting R peaks in PTB-XL lead II",
        enabled=progress,
    ):
        lead = read_signal(db_dir, name, fs, leads=("II",))
        if flat_or_nan_leads(lead, ("II",)):
            bad_lead.append(int(eid))
            continue
        signal, peaks = detect_r_peaks(lead[0], fs, DETECTOR)
        if len(peaks) < 2:
            too_few.append(int(eid))
            continue
        beats, flat = segment(signal, peaks, TARGET_FS)
        keep = ~flat
        flat_dropped += int(flat.sum())
        n = int(keep.sum())
        record_id = f"ptbxl:{eid}"
        folds[record_id] = int(fold)
        parts.append(
            BeatSet(
                signals=beats[keep],
                labels=np.full(n, binary_label(classes), dtype=np.int64),
                class_names=PTB_CLASSES,
                record=np.full(n, record_id).astype(str),
                patient=np.full(n, f"ptbxl:{patient}").astype(str),
                sample=resample_indices(peaks[keep], TARGET_FS, fs),
                fs=TARGET_FS,
                dataset="ptbxl-beats",
                method=method,
            )
        )
    report.append(_left_out(bad_lead, "with a NaN or flat lead II dropped"))
    report.append(_left_out(too_few, "with fewer than 2 detected R peaks left out"))
    report.append(f"{flat_dropped} flat beats dropped (no amplitude range)")
    if not parts:
        raise DataError(f"no PTB-XL beats could be cut under {db_dir}: {'; '.join(report[1:])}")
    n_beats = sum(len(p) for p in parts)
    report.append(f"{n_beats} beats ({method}, lead II, 125 Hz) from {len(parts)} records")
    info = {
        "source": str(db_dir),
        "subset": SUBSET_NOTE,
        "detector": DETECTOR,
        "detector_description": get_detector(DETECTOR).description,
        "lead": "II",
        "label_rule": "normal = diagnostic superclasses exactly {NORM}; abnormal = any other",
        "record_folds": folds,
        "flat_dropped": flat_dropped,
        "bad_lead_records": bad_lead,
        "too_few_peaks_records": too_few,
        "report": report,
    }
    return BeatSet.concatenate(parts, meta=info)


def load_ptbxl_beats(
    records: list[str] | None = None,
    method: str = "kachuee",
    data_root: str | os.PathLike | None = None,
    progress: bool = False,
) -> BeatSet:
    """Straight from the WFDB files (no cache); ecgfusion.data.cache.load_beats caches it."""
    return build_ptbxl_beats(database_dir("ptbxl", data_root), method, records, progress)


def ptbxl_beats_table(beats: BeatSet) -> str:
    """Beats and records per class for the strat-fold parts and in all (the printed class table)."""
    folds = beats.meta.get("record_folds", {})
    beat_fold = np.array([int(folds.get(str(r), 0)) for r in beats.record])
    parts = {name: np.isin(beat_fold, f) for name, f in FOLD_PARTS.items()}
    parts["all"] = np.ones(len(beats), dtype=bool)
    header = f"{'part':<6}" + "".join(
        f"{c + ' beats':>16}{c + ' records':>18}" for c in beats.class_names
    )
    lines = [header]
    for name, mask in parts.items():
        cells = []
        for k in range(len(beats.class_names)):
            sel = mask & (beats.labels == k)
            cells.append(f"{int(sel.sum()):>16}{len(np.unique(beats.record[sel])):>18}")
        lines.append(f"{name:<6}" + "".join(cells))
    return "\n".join(lines)
