"""Batched torch spectrogram image vs the reproduction's per-beat scipy -> matplotlib rendering."""

from __future__ import annotations

import numpy as np
import torch

from ecgfusion.benchmarks.common import BenchResult, measure, real_beats

FS = 125.0
SIZE = 128


def seed_image(beat: np.ndarray, fs: float = FS, size: int = SIZE) -> torch.Tensor:
    """The seed's way: scipy spectrogram, drawn by matplotlib (Agg), read back as RGB [3, H, W].

    The object API (no pyplot state) is the cheaper variant of what the seed did, so the ratio
    measured against it is a lower bound.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from scipy.signal import spectrogram

    _, _, sxx = spectrogram(beat, fs=fs, window="blackman", nperseg=32, noverlap=4)
    fig = Figure(figsize=(1, 1), dpi=size)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    ax.imshow(np.log10(np.maximum(sxx, 1e-10)), aspect="auto", origin="lower", cmap="viridis")
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[:, :, :3]
    return torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32) / 255.0)


def seed_image_pyplot(beat: np.ndarray, fs: float = FS, size: int = SIZE) -> torch.Tensor:
    """The same picture the way plotting code is usually written: pyplot figure, pcolormesh,
    PNG into a buffer, decoded back (for context; the target uses the cheaper one above)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.signal import spectrogram

    f, t, sxx = spectrogram(beat, fs=fs, window="blackman", nperseg=32, noverlap=4)
    fig = plt.figure(figsize=(1, 1), dpi=size)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    ax.pcolormesh(t, f, np.log10(np.maximum(sxx, 1e-10)), shading="gouraud", cmap="viridis")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=size)
    plt.close(fig)
    buffer.seek(0)
    rgb = plt.imread(buffer)[:, :, :3]
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32))


def run(tiny: bool = False, data_root: str | None = None) -> BenchResult:
    from ecgfusion.features.spectrogram import Spectrogram

    n_seed, n_batch, repeats = (16, 256, 3) if tiny else (150, 8192, 5)
    beats = real_beats(n_batch, seed=1, data_root=data_root)
    seed_beats = beats[:n_seed].numpy().astype(np.float64)
    result = BenchResult(
        "spectrogram",
        "Spectrogram image 3x128x128 per beat (real MIT-BIH beats)",
        tiny,
        ["pipeline", "beats", "ms/beat", "beats/s", "spread"],
        params={"seed_beats": n_seed, "batch": n_batch, "repeats": repeats},
    )
    seed_image(seed_beats[0])  # matplotlib's first figure pays for font and backend setup
    seed = measure(lambda: [seed_image(b) for b in seed_beats], repeats, per=n_seed, warmup=0)
    seed_image_pyplot(seed_beats[0])
    pyplot = measure(lambda: [seed_image_pyplot(b) for b in seed_beats], repeats, per=n_seed,
                     warmup=0)
    timings = {"seed: scipy + matplotlib, one beat at a time": (seed, n_seed),
               "seed, pyplot + pcolormesh + PNG (context)": (pyplot, n_seed)}
    shapes = {seed_image(seed_beats[0]).shape, seed_image_pyplot(seed_beats[0]).shape}
    for order in ("resize_first", "colormap_first"):
        module = Spectrogram(sampling_rate=FS, size=SIZE, order=order)

        def batched(module=module) -> None:
            with torch.inference_mode():
                module(beats)

        timings[f"torch batched, {order}"] = (measure(batched, repeats, per=n_batch), n_batch)
        with torch.inference_mode():
            shapes.add(module(beats[:2])[0].shape)
    if len(shapes) != 1:
        raise AssertionError(f"pipelines disagree on the image shape: {shapes}")
    for label, (timing, n) in timings.items():
        result.rows.append(
            {
                "pipeline": label,
                "beats": n,
                "ms/beat": timing.median * 1e3,
                "beats/s": timing.rate(),
                "spread": timing.spread,
            }
        )
    for order in ("resize_first", "colormap_first"):
        result.ratios[f"torch {order} vs seed"] = seed.median / timings[
            f"torch batched, {order}"
        ][0].median
    result.ratios["torch resize_first vs seed (pyplot + PNG)"] = pyplot.median / timings[
        "torch batched, resize_first"][0].median
    result.ratios["colormap_first vs resize_first"] = (
        timings["torch batched, resize_first"][0].median
        / timings["torch batched, colormap_first"][0].median
    )
    result.add_target("torch (resize_first, default) vs seed", result.ratios[
        "torch resize_first vs seed"], 100.0)
    result.notes.append(
        f"both produce a float32 tensor {tuple(shapes.pop())} per beat; the seed pipeline uses "
        "matplotlib's object API (cheaper than pyplot), so the ratio is a lower bound"
    )
    return result
