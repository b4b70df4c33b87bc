"""The paper's 1D branch: a small CNN turns the beat into a few tokens, a Transformer reads them."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ecgfusion.errors import ConfigError
from ecgfusion.models.base import (
    EcgModel,
    ModelOutput,
    sinusoidal_encoding,
    transformer_encoder,
)
from ecgfusion.models.registry import register_model

N_CONVS = 6
#: Weight initialisations of the convolutions: "torch" is PyTorch's default (what the paper's
#: code gets); "kaiming" is Kaiming-normal for the LeakyReLU slope with zero biases.
INITS = ("torch", "kaiming")
KERNEL = 3
#: Padding per convolution: only the second one pads (the paper: no padding on the first and the
#: last four), so a 187-sample beat becomes 185, 185, then 91, 44, 21, 9 after the pooled four.
PADDING = (0, 1, 0, 0, 0, 0)
POOLED = (False, False, True, True, True, True)


def conv_lengths(n_samples: int) -> list[int]:
    """Sequence length after each conv(+pool) stage of the stack."""
    lengths = []
    length = n_samples
    for pad, pooled in zip(PADDING, POOLED, strict=True):
        length = length + 2 * pad - KERNEL + 1
        if pooled:
            length //= 2
        lengths.append(length)
    return lengths


def min_samples() -> int:
    """Shortest beat the conv/pool stack leaves at least one token for."""
    n = 1
    while min(conv_lengths(n)) < 1:
        n += 1
    return n


@register_model("cnn_transformer_1d")
class CNNTransformer1D(EcgModel):
    """Six Conv1d (kernel 3) + LeakyReLU, max-pool after the last four, then a class-token encoder.

    ``channels`` is the width of every convolution (an int) or one width per convolution; the
    last width is the Transformer's d_model (the paper: 128 throughout). Features (H_TE) are the
    encoder's class-token output before the final LayerNorm; scores (O_TE) are LayerNorm -> Linear
    of it.

    ``init`` changes starting weights only, never the layers. With PyTorch's default the six
    un-normalised convolutions shrink a beat to tokens of std ~0.02 that vary between beats by
    ~2e-4, against sinusoidal positions of std 0.52: the encoder first sees the same input for
    every beat and learns slowly (docs/results/recipes.md). "kaiming" keeps the beats apart
    (between-beat std ~0.06).
    """

    score_head = ("norm", "head")

    def __init__(
        self,
        n_classes: int,
        n_samples: int,
        sampling_rate: float,
        channels: int | Sequence[int] = 128,
        n_layers: int = 8,
        n_heads: int = 8,
        dim_feedforward: int = 64,
        dropout: float = 0.1,
        negative_slope: float = 0.01,
        init: str = "torch",
    ):
        super().__init__(n_classes, n_samples, sampling_rate)
        if init not in INITS:
            raise ConfigError(
                f"cnn_transformer_1d: init must be one of {', '.join(INITS)}, got {init!r}"
            )
        widths = [channels] * N_CONVS if isinstance(channels, int) else list(channels)
        if len(widths) != N_CONVS or any(int(w) < 1 for w in widths):
            raise ConfigError(
                f"cnn_transformer_1d: channels must be a positive int or {N_CONVS} positive ints, "
                f"got {channels!r}"
            )
        lengths = conv_lengths(n_samples)
        if min(lengths) < 1:
            raise ConfigError(
                f"cnn_transformer_1d needs n_samples >= {min_samples()} for its six conv / four "
                f"max-pool stages, got n_samples={n_samples}"
            )
        layers: list[nn.Module] = []
        in_ch = 1
        for width, pad, pooled in zip(widths, PADDING, POOLED, strict=True):
            layers += [
                nn.Conv1d(in_ch, int(width), KERNEL, padding=pad),
                nn.LeakyReLU(negative_slope),
            ]
            if pooled:
                layers.append(nn.MaxPool1d(2))
            in_ch = int(width)
        self.conv = nn.Sequential(*layers)
        if init == "kaiming":
            for layer in self.conv:
                if isinstance(layer, nn.Conv1d):
                    nn.init.kaiming_normal_(
                        layer.weight, a=negative_slope, nonlinearity="leaky_relu"
                    )
                    nn.init.zeros_(layer.bias)
        d_model = in_ch
        self.n_tokens = lengths[-1]
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model))
        nn.init.normal_(self.cls_token, std=0.02)
        # Position 0 is the class token; not saved, it is a function of the shape.
        self.register_buffer(
            "positions", sinusoidal_encoding(self.n_tokens + 1, d_model)[None], persistent=False
        )
        self.dropout = nn.Dropout(dropout)
        self.encoder = transformer_encoder(d_model, n_heads, n_layers, dim_feedforward, dropout)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)
        self.feature_dim = d_model

    def forward(self, x: Tensor) -> ModelOutput:
        x = self.check_beats(x)
        tokens = self.conv(x.unsqueeze(1)).transpose(1, 2)  # [B, T, C]
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.positions
        encoded = self.encoder(self.dropout(tokens))
        features = encoded[:, 0]
        return ModelOutput(self.head(self.norm(features)), features)
