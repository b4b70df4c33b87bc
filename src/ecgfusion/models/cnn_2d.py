"""The paper's 2D branch: a small CNN over the beat's colour-mapped spectrogram image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ecgfusion.errors import ConfigError
from ecgfusion.features.spectrogram import Spectrogram
from ecgfusion.models.base import EcgModel, ModelOutput
from ecgfusion.models.registry import register_model

N_BLOCKS = 4


@register_model("cnn_2d")
class CNN2D(EcgModel):
    """Spectrogram -> 4 x [Conv2d 3x3 -> LeakyReLU -> BatchNorm2d -> MaxPool 2] -> dropout -> FC.

    The spectrogram is the first submodule, so the raw beat goes in and the 3x128x128 image is made
    on the model's device. ``filters`` is one width per block or an int base b giving
    (b, 2b, 4b, 8b): 8 is the reproduction's (8, 16, 32, 64), 32 the original paper's variant.
    Convolutions use padding=1 so each block halves the image exactly (128 -> 8 after four):
    without it the borders of the small spectrogram would be eaten before the pools.
    Features (H_TFR) are the last max-pool output flattened; ``flatten`` (not ``view``) keeps the
    model correct when it runs channels-last.
    """

    score_head = ("head",)
    #: Run the convolutions on a channels-last (NHWC) image: 1.1-1.3x faster on CPU (oneDNN) in
    #: docs/performance.md, same values; not a hyper-parameter, so checkpoints do not change.
    channels_last: bool = True
    #: In eval mode a large batch runs in chunks of this many beats: the first block's activations
    #: (8 x 128 x 128 floats per beat) then stay in cache, 2-3x faster at batch 1024 on CPU.
    #: Eval-mode BatchNorm is per beat, so the outputs are the same; training batches are whole,
    #: and so are traced, compiled or exported graphs (one path for every batch size).
    eval_chunk: int = 32

    def __init__(
        self,
        n_classes: int,
        n_samples: int,
        sampling_rate: float,
        filters: int | Sequence[int] = 8,
        dropout: float = 0.2,
        negative_slope: float = 0.01,
        image_size: int = 128,
        colormap: str = "viridis",
        spectrogram_order: str = "resize_first",
        n_fft: int = 32,
        noverlap: int = 4,
    ):
        super().__init__(n_classes, n_samples, sampling_rate)
        widths = (
            [filters * 2**i for i in range(N_BLOCKS)] if isinstance(filters, int) else list(filters)
        )
        if len(widths) != N_BLOCKS or any(int(w) < 1 for w in widths):
            raise ConfigError(
                f"cnn_2d: filters must be a positive int base or {N_BLOCKS} positive ints, "
                f"got {filters!r}"
            )
        if n_samples < n_fft:
            raise ConfigError(
                f"cnn_2d needs n_samples >= n_fft={n_fft} for one spectrogram segment, "
                f"got n_samples={n_samples}"
            )
        side = image_size // 2**N_BLOCKS
        if side < 1:
            raise ConfigError(
                f"cnn_2d: image_size must be >= {2**N_BLOCKS} for {N_BLOCKS} max-pools, "
                f"got {image_size}"
            )
        self.spectrogram = Spectrogram(
            sampling_rate=sampling_rate,
            n_fft=n_fft,
            noverlap=noverlap,
            size=image_size,
            colormap=colormap,
            order=spectrogram_order,
        )
        blocks: list[nn.Module] = []
        in_ch = 3
        for width in widths:
            blocks += [
                nn.Conv2d(in_ch, int(width), kernel_size=3, stride=1, padding=1),
                nn.LeakyReLU(negative_slope),
                nn.BatchNorm2d(int(width)),
                nn.MaxPool2d(2, stride=2),
            ]
            in_ch = int(width)
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.feature_dim = in_ch * side * side
        self.head = nn.Linear(self.feature_dim, n_classes)

    def forward(self, x: Tensor) -> ModelOutput:
        x = self.check_beats(x)
        # Traced / compiled / exported graphs keep one path for every batch size.
        exporting = (
            torch.jit.is_tracing()
            or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling()
        )
        if self.training or exporting or len(x) <= self.eval_chunk:
            return self._forward(x)
        parts = [self._forward(chunk) for chunk in x.split(self.eval_chunk)]
        return ModelOutput(*(torch.cat([p[i] for p in parts]) for i in range(2)))

    def _forward(self, x: Tensor) -> ModelOutput:
        image = self.spectrogram(x)
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        features = self.blocks(image).flatten(1)
        return ModelOutput(self.head(self.dropout(features)), features)
