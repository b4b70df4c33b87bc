"""A frozen-backbone fusion epoch: backbones every epoch vs their outputs computed once and cached.

Frozen backbones (eval mode, no gradients) map each beat to the same ModelOutput every epoch, so
training only needs ``model.fuse`` on cached outputs; the cache costs one inference pass.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ecgfusion.benchmarks.common import BenchResult, Timing, measure, real_beats, real_labels
from ecgfusion.benchmarks.train import make_step

FUSIONS = {"late fusion": ("late_fusion", {}), "intermediate concat": (
    "intermediate_fusion", {"mode": "concat"})}
GOAL = 50.0
BATCH = 256  # the presets' fusion batch


def build_fusion(name: str, params: dict, seed: int = 0):
    from ecgfusion.models import create_model

    torch.manual_seed(seed)
    return create_model(name, n_classes=5, n_samples=187, sampling_rate=125.0, freeze=True,
                        **params)


def epoch_times(
    name: str, params: dict, x: Tensor, y: Tensor, repeats: int, batch: int
) -> dict[str, Timing]:
    """Per-beat seconds of an uncached epoch, a cached epoch (FusionModel.fuse_packed on
    FusionModel.cache_backbone_outputs, what the trainer does) and of building the cache."""
    model = build_fusion(name, params)
    slices = [slice(i, i + batch) for i in range(0, len(x), batch)]
    step = make_step(model)

    def uncached() -> None:
        for s in slices:
            step(x[s], y[s])

    packed = model.cache_backbone_outputs(x)
    head_step = make_step(model, forward=model.fuse_packed)

    def cached() -> None:
        for s in slices:
            head_step(packed[s], y[s])

    return {
        "uncached epoch": measure(uncached, repeats, per=len(x)),
        "cached epoch": measure(cached, max(repeats, 5), per=len(x)),
        "building the cache": measure(
            lambda: model.cache_backbone_outputs(x), repeats, per=len(x)
        ),
    }


def run(tiny: bool = False, data_root: str | None = None) -> BenchResult:
    n, repeats, batch = (128, 2, 64) if tiny else (1024, 3, BATCH)
    x = real_beats(n, seed=3, data_root=data_root)
    y = real_labels(n)
    result = BenchResult(
        "fusion",
        f"Frozen-backbone fusion epoch, batch {batch} (real MIT-BIH beats)",
        tiny,
        ["fusion", "what", "beats", "us/beat", "beats/s", "spread"],
        params={"beats": n, "repeats": repeats, "batch": batch},
    )
    for label, (name, params) in FUSIONS.items():
        times = epoch_times(name, params, x, y, repeats, batch)
        for what, timing in times.items():
            result.rows.append(
                {
                    "fusion": label,
                    "what": what,
                    "beats": n,
                    "us/beat": timing.median * 1e6,
                    "beats/s": timing.rate(),
                    "spread": timing.spread,
                }
            )
        per_epoch = times["uncached epoch"].median / times["cached epoch"].median
        result.ratios[f"{label}: per epoch, cached vs backbones every epoch"] = per_epoch
        ten = 10 * times["uncached epoch"].median / (
            times["building the cache"].median + 10 * times["cached epoch"].median
        )
        result.ratios[f"{label}: 10 epochs incl. building the cache"] = ten
        result.add_target(f"{label}: cached epoch speed-up", per_epoch, GOAL)
    result.notes.append(
        "backbones are freshly initialised (timing does not depend on the weights); the cache "
        "holds scores and features of both backbones (5 + 128 + 1024 floats per beat)"
    )
    return result
