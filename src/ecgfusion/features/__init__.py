"""Signal transforms: the ones models compute inside themselves (spectrogram image, FFT
magnitude; torch) and the beats' rhythm features (RR intervals; NumPy, computed when data is
prepared). Names load on first use, so preparing data never imports torch."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "FFTMagnitude": "fft",
    "fft_length": "fft",
    "fft_magnitude": "fft",
    "Spectrogram": "spectrogram",
    "colormap_lut": "spectrogram",
    "segment_count": "spectrogram",
    "RR_FEATURE_NAMES": "rr",
    "rr_features": "rr",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'ecgfusion.features' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ecgfusion.features.{_WHERE[name]}"), name)
