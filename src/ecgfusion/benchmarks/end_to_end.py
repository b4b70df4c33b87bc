"""`ecgfusion reproduce --preset quick` measured whole, and `--preset paper` extrapolated.

The paper preset (150 / 30 / 10 epochs, batch 16) would take days on 2 cores, so its time is
extrapolated from measured training steps at batch 16 on real beats, times the full training part
and the epoch counts, next to the same extrapolation with our settings (larger batches, cached
frozen backbones). The reproduction reported ~2.3 h for the 1D model on PTB on a GPU and
estimated ~20 h for full MIT-BIH on a 16-core CPU.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from ecgfusion.benchmarks.common import BenchResult, real_beats, real_labels
from ecgfusion.benchmarks.fusion import FUSIONS, epoch_times
from ecgfusion.benchmarks.inference import classify, hybrid
from ecgfusion.benchmarks.train import Variant, train_rate

PAPER_EPOCHS = {"1d": 150, "2d": 30, "fusion": 10}
PAPER_BATCH = 16
#: The reproduction's estimate for the full MIT-BIH run on a 16-core CPU (hours).
REPRODUCTION_CPU_HOURS = 20.0
OUR_BATCH = {"1d": 256, "2d": 64, "fusion": 256}
N_FUSION_STAGES = 4  # late + intermediate concat / sum / weighted sum
TINY_SECTION = {"data": {"max_beats": 300}, "trainer": {"max_epochs": 1, "batch_size": 64}}


def run_quick(tiny: bool, data_root: str | None) -> tuple[float, dict[str, dict]]:
    """Wall seconds of the quick preset (a tiny variant in tiny mode) and each stage's timing."""
    from ecgfusion.experiments.presets import Preset, load_preset
    from ecgfusion.experiments.reproduce import reproduce_one

    preset = load_preset("quick")
    if tiny:
        stages = {
            kind: {**preset.section(kind), **TINY_SECTION}
            for kind in ("1d", "2d", "baseline", "fusion")
        }
        preset = Preset(name="tiny", description="benchmark smoke run", stages=stages)
    with tempfile.TemporaryDirectory(prefix="ecgfusion-bench-") as tmp:
        start = time.perf_counter()
        out = reproduce_one("mitdb", "beat-random", preset, 1, Path(tmp) / "results",
                            Path(tmp) / "runs", "ecgfusion bench end-to-end", data_root,
                            None, log=lambda line: None)
        wall = time.perf_counter() - start
        summary = json.loads((out / "results.json").read_text())
        stages = {}
        for key, stage in summary["stages"].items():
            metrics = json.loads((Path(stage["runs"][0]) / "metrics.json").read_text())
            stages[key] = {**metrics.get("timing", {}),
                           "macro_f1": stage["metrics"][0].get("macro_f1")}
    return wall, stages


def split_sizes(data_root: str | None) -> tuple[int, int]:
    """Training and validation part sizes of full MIT-BIH, beat-random protocol."""
    from ecgfusion.data.cache import load_beats
    from ecgfusion.data.splits import make_split

    split = make_split(load_beats("mitdb", data_root=data_root), "beat-random", 0)
    return len(split.train), len(split.val)


def run(tiny: bool = False, data_root: str | None = None, quick: bool = True) -> BenchResult:
    """``quick=False`` only extrapolates (the quick preset took > 30 min on 2 busy cores)."""
    result = BenchResult(
        "end_to_end",
        "End to end: reproduce --preset quick (measured) and --preset paper (extrapolated)",
        tiny,
        ["what", "epochs", "s/epoch", "hours", "detail"],
    )
    wall, stages = run_quick(tiny, data_root) if quick else (None, {})
    label = "tiny override" if tiny else "quick preset"
    if quick:
        result.rows.append({"what": f"reproduce, {label} (measured)", "hours": wall / 3600,
                            "detail": f"{wall:.0f} s wall"})
        result.params["quick_wall_seconds"] = round(wall, 1)
    for key, timing in stages.items():
        seconds = timing.get("train_seconds")
        epochs = timing.get("epochs_trained")
        result.rows.append({
            "what": f"  {key}", "epochs": epochs,
            "s/epoch": seconds / epochs if seconds and epochs else None,
            "detail": f"test {timing.get('test_inference_seconds')} s, "
                      f"F1 {timing.get('macro_f1') or 0:.3f}",
        })

    n_train, n_val = split_sizes(data_root)
    n, repeats = (32, 1) if tiny else (512, 2)
    x = real_beats(max(n, 64), seed=5, data_root=data_root)
    y = real_labels(len(x))
    fusion = epoch_times(*FUSIONS["late fusion"], x[:n], y[:n], repeats, PAPER_BATCH)
    paper = {
        "1d": train_rate("cnn_transformer_1d", PAPER_BATCH, x, y, repeats, n).median,
        "2d": train_rate("cnn_2d", PAPER_BATCH, x, y, repeats, n).median,
        "fusion": fusion["uncached epoch"].median,
    }
    bf16 = Variant(bf16=True)
    batch = {k: min(b, n) for k, b in OUR_BATCH.items()}  # tiny mode has fewer beats
    cached = epoch_times(*FUSIONS["late fusion"], x[:n], y[:n], repeats, batch["fusion"])
    ours = {
        "1d": train_rate("cnn_transformer_1d", batch["1d"], x, y, repeats, n, bf16).median,
        "2d": train_rate("cnn_2d", batch["2d"], x, y, repeats, n,
                         Variant(channels_last=True, bf16=True)).median,
        # the cache is built once per stage: spread over the stage's epochs
        "fusion": cached["cached epoch"].median
        + cached["building the cache"].median / PAPER_EPOCHS["fusion"],
    }
    model = hybrid()
    classify(model, x[:64], 64)
    start = time.perf_counter()
    classify(model, x[:n], 1024)
    eval_per_beat = (time.perf_counter() - start) / n  # the hybrid: an upper bound per model
    totals = {}
    for setting, per_beat in (("paper settings", paper), ("our settings", ours)):
        total = 0.0
        for stage, epochs in PAPER_EPOCHS.items():
            copies = N_FUSION_STAGES if stage == "fusion" else 1
            # a cached fusion validates on cached outputs too: no backbone pass per epoch
            val = 0.0 if setting == "our settings" and stage == "fusion" else eval_per_beat
            s_epoch = per_beat[stage] * n_train + val * n_val
            hours = copies * epochs * s_epoch / 3600
            total += hours
            size = PAPER_BATCH if setting == "paper settings" else batch[stage]
            result.rows.append({
                "what": f"paper epochs, {setting}: {stage}", "epochs": epochs * copies,
                "s/epoch": s_epoch, "hours": hours, "detail": f"batch {size}",
            })
        result.rows.append({"what": f"paper epochs, {setting}: total", "hours": total})
        totals[setting] = total
    result.ratios["paper epochs: our settings vs paper settings"] = (
        totals["paper settings"] / totals["our settings"]
    )
    result.ratios["reproduction's 16-core CPU estimate vs our 2-core paper extrapolation"] = (
        REPRODUCTION_CPU_HOURS / totals["paper settings"]
    )
    result.ratios["reproduction's 16-core CPU estimate vs our settings on 2 cores"] = (
        REPRODUCTION_CPU_HOURS / totals["our settings"]
    )
    result.notes.append(
        f"extrapolation: per-beat training time x {n_train} training beats + hybrid inference "
        f"x {n_val} validation beats, per epoch, x 150 / 30 / 10 epochs ({N_FUSION_STAGES} "
        f"fusion stages). Paper settings: batch {PAPER_BATCH}, fp32, backbones run every fusion "
        "epoch. Our settings: bf16 autocast, batch 256 (1D) / 64 (2D), cached fusion backbones"
    )
    result.params.update({"n_train": n_train, "n_val": n_val, "paper_batch": PAPER_BATCH,
                          "measured_beats": n})
    result.notes.append(
        "the reproduction: ~2.3 h for the 1D CNN-Transformer on PTB on a GPU; ~20 h estimated "
        "for full MIT-BIH on a 16-core CPU (reduced set used instead)"
    )
    if tiny:
        result.notes.append("tiny mode: per-beat rates from a few steps; hours are indicative only")
    return result
