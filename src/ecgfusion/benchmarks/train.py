"""Training throughput (forward + backward + Adam step) per model and batch size, and its MFU.

MFU (model FLOPs utilisation) = FLOPs counted by torch's FlopCounterMode for one step, times
steps per second, over the fp32 matmul peak measured in the same process a moment before.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ecgfusion.benchmarks.common import (
    BenchResult,
    Timing,
    matmul_peak,
    measure,
    real_beats,
    real_labels,
)

MODELS = ("cnn_transformer_1d", "cnn_2d")
SHORT = {"cnn_transformer_1d": "1D CNN-Transformer", "cnn_2d": "2D CNN"}
GOALS = {"cnn_transformer_1d": 2000.0, "cnn_2d": 1000.0}
MFU_GOAL = 0.40
#: Batch sizes swept per model, (full, tiny): the 1D model gains from large batches, the 2D CNN's
#: activations (8 x 128 x 128 per beat after the first block) fall out of cache at large ones.
BATCHES = {
    "cnn_transformer_1d": {False: (64, 256, 512, 1024), True: (16, 32)},
    "cnn_2d": {False: (16, 32, 64, 256), True: (16, 32)},
}


@dataclass(frozen=True)
class Variant:
    """How a step runs: the 2D CNN's image layout (CNN2D.channels_last; None for the 1D model)
    and bf16 autocast."""

    channels_last: bool | None = None
    bf16: bool = False

    @property
    def label(self) -> str:
        precision = "bf16 autocast" if self.bf16 else "fp32"
        if self.channels_last is None:
            return precision
        return precision + (", channels_last" if self.channels_last else ", NCHW")


def build(name: str, variant: Variant = Variant(), seed: int = 0) -> nn.Module:
    from ecgfusion.models import create_model

    torch.manual_seed(seed)
    model = create_model(name, n_classes=5, n_samples=187, sampling_rate=125.0)
    if name == "cnn_2d" and variant.channels_last is not None:
        model.channels_last = variant.channels_last
    return model


def autocast(variant: Variant):
    if variant.bf16:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_step(model: nn.Module, variant: Variant = Variant(), forward=None):
    """One optimiser step on (inputs, y), as the trainer takes it (Adam, cross-entropy) on the
    trainable parameters; ``forward`` (default: the model) maps inputs to a ModelOutput."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    forward = forward or model

    def step(x, y: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(variant):
            loss = loss_fn(forward(x).scores.float(), y)
        loss.backward()
        optimizer.step()

    return step


def step_flops(name: str, batch: int, x: Tensor, y: Tensor) -> int:
    """FLOPs of one forward + backward at ``batch`` (matmuls and convolutions, as counted)."""
    model = build(name)
    loss_fn = nn.CrossEntropyLoss()
    with FlopCounterMode(display=False) as counter:
        loss_fn(model(x[:batch]).scores, y[:batch]).backward()
    return int(counter.get_total_flops())


def train_rate(
    name: str,
    batch: int,
    x: Tensor,
    y: Tensor,
    repeats: int,
    beats_per_repeat: int,
    variant: Variant = Variant(),
) -> Timing:
    """Seconds per training beat (median over repeats of ceil(beats_per_repeat / batch) steps)."""
    model = build(name, variant)
    step = make_step(model, variant)
    steps = max(1, -(-beats_per_repeat // batch))
    chunks = [(x[i : i + batch], y[i : i + batch]) for i in range(0, steps * batch, batch)]
    if any(len(c[0]) < batch for c in chunks):
        raise ValueError(f"need {steps * batch} beats for {steps} steps of batch {batch}")

    def run() -> None:
        for xb, yb in chunks:
            step(xb, yb)

    return measure(run, repeats, per=steps * batch)


def run(tiny: bool = False, data_root: str | None = None) -> BenchResult:
    repeats, per_repeat = (2, 32) if tiny else (3, 512)
    largest = max(max(b[tiny]) for b in BATCHES.values())
    x = real_beats(max(largest, per_repeat) + largest, seed=2, data_root=data_root)
    y = real_labels(len(x))
    result = BenchResult(
        "train",
        "Training throughput, forward + backward + Adam step (real MIT-BIH beats)",
        tiny,
        ["model", "batch", "variant", "beats/s", "spread", "GFLOP/s", "MFU"],
        params={"batches": {k: v[tiny] for k, v in BATCHES.items()}, "repeats": repeats,
                "beats_per_repeat": per_repeat},
    )
    peak = matmul_peak(0.5 if tiny else 2.0)
    for name in MODELS:
        flops_per_beat = step_flops(name, 8, x, y) / 8

        def add(batch: int, variant: Variant, timing: Timing, name=name, fpb=flops_per_beat):
            rate = timing.rate()
            result.rows.append(
                {
                    "model": SHORT[name],
                    "batch": batch,
                    "variant": variant.label,
                    "beats/s": rate,
                    "spread": timing.spread,
                    "GFLOP/s": rate * fpb / 1e9,
                    "MFU": rate * fpb / peak,
                }
            )
            return rate

        two_d = name == "cnn_2d"
        batches = BATCHES[name][tiny]
        base = Variant(channels_last=True if two_d else None)  # the models' defaults
        rates = {
            b: add(b, base, train_rate(name, b, x, y, repeats, per_repeat, base)) for b in batches
        }
        best = max(rates, key=rates.get)
        variants = [Variant(channels_last=False)] if two_d else []
        variants.append(Variant(channels_last=base.channels_last, bf16=True))
        best_rate = rates[best]
        for variant in variants:
            rate = add(best, variant, train_rate(name, best, x, y, repeats, per_repeat, variant))
            result.ratios[f"{SHORT[name]}: {variant.label} vs {base.label} (batch {best})"] = (
                rate / rates[best]
            )
            best_rate = max(best_rate, rate)
        worst = min(rates, key=rates.get)
        result.ratios[f"{SHORT[name]}: batch {best} (best) vs batch {worst} (worst)"] = (
            rates[best] / rates[worst]
        )
        result.params[f"{name}_train_mflop_per_beat"] = round(flops_per_beat / 1e6, 1)
        result.add_target(f"{SHORT[name]} training beats/s (best)", best_rate, GOALS[name])
        if name == "cnn_transformer_1d":
            result.add_target("1D fp32 MFU at best batch", rates[best] * flops_per_beat / peak,
                              MFU_GOAL)
    # MFU over the better of the peaks measured before and after: load from other processes
    # during one of them would otherwise inflate the utilisation.
    after = matmul_peak(0.5 if tiny else 2.0)
    if after > peak:
        scale = peak / after
        for row in result.rows:
            row["MFU"] *= scale
        for target in result.targets:
            if "MFU" in target["target"]:
                target["value"] *= scale
                target["met"] = bool(target["value"] >= target["goal"])
    result.params["matmul_peak_gflops"] = {"before": round(peak / 1e9, 1),
                                           "after": round(after / 1e9, 1)}
    result.notes.append(
        f"fp32 matmul peak (2048^2 loop, same process, best of before/after): "
        f"{max(peak, after) / 1e9:.0f} GFLOP/s; MFU counts forward + backward FLOPs "
        "(FlopCounterMode), not the optimiser; bf16 can exceed 1 (AVX512-BF16 doubles the rate)"
    )
    return result
