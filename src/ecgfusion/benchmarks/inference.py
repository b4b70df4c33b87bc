"""Hybrid (1D + 2D + late fusion) inference: beats/s by batch size, and one whole record.

The record path is what ``ecgfusion predict`` does: read the lead, detect R peaks, cut beats,
classify in batches; each stage is timed so the slowest one is visible.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ecgfusion.benchmarks.common import BenchResult, Timing, measure, real_beats
from ecgfusion.benchmarks.fusion import build_fusion
from ecgfusion.runtime import inference_autocast, use_bf16

RECORD = "100"
GOAL_RATE = 1500.0
GOAL_RECORD_S = 2.0


def hybrid(channels_last: bool = True, chunked: bool = True) -> nn.Module:
    """The late-fusion hybrid; the flags switch off the 2D CNN's CPU speed-ups (for 'before')."""
    model = build_fusion("late_fusion", {}).eval()
    model.backbone_2d.channels_last = channels_last
    if not chunked:
        model.backbone_2d.eval_chunk = 1 << 30
    return model


def classify(model: nn.Module, x: torch.Tensor, batch: int, bf16: bool = False) -> torch.Tensor:
    """Class probabilities [n, C] in float32, batch by batch."""
    with torch.inference_mode(), inference_autocast(bf16):
        return torch.cat([torch.softmax(model(xb).scores.float(), 1) for xb in x.split(batch)])


def record_stages(
    model: nn.Module, batch: int, seconds: float | None, data_root: str | None, bf16: bool = False
):
    """Callables for each stage of classifying one record, sharing their intermediate results."""
    from ecgfusion.data.beats import TARGET_FS, get_segmenter
    from ecgfusion.data.root import database_dir
    from ecgfusion.data.rpeaks import locate_beats
    from ecgfusion.inference.recording import read_recording

    path = database_dir("mitdb", data_root) / RECORD
    state: dict = {}

    def read() -> None:
        rec = read_recording(path)
        state["signal"] = rec.signal if seconds is None else rec.signal[: int(seconds * rec.fs)]
        state["fs"] = rec.fs

    def detect() -> None:
        state["low"], state["peaks"], _ = locate_beats(state["signal"], state["fs"])

    def segment() -> None:
        beats, flat = get_segmenter("kachuee")(state["low"], state["peaks"], TARGET_FS)
        state["x"] = torch.from_numpy(np.ascontiguousarray(beats[~flat]))

    def predict() -> None:
        classify(model, state["x"], batch, bf16)  # as `ecgfusion predict --precision auto`

    return {"read": read, "detect": detect, "segment": segment, "classify": predict}, state


def run(tiny: bool = False, data_root: str | None = None) -> BenchResult:
    batches = (1, 16, 64) if tiny else (1, 64, 256, 1024)
    n, repeats = (64, 2) if tiny else (1024, 3)
    x = real_beats(n, seed=4, data_root=data_root)
    big = batches[-1]
    result = BenchResult(
        "inference",
        "Hybrid (1D + 2D + late fusion) inference (real MIT-BIH beats, record " + RECORD + ")",
        tiny,
        ["what", "batch", "beats", "ms/beat", "beats/s", "spread"],
        params={"beats": n, "repeats": repeats, "record": RECORD},
    )

    def row(what: str, batch: int | None, beats: int, timing: Timing) -> None:
        result.rows.append({"what": what, "batch": batch, "beats": beats,
                            "ms/beat": timing.median * 1e3, "beats/s": timing.rate(),
                            "spread": timing.spread})

    model = hybrid()  # the default: fp32, 2D convolutions channels-last
    rates = {}
    for batch in batches:
        m = min(n, 8 if tiny else 64) if batch == 1 else min(n, max(batch, n // 4))
        timing = measure(lambda b=batch, m=m: classify(model, x[:m], b), repeats, per=m)
        row("fp32 (default)", batch, m, timing)
        rates[("fp32", batch)] = timing.rate()
    reference = classify(model, x, big)
    variants = {
        "fp32, 2D whole batch": (hybrid(chunked=False), False),
        "fp32, 2D whole batch + NCHW (before)": (hybrid(channels_last=False, chunked=False), False),
        "bf16 autocast": (model, True),
    }
    for label, (variant_model, bf16) in variants.items():
        timing = measure(lambda vm=variant_model, b=bf16: classify(vm, x, big, b), repeats,
                         per=n)
        row(label, big, n, timing)
        rates[(label, big)] = timing.rate()
        result.ratios[f"{label} vs default (batch {big})"] = (
            timing.rate() / rates[("fp32", big)]
        )
        probs = classify(variant_model, x, big, bf16)
        same = float((probs.argmax(1) == reference.argmax(1)).float().mean())
        diff = float((probs - reference).abs().max())
        result.params[f"{label}: identical argmax"] = same
        result.params[f"{label}: max prob diff"] = diff
        result.notes.append(f"{label}: argmax identical to the default for {same:.2%} of {n} "
                            f"beats, max probability difference {diff:.2g}")
    best_batch = max((b for b in batches if b > 1), key=lambda b: rates[("fp32", b)])
    result.ratios[f"batch {best_batch} (best) vs batch 1"] = (
        rates[("fp32", best_batch)] / rates[("fp32", 1)]
    )
    best = max(rate for (_, batch), rate in rates.items() if batch == big)
    result.add_target(f"hybrid beats/s at batch {big} (best variant)", best, GOAL_RATE)

    seconds = 20.0 if tiny else None
    bf16 = use_bf16("auto")
    stages, state = record_stages(model, best_batch, seconds, data_root, bf16)
    total = 0.0
    for name, fn in stages.items():
        timing = measure(fn, repeats, warmup=0 if name == "read" else 1)
        total += timing.median
        what = f"record {RECORD}: {name}" + (", bf16" if name == "classify" and bf16 else "")
        row(what, best_batch if name == "classify" else None,
            len(state["x"]) if "x" in state else None, timing)
    result.rows.append({"what": f"record {RECORD}: total", "beats": len(state["x"]),
                        "ms/beat": total / len(state["x"]) * 1e3})
    result.params["record_seconds"] = round(total, 3)
    result.params["record_length_s"] = round(len(state["signal"]) / state["fs"], 1)
    result.ratios[f"record {RECORD}: faster than real time"] = (
        result.params["record_length_s"] / total
    )
    if not tiny:
        result.add_target(f"whole record {RECORD} (s)", total, GOAL_RECORD_S, higher=False)
    result.notes.append(
        "freshly initialised weights (speed does not depend on them); argmax agreement and max "
        "probability difference of the variants are against fp32 on the same real beats"
    )
    return result
