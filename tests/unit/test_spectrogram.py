"""The torch spectrogram against scipy (synthetic beats), and the image it builds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import spectrogram as scipy_spectrogram

from ecgfusion.errors import ConfigError, ShapeError
from ecgfusion.features import Spectrogram, colormap_lut, fft_magnitude, segment_count


def _beats(n: int, length: int, seed: int = 0) -> np.ndarray:
    """Beat-like rows: a spike, a slow wave, noise, and a zero-padded tail like kachuee beats."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    rows = 0.3 * np.sin(2 * np.pi * t / rng.uniform(20, 60, (n, 1))) + 0.05 * rng.normal(
        size=(n, length)
    )
    rows[:, :4] += 1.0
    rows[:, length // 2 :] = 0.0
    return rows


@pytest.mark.parametrize("length", [187, 188, 88])
def test_power_matches_scipy(length):
    x = _beats(4, length)
    freqs, times, expected = scipy_spectrogram(
        x, fs=125.0, window="blackman", nperseg=32, noverlap=4
    )
    spec = Spectrogram(output="native")
    assert expected.shape[-1] == segment_count(length) == (length - 32) // 28 + 1
    np.testing.assert_allclose(spec.frequencies(), freqs)
    np.testing.assert_allclose(spec.times(length), times)
    power = spec.power(torch.tensor(x, dtype=torch.float32)).double().numpy()
    assert power.shape == expected.shape
    np.testing.assert_allclose(power, expected, rtol=1e-4, atol=1e-6 * expected.max())


def test_native_is_floored_log10_with_plot_orientation():
    x = torch.tensor(_beats(2, 187), dtype=torch.float32)
    lower = Spectrogram(output="native")(x)
    upper = Spectrogram(output="native", origin="upper")(x)
    assert lower.shape == (2, 1, 17, 6)
    torch.testing.assert_close(lower.flip(2), upper)
    expected = torch.log10(Spectrogram().power(x).clamp_min(1e-10))
    torch.testing.assert_close(upper[:, 0], expected)
    # The zero-padded tail makes silent segments: they sit at the floor, not at -inf.
    assert torch.isfinite(upper).all() and upper.min() == pytest.approx(-10.0)


@pytest.mark.parametrize("order", ["resize_first", "colormap_first"])
def test_image_is_a_colour_mapped_128_square(order):
    x = torch.tensor(_beats(3, 187), dtype=torch.float32)
    image = Spectrogram(order=order)(x)
    assert image.shape == (3, 3, 128, 128)
    assert image.dtype == torch.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    lut = torch.tensor(colormap_lut("viridis"), dtype=torch.float32)
    # Per-beat scaling: each beat spans the colour map, from its first entry (the silent,
    # floored segments) to near its last (bilinear resizing
    # need not hit the brightest bin's centre).
    pixels = image.permute(0, 2, 3, 1).reshape(3, -1, 3)
    for beat in pixels:
        if order == "resize_first":  # every pixel is a colour of the map, not a blend of two
            assert torch.cdist(beat, lut).min(dim=1).values.max() < 0.02
        assert torch.cdist(lut[:1], beat).min() < 1e-4
        assert torch.cdist(lut[-1:], beat).min() < 0.05


def test_image_of_a_beat_does_not_depend_on_its_batch():
    x = torch.tensor(_beats(5, 187), dtype=torch.float32)
    spec = Spectrogram()
    batch = spec(x)
    torch.testing.assert_close(batch[2:3], spec(x[2:3]))
    assert not torch.allclose(batch[0], batch[1])


def test_colour_lookup_interpolates_between_entries():
    spec = Spectrogram()
    lut = spec.lut
    # Positions -1 .. 1 span the table: -1 is entry 0, halfway to entry 1, and 1 the last entry.
    coord = torch.tensor([-1.0, -1.0 + 1.0 / 255, 1.0]).view(1, 1, 1, 3)
    rgb = spec._colour(coord)[0, :, 0]
    torch.testing.assert_close(rgb[:, 0], lut[0])
    torch.testing.assert_close(rgb[:, 1], (lut[0] + lut[1]) / 2)
    torch.testing.assert_close(rgb[:, 2], lut[-1])


def test_image_is_differentiable_in_the_beat():
    x = torch.tensor(_beats(2, 187), dtype=torch.float32, requires_grad=True)
    Spectrogram()(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_power_stays_float32_under_bf16_autocast():
    x = torch.tensor(_beats(2, 187), dtype=torch.float32)
    spec = Spectrogram(output="native")
    expected = spec(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = spec(x)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected)


def test_float64_input_stays_float64():
    x = torch.tensor(_beats(2, 187))
    assert Spectrogram()(x).dtype == torch.float64


def test_bad_options_and_shapes():
    with pytest.raises(ConfigError, match="output must be one of image, native"):
        Spectrogram(output="png")
    with pytest.raises(ConfigError, match="noverlap"):
        Spectrogram(noverlap=32)
    with pytest.raises(ConfigError, match="colormap"):
        Spectrogram(colormap="no-such-map")
    with pytest.raises(ShapeError, match=r"got \(2, 20\)"):
        Spectrogram()(torch.zeros(2, 20))


def test_fft_magnitude_matches_numpy():
    x = _beats(3, 100)
    expected = np.abs(np.fft.rfft(x, axis=-1))
    got = fft_magnitude(torch.tensor(x), log=False).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fft_magnitude(torch.tensor(x)).numpy(), np.log1p(expected))
