"""The paper's spectrogram image, computed in torch for a whole batch at once.

The reproduction rendered each beat's ``scipy.signal.spectrogram`` as a matplotlib figure and read
it back as a 3x128x128 RGB array, one beat at a time inside the data loader. Here the same picture
is a differentiable tensor transform: scipy's PSD (Blackman window, 32-sample segments, 4 samples of
overlap, constant detrend, density scaling, one-sided) becomes one strided convolution, the log
power is min-max normalised per beat, resized bilinearly and looked up in a fixed colour map.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecgfusion.errors import ConfigError, ShapeError

OUTPUTS = ("image", "native")
ORDERS = ("resize_first", "colormap_first")
ORIGINS = ("lower", "upper")


@functools.lru_cache(maxsize=8)
def colormap_lut(name: str = "viridis", entries: int = 256) -> np.ndarray:
    """RGB lookup table [entries, 3] of a matplotlib colour map (read once, then cached)."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise ConfigError(
            f"unknown colormap {name!r}; use a matplotlib colormap name such as 'viridis'"
        ) from None
    return np.asarray(cmap(np.linspace(0.0, 1.0, entries))[:, :3], dtype=np.float64)


def segment_count(n_samples: int, n_fft: int = 32, noverlap: int = 4) -> int:
    """Time bins scipy's spectrogram gives for a signal of ``n_samples`` (0 if too short)."""
    if n_samples < n_fft:
        return 0
    return (n_samples - n_fft) // (n_fft - noverlap) + 1


def psd_matrix(n_fft: int, window: str = "blackman") -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary one-sided DFT rows with constant detrend and the window folded in.

    Detrending (subtracting the segment mean), windowing and the DFT are all linear in the segment,
    so each part is one [n_fft // 2 + 1, n_fft] matrix and all segments of a batch cost one op.
    """
    from scipy.signal import get_window

    win = get_window(window, n_fft)  # periodic, as scipy.signal.spectrogram uses it
    detrend = np.eye(n_fft) - np.full((n_fft, n_fft), 1.0 / n_fft)
    k = np.arange(n_fft // 2 + 1)[:, None]
    n = np.arange(n_fft)[None, :]
    angle = 2.0 * math.pi * k * n / n_fft
    windowed = win[:, None] * detrend  # row i: w_i * (e_i - mean)
    real = np.cos(angle) @ windowed
    imag = -np.sin(angle) @ windowed
    return real, imag


def psd_scale(n_fft: int, fs: float, window: str = "blackman") -> np.ndarray:
    """Per-bin factor of scipy's 'density' scaling, doubled for the one-sided non-edge bins."""
    from scipy.signal import get_window

    win = get_window(window, n_fft)
    scale = np.full(n_fft // 2 + 1, 1.0 / (fs * float((win**2).sum())))
    last = -1 if n_fft % 2 == 0 else None  # an even n_fft has a Nyquist bin that is not doubled
    scale[1:last] *= 2.0
    return scale


class Spectrogram(nn.Module):
    """Beats [B, n_samples] -> the paper's spectrogram image [B, 3, size, size] (or native log PSD).

    ``output="native"`` gives the un-resized log10 PSD [B, 1, n_freqs, n_times] (no normalisation);
    ``output="image"`` min-max normalises that per beat to [0, 1] (what a plot's colour scale does),
    resizes it bilinearly and maps it through the colour map with linear interpolation between
    entries, so the image is continuous in the input. ``order="colormap_first"`` colours the small
    spectrogram and resizes the RGB image instead (cheaper; not the same pixels).
    ``origin="lower"`` puts the lowest frequency in the bottom row, as in a plotted spectrogram.
    """

    def __init__(
        self,
        sampling_rate: float = 125.0,
        n_fft: int = 32,
        noverlap: int = 4,
        window: str = "blackman",
        size: int = 128,
        output: str = "image",
        colormap: str = "viridis",
        order: str = "resize_first",
        origin: str = "lower",
        eps: float = 1e-10,
    ):
        super().__init__()
        _check_choice("output", output, OUTPUTS)
        _check_choice("order", order, ORDERS)
        _check_choice("origin", origin, ORIGINS)
        if not 0 <= noverlap < n_fft:
            raise ConfigError(f"spectrogram noverlap must be in [0, n_fft={n_fft}), got {noverlap}")
        if size < 1 or eps <= 0 or sampling_rate <= 0:
            raise ConfigError(
                "spectrogram size, eps and sampling_rate must be positive, "
                f"got size={size}, eps={eps}, sampling_rate={sampling_rate}"
            )
        self.sampling_rate = float(sampling_rate)
        self.n_fft = int(n_fft)
        self.noverlap = int(noverlap)
        self.hop = self.n_fft - self.noverlap
        self.size = int(size)
        self.output = output
        self.order = order
        self.origin = origin
        self.eps = float(eps)
        real, imag = psd_matrix(self.n_fft, window)
        # Real and imaginary rows as the filters of one strided conv1d (stride = hop): each output
        # position is one segment's detrended, windowed DFT. (A matmul on x.unfold(...) computes
        # the same but copies the strided view per beat: ~100x slower on CPU.)
        basis = np.concatenate([real, imag], axis=0)[:, None, :]
        self.register_buffer("basis", torch.tensor(basis, dtype=torch.float32), persistent=False)
        scale = psd_scale(self.n_fft, self.sampling_rate, window)
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32), persistent=False)
        lut = torch.tensor(colormap_lut(colormap), dtype=torch.float32)
        # The table as a 3-channel image of two identical rows, so grid_sample (one fused pass,
        # linear between entries, differentiable in the coordinates) does the lookup.
        self.register_buffer("lut", lut, persistent=False)
        lut_image = lut.T[None, :, None].expand(1, 3, 2, -1).clone()  # [1, 3, 2, entries]
        self.register_buffer("lut_image", lut_image, persistent=False)

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    def frequencies(self) -> np.ndarray:
        """Frequency of each row of the native spectrogram (Hz), as scipy returns them."""
        return np.fft.rfftfreq(self.n_fft, d=1.0 / self.sampling_rate)

    def times(self, n_samples: int) -> np.ndarray:
        """Centre time (s) of each segment, as scipy returns them."""
        starts = np.arange(segment_count(n_samples, self.n_fft, self.noverlap)) * self.hop
        return (starts + self.n_fft / 2) / self.sampling_rate

    def output_shape(self, n_samples: int) -> tuple[int, int, int]:
        """Shape of one beat's output (channels, height, width)."""
        if self.output == "native":
            return (1, self.n_freqs, segment_count(n_samples, self.n_fft, self.noverlap))
        return (3, self.size, self.size)

    def power(self, x: Tensor) -> Tensor:
        """PSD [B, n_freqs, n_times] as scipy.signal.spectrogram computes it (mode='psd')."""
        if x.dim() != 2 or x.shape[-1] < self.n_fft:
            raise ShapeError(
                f"spectrogram expects beats [batch, n_samples >= {self.n_fft}], "
                f"got {tuple(x.shape)}"
            )
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        # Power spans ~10 decades before the log: never in reduced precision, even under autocast.
        with torch.autocast(device_type=x.device.type, enabled=False):
            coeffs = F.conv1d(x[:, None], self.basis.to(x.dtype), stride=self.hop)  # [B, 2F, T]
            re, im = coeffs.split(self.n_freqs, dim=1)
            return (re.square() + im.square()) * self.scale.to(x.dtype)[:, None]

    def log_power(self, x: Tensor) -> Tensor:
        """log10 PSD [B, n_freqs, n_times], floored at ``eps`` (silent zero-padded segments)."""
        return torch.log10(self.power(x).clamp_min(self.eps))

    def forward(self, x: Tensor) -> Tensor:
        log_psd = self.log_power(x)
        if self.origin == "lower":
            log_psd = log_psd.flip(1)
        if self.output == "native":
            return log_psd.unsqueeze(1)
        flat = log_psd.flatten(1)
        lo = flat.amin(dim=1).view(-1, 1, 1)
        span = (flat.amax(dim=1).view(-1, 1, 1) - lo).clamp_min(1e-6)
        # The per-beat [0, 1] colour scale, written directly as grid_sample's [-1, 1] coordinate
        # (resizing first or after gives the same: bilinear interpolation is a convex combination).
        coord = ((log_psd - lo) * (2.0 / span) - 1.0).unsqueeze(1)  # [B, 1, F, T]
        if self.order == "colormap_first":
            return self._resize(self._colour(coord))
        return self._colour(self._resize(coord))

    def _resize(self, img: Tensor) -> Tensor:
        return F.interpolate(img, size=(self.size, self.size), mode="bilinear", align_corners=False)

    def _colour(self, coord: Tensor) -> Tensor:
        """[B, 1, H, W] colour-scale positions in [-1, 1] (first to last LUT entry) -> RGB
        [B, 3, H, W], linear between neighbouring entries."""
        batch, _, height, width = coord.shape
        grid = coord.reshape(batch, height, width, 1).expand(batch, height, width, 2)
        table = self.lut_image.to(coord.dtype).expand(batch, -1, -1, -1)
        return F.grid_sample(
            table, grid, mode="bilinear", padding_mode="border", align_corners=True
        )


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"spectrogram {key} must be one of {', '.join(allowed)}, got {value!r}")
