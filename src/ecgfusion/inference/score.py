"""Beat-by-beat scoring in the spirit of ANSI/AAMI EC57: QRS detection and per-class Se / +P.

Matching is wfdb's ``compare_annotations`` (150 ms window), not ours. Reference symbols are mapped
to AAMI classes; predicted annotations carry AAMI letters (N S V F Q), which are WFDB beat codes
of their own, so both sides go through the same map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb
from wfdb import processing

from ecgfusion.data.labels import AAMI_CLASSES, AAMI_MAP, BEAT_SYMBOLS
from ecgfusion.errors import DataError
from ecgfusion.evaluation.report import markdown_table

MATCH_SECONDS = 0.150
MISSED = len(AAMI_CLASSES)  # row/column index for "no partner"


@dataclass
class Annotations:
    record: str
    fs: float
    sample: np.ndarray
    symbol: np.ndarray


@dataclass
class RecordScore:
    record: str
    tp: int
    fn: int
    fp: int
    #: [ref class + missed row, pred class + extra column]: confusion[r, p] counts matched beats,
    #: confusion[r, MISSED] reference beats never detected, confusion[MISSED, p] false detections.
    confusion: np.ndarray

    @property
    def qrs_se(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def qrs_ppv(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    def class_se(self, c: int) -> float:
        return _ratio(self.confusion[c, c], self.confusion[c, :].sum())

    def class_ppv(self, c: int) -> float:
        return _ratio(self.confusion[c, c], self.confusion[:, c].sum())


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def read_annotations(path: str | Path) -> Annotations:
    """``DIR/100.atr`` -> record 100's annotations of extension ``atr`` (beats only)."""
    path = Path(path)
    record, ext = path.with_suffix(""), path.suffix.lstrip(".")
    if not ext or not path.is_file():
        raise DataError(f"{path}: annotation file not found; pass e.g. DIR/100.atr or OUT/100.ecgf")
    try:
        ann = wfdb.rdann(str(record), ext)
    except Exception as exc:
        raise DataError(f"{path}: wfdb cannot read it as an annotation file ({exc})") from None
    symbols = np.asarray(ann.symbol, dtype=str)
    beats = np.isin(symbols, list(BEAT_SYMBOLS))
    fs = ann.fs
    if fs is None:
        header = record.with_suffix(".hea")
        if not header.is_file():
            raise DataError(f"{path} stores no sampling rate and {header} is missing")
        try:
            fs = wfdb.rdheader(str(record)).fs
        except Exception as exc:  # wfdb raises bare ValueErrors/IndexErrors on corrupt headers
            raise DataError(
                f"{header}: not a readable WFDB header ({type(exc).__name__}: {exc}); it gives "
                f"the sampling rate of {path} — re-download the record's .hea"
            ) from None
        if fs is None or not np.isfinite(fs) or fs <= 0:
            raise DataError(
                f"{header} gives no valid sampling rate ({fs}); re-download the record's .hea"
            )
    return Annotations(record.name, float(fs), np.asarray(ann.sample)[beats], symbols[beats])


def _classes(symbols: np.ndarray) -> np.ndarray:
    index = {c: i for i, c in enumerate(AAMI_CLASSES)}
    return np.array([index.get(AAMI_MAP.get(s, ""), -1) for s in symbols], dtype=np.int64)


def score_record(pred: Annotations, ref: Annotations) -> RecordScore:
    if pred.fs != ref.fs:
        raise DataError(
            f"record {ref.record}: predictions at {pred.fs:g} Hz, reference at {ref.fs:g} Hz; "
            "write predictions at the record's own sampling rate"
        )
    cmp = processing.compare_annotations(
        ref.sample, pred.sample, int(round(MATCH_SECONDS * ref.fs))
    )
    ref_cls, pred_cls = _classes(ref.symbol), _classes(pred.symbol)
    confusion = np.zeros((MISSED + 1, MISSED + 1), dtype=np.int64)
    matched_ref = np.asarray(cmp.matched_ref_inds, dtype=np.int64)
    matched_pred = np.asarray(cmp.matched_test_inds, dtype=np.int64)
    pairs = (ref_cls[matched_ref] >= 0) & (pred_cls[matched_pred] >= 0)
    np.add.at(confusion, (ref_cls[matched_ref][pairs], pred_cls[matched_pred][pairs]), 1)
    missed = ref_cls[np.asarray(cmp.unmatched_ref_inds, dtype=np.int64)]
    np.add.at(confusion[:, MISSED], missed[missed >= 0], 1)
    extra = pred_cls[np.asarray(cmp.unmatched_test_inds, dtype=np.int64)]
    np.add.at(confusion[MISSED], extra[extra >= 0], 1)
    return RecordScore(ref.record, int(cmp.tp), int(cmp.fn), int(cmp.fp), confusion)


def gross(scores: list[RecordScore]) -> RecordScore:
    """All records pooled beat by beat (EC57's 'gross' statistics)."""
    return RecordScore(
        "gross",
        sum(s.tp for s in scores),
        sum(s.fn for s in scores),
        sum(s.fp for s in scores),
        np.sum([s.confusion for s in scores], axis=0),
    )


def score_table(scores: list[RecordScore]) -> list[dict[str, float | str]]:
    """One row per record, then gross and average rows: QRS and per-class Se/+P (fractions)."""

    def row(name: str, values: dict[str, float]) -> dict[str, float | str]:
        return {"record": name, **values}

    def metrics(s: RecordScore) -> dict[str, float]:
        out = {"QRS Se": s.qrs_se, "QRS +P": s.qrs_ppv}
        for i, c in enumerate(AAMI_CLASSES):
            out[f"{c} Se"] = s.class_se(i)
            out[f"{c} +P"] = s.class_ppv(i)
        return out

    rows = [row(s.record, metrics(s)) for s in scores]
    total = row("gross", metrics(gross(scores)))
    keys = list(total)[1:]

    def mean_defined(values: list[float]) -> float:
        defined = [v for v in values if not np.isnan(v)]
        return float(np.mean(defined)) if defined else float("nan")

    average = row("average", {k: mean_defined([r[k] for r in rows]) for k in keys})
    return [*rows, total, average]


def format_table(rows: list[dict[str, float | str]]) -> str:
    """Markdown table in percent; '–' where a ratio is undefined (no beats of that class)."""
    keys = list(rows[0])
    cells = [
        [str(r["record"])] + ["–" if np.isnan(r[k]) else f"{100 * r[k]:.2f}" for k in keys[1:]]
        for r in rows
    ]
    return markdown_table(keys, cells)
