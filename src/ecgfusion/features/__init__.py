"""Signal transforms the models compute inside themselves (spectrogram image, FFT magnitude)."""

from __future__ import annotations

from ecgfusion.features.fft import FFTMagnitude, fft_length, fft_magnitude
from ecgfusion.features.spectrogram import Spectrogram, colormap_lut, segment_count

__all__ = [
    "FFTMagnitude",
    "Spectrogram",
    "colormap_lut",
    "fft_length",
    "fft_magnitude",
    "segment_count",
]
