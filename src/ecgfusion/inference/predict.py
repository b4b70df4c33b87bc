"""From a raw recording to labelled beats: detect, cut as in training, classify, write.

The segmenter and its parameters come from the run's saved config, never re-typed, and the R-peak
detector from the model card (:func:`ecgfusion.data.rpeaks.serving_detector`), so a beat is found
and cut at prediction time exactly the way the model saw beats in training.
"""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import wfdb
from torch import nn

from ecgfusion.data.beats import TARGET_FS, get_segmenter
from ecgfusion.data.rpeaks import DEFAULT_DETECTOR, get_detector, locate_beats
from ecgfusion.errors import DataError
from ecgfusion.features.rr import rr_features
from ecgfusion.inference.recording import Recording
from ecgfusion.io import atomic_write_bytes
from ecgfusion.models.base import model_inputs
from ecgfusion.progress import track
from ecgfusion.runtime import inference_autocast

ANNOTATION_EXT = "ecgf"
#: Classes counted as ectopic in the burden: supraventricular and ventricular ectopy (+ fusion).
ECTOPIC = ("S", "V", "F")


@dataclass
class Predictor:
    model: nn.Module
    class_names: tuple[str, ...]
    method: str
    dataset: str
    protocol: str
    source: str
    #: Records the model was trained or selected on; predicting on them is leakage.
    seen_records: frozenset[str] = field(default_factory=frozenset)
    #: The R-peak detector (a name of ecgfusion.data.rpeaks.DETECTORS) its beats were cut with.
    detector: str = DEFAULT_DETECTOR


@dataclass
class Prediction:
    recording: Recording
    samples: np.ndarray  # R peaks at the recording's own rate, classified beats only
    labels: np.ndarray  # int index into class_names
    probs: np.ndarray  # [n, n_classes]
    class_names: tuple[str, ...]
    skipped: int  # detected beats left out (flat span or inside a NaN/flat stretch)
    warnings: list[str]
    #: RR-interval features of the classified beats (features.rr.RR_FEATURE_NAMES), from the
    #: whole detected peak sequence, as training beats get them from every annotated beat.
    rr: np.ndarray | None = None

    @property
    def times(self) -> np.ndarray:
        return self.samples / self.recording.fs

    @property
    def symbols(self) -> list[str]:
        """The class name of each beat (``labels`` as names)."""
        return [self.class_names[k] for k in self.labels]

    def counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {c: int(k) for c, k in zip(self.class_names, counts, strict=True)}

    def summary(self, predictor: Predictor) -> dict:
        counts = self.counts()
        total = int(sum(counts.values()))
        rr = np.diff(self.times)
        rr = rr[(rr > 0.2) & (rr < 3.0)]  # drop gaps across skipped stretches
        ectopic = sum(counts.get(c, 0) for c in ECTOPIC)
        return {
            "record": self.recording.name,
            "source": str(self.recording.source),
            "lead": self.recording.lead,
            "sampling_rate_hz": self.recording.fs,
            "duration_s": round(self.recording.seconds, 2),
            "beats": total,
            "beats_skipped": self.skipped,
            "counts": counts,
            "percent": {c: round(100 * k / total, 2) if total else 0.0 for c, k in counts.items()},
            "mean_heart_rate_bpm": round(60.0 / float(np.mean(rr)), 1) if len(rr) else None,
            "ectopic_burden_percent": round(100 * ectopic / total, 2) if total else 0.0,
            "ectopic_classes": [c for c in ECTOPIC if c in counts],
            "bad_ranges_s": [[round(a, 2), round(b, 2)] for a, b in self.recording.bad_ranges],
            "model": predictor.source,
            "model_dataset": predictor.dataset,
            "model_protocol": predictor.protocol,
            "segmenter": predictor.method,
            "detector": predictor.detector,
            "detector_description": get_detector(predictor.detector).description,
            "warnings": self.warnings,
        }


def beat_probabilities(
    predictor: Predictor,
    beats: np.ndarray,
    batch_size: int = 256,
    progress: bool = False,
    bf16: bool = False,
    rr: np.ndarray | None = None,
) -> np.ndarray:
    """Softmax class probabilities float32 [n, n_classes] of cut beats [n, n_samples]; ``rr``
    [n, 8]: their RR features, which a model with a rhythm branch reads too."""
    named = {"x": torch.from_numpy(np.ascontiguousarray(beats, dtype=np.float32))}
    if rr is not None:
        named["rr"] = torch.from_numpy(np.ascontiguousarray(rr, dtype=np.float32))
    named = model_inputs(predictor.model, named)
    n = len(beats)
    probs = []
    predictor.model.eval()
    starts = list(range(0, n, batch_size))
    with torch.inference_mode(), inference_autocast(bf16):
        for s in track(starts, description=f"classifying {n} beats", enabled=progress):
            batch = {k: v[s : s + batch_size] for k, v in named.items()}
            scores = predictor.model(**batch).scores.float()
            probs.append(torch.softmax(scores, dim=1))
    p = torch.cat(probs).numpy() if probs else np.zeros((0, len(predictor.class_names)))
    return p.astype(np.float32)


def predict_recording(
    recording: Recording,
    predictor: Predictor,
    batch_size: int = 256,
    progress: bool = False,
    bf16: bool = False,
) -> Prediction:
    warnings: list[str] = []
    if recording.name in predictor.seen_records:
        warnings.append(
            f"LEAKAGE: record {recording.name} was in the training/validation part of this model "
            f"({predictor.dataset}, {predictor.protocol}); its predictions say nothing about new "
            "patients"
        )
    if recording.bad_ranges:
        spans = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in recording.bad_ranges[:5])
        more = f" and {len(recording.bad_ranges) - 5} more" if len(recording.bad_ranges) > 5 else ""
        warnings.append(f"NaN or flat stretches skipped: {spans}{more}")
    signal, peaks, native = locate_beats(recording.signal, recording.fs, predictor.detector)
    if len(peaks) < 2:
        raise DataError(
            f"{recording.source}: fewer than 2 QRS complexes found in lead {recording.lead}; "
            "check the lead (--lead) and the sampling rate"
        )
    beats, flat = get_segmenter(predictor.method)(signal, peaks, TARGET_FS)
    in_bad = np.zeros(len(peaks), dtype=bool)
    for a, b in recording.bad_ranges:
        in_bad |= (peaks >= a * TARGET_FS - 1) & (peaks <= b * TARGET_FS + 1)
    keep = ~flat & ~in_bad
    # From every detected peak before any beat is dropped, as training takes every annotation.
    rr = rr_features(native, recording.fs)[keep]
    p = beat_probabilities(predictor, beats[keep], batch_size, progress, bf16, rr=rr)
    return Prediction(
        recording=recording,
        samples=native[keep],
        labels=p.argmax(1).astype(np.int64),
        probs=p,
        class_names=predictor.class_names,
        skipped=int((~keep).sum()),
        warnings=warnings,
        rr=rr,
    )


def _annotation_bytes(pred: Prediction) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        wfdb.wrann(
            pred.recording.name,
            ANNOTATION_EXT,
            pred.samples,
            symbol=pred.symbols,
            fs=pred.recording.fs,
            write_dir=tmp,
        )
        return (Path(tmp) / f"{pred.recording.name}.{ANNOTATION_EXT}").read_bytes()


def _csv_text(pred: Prediction) -> str:
    head = ["sample", "time_s", "class", *[f"p_{c}" for c in pred.class_names]]
    lines = [",".join(head)]
    for s, t, k, row in zip(pred.samples, pred.times, pred.labels, pred.probs, strict=True):
        lines.append(f"{s},{t:.3f},{pred.class_names[k]}," + ",".join(f"{v:.5f}" for v in row))
    return "\n".join(lines) + "\n"


def _summary_markdown(summary: dict) -> str:
    lines = [
        f"# Beat classification of record {summary['record']}",
        "",
        f"- source: `{summary['source']}` (lead {summary['lead']}, "
        f"{summary['sampling_rate_hz']:g} Hz, {summary['duration_s']} s)",
        f"- model: `{summary['model']}` (trained on {summary['model_dataset']}, "
        f"{summary['model_protocol']}); segmenter {summary['segmenter']}",
        f"- detector: {summary['detector']} ({summary['detector_description']})",
        f"- beats classified: {summary['beats']} (skipped: {summary['beats_skipped']})",
        f"- mean heart rate: {summary['mean_heart_rate_bpm']} bpm",
        f"- ectopic burden ({'+'.join(summary['ectopic_classes'])}): "
        f"{summary['ectopic_burden_percent']} %",
        "",
        "| class | beats | % |",
        "|---|---:|---:|",
    ]
    lines += [f"| {c} | {k} | {summary['percent'][c]} |" for c, k in summary["counts"].items()]
    if summary["warnings"]:
        lines += ["", *[f"**Warning:** {w}" for w in summary["warnings"]]]
    return "\n".join(lines) + "\n"


def _worst_minute(pred: Prediction) -> float:
    minutes = (pred.times // 60).astype(int)
    abnormal = pred.labels != 0
    if not abnormal.any():
        return 0.0
    return float(np.bincount(minutes[abnormal]).argmax() * 60)


def _strip_png(pred: Prediction, window: tuple[float, float] | None) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rec = pred.recording
    if window is not None:
        spans = [window]
    else:
        worst = _worst_minute(pred)
        spans = [(0.0, 60.0)] + ([(worst, worst + 60.0)] if worst > 0 else [])
    colours = dict(zip(pred.class_names, plt.get_cmap("tab10").colors, strict=False))
    fig, axes = plt.subplots(len(spans), 1, figsize=(16, 3.2 * len(spans)), squeeze=False)
    for ax, (a, b) in zip(axes[:, 0], spans, strict=True):
        lo, hi = int(a * rec.fs), min(int(b * rec.fs), len(rec.signal))
        t = np.arange(lo, hi) / rec.fs
        ax.plot(t, rec.signal[lo:hi], color="0.3", linewidth=0.6)
        sel = (pred.samples >= lo) & (pred.samples < hi)
        for s, k in zip(pred.samples[sel], pred.labels[sel], strict=True):
            name = pred.class_names[k]
            ax.annotate(
                name,
                (s / rec.fs, rec.signal[s]),
                color=colours[name],
                fontsize=8,
                ha="center",
                va="bottom",
                fontweight="bold",
            )
        ax.set_xlim(a, b)
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"{rec.lead}")
        title = (
            "window" if window else ("first minute" if a == 0 else "minute with most non-N beats")
        )
        ax.set_title(f"record {rec.name} — {title} ({a:.0f}-{b:.0f} s)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def write_outputs(
    pred: Prediction, predictor: Predictor, out_dir: Path, window: tuple[float, float] | None = None
) -> dict[str, Path]:
    """Write the annotation, CSV, summary and strip; everything is rendered before any write."""
    summary = pred.summary(predictor)
    name = pred.recording.name
    rendered = {
        f"{name}.{ANNOTATION_EXT}": _annotation_bytes(pred),
        f"{name}_beats.csv": _csv_text(pred).encode(),
        f"{name}_summary.json": json.dumps(summary, indent=2).encode(),
        f"{name}_summary.md": _summary_markdown(summary).encode(),
        f"{name}_strip.png": _strip_png(pred, window),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for filename, data in rendered.items():
        written[filename] = atomic_write_bytes(out_dir / filename, data)
    return written
