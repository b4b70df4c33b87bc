"""The PTB-XL multimodal model: raw leads, their FFT and the patient's metadata in one network."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ecgfusion.errors import ConfigError, ShapeError
from ecgfusion.features.fft import FFTMagnitude, fft_length
from ecgfusion.models.base import (
    EcgModel,
    ModelOutput,
    sinusoidal_encoding,
    transformer_encoder,
)
from ecgfusion.models.registry import register_model

BRANCHES = ("time", "fft", "meta")


class SequenceBranch(nn.Module):
    """Conv1d blocks (conv -> BatchNorm -> LeakyReLU -> max-pool) shorten the sequence into
    tokens; a small Transformer encoder mixes them; the mean token is the branch's vector."""

    def __init__(
        self,
        in_channels: int,
        length: int,
        d_model: int,
        n_conv: int,
        kernel_size: int,
        pool: int,
        n_layers: int,
        n_heads: int,
        dim_feedforward: int,
        dropout: float,
    ):
        super().__init__()
        blocks: list[nn.Module] = []
        channels = in_channels
        for _ in range(n_conv):
            blocks += [
                nn.Conv1d(channels, d_model, kernel_size, padding=kernel_size // 2),
                nn.BatchNorm1d(d_model),
                nn.LeakyReLU(),
                nn.MaxPool1d(pool),
            ]
            channels = d_model
        self.conv = nn.Sequential(*blocks)
        self.n_tokens = length // pool**n_conv
        self.register_buffer(
            "positions", sinusoidal_encoding(self.n_tokens, d_model)[None], persistent=False
        )
        self.encoder = transformer_encoder(d_model, n_heads, n_layers, dim_feedforward, dropout)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.conv(x).transpose(1, 2) + self.positions
        return self.encoder(tokens).mean(dim=1)


@register_model("multimodal")
class Multimodal(EcgModel):
    """Time branch on x [B, n_leads, n_samples], FFT branch on |rfft(x)| (computed inside), an MLP
    on meta [B, n_meta]; their vectors concatenated (the features) -> FC -> scores.

    ``branches`` picks a subset for the ablation; ``meta`` is then only required when "meta" is
    among them (and ignored otherwise, so one data pipeline serves every ablation).
    """

    example_setting = {"n_classes": 5, "n_samples": 1000, "sampling_rate": 100.0}

    def __init__(
        self,
        n_classes: int,
        n_samples: int,
        sampling_rate: float,
        n_leads: int = 12,
        n_meta: int = 3,
        branches: Sequence[str] = BRANCHES,
        d_model: int = 64,
        n_conv: int = 3,
        kernel_size: int = 7,
        pool: int = 4,
        n_layers: int = 2,
        n_heads: int = 4,
        dim_feedforward: int = 128,
        meta_hidden: int = 32,
        hidden: int = 128,
        dropout: float = 0.1,
        fft_log: bool = True,
    ):
        super().__init__(n_classes, n_samples, sampling_rate)
        branches = tuple(branches)
        if not branches or len(set(branches)) != len(branches) or set(branches) - set(BRANCHES):
            raise ConfigError(
                f"multimodal: branches must be a non-empty subset of {', '.join(BRANCHES)} "
                f"without repeats, got {list(branches)}"
            )
        if kernel_size % 2 == 0 or pool < 1 or n_conv < 1 or n_leads < 1:
            raise ConfigError(
                "multimodal: kernel_size must be odd and pool, n_conv, n_leads positive, got "
                f"kernel_size={kernel_size}, pool={pool}, n_conv={n_conv}, n_leads={n_leads}"
            )
        if "meta" in branches and n_meta < 1:
            raise ConfigError("multimodal: the 'meta' branch needs n_meta >= 1")
        self.branches = branches
        self.n_leads = int(n_leads)
        self.n_meta = int(n_meta)
        shrink = pool**n_conv
        seq = {"time": n_samples, "fft": fft_length(n_samples)}
        for branch in ("time", "fft"):
            if branch in branches and seq[branch] < shrink:
                raise ConfigError(
                    f"multimodal: the {branch} branch input has {seq[branch]} steps, fewer than "
                    f"the {shrink} its {n_conv} pools of {pool} need; lower n_conv or pool "
                    f"or use longer signals (n_samples={n_samples})"
                )
        branch_args = dict(
            in_channels=n_leads,
            d_model=d_model,
            n_conv=n_conv,
            kernel_size=kernel_size,
            pool=pool,
            n_layers=n_layers,
            n_heads=n_heads,
            dim_feedforward=dim_feedforward,
            dropout=dropout,
        )
        width = 0
        if "time" in branches:
            self.time = SequenceBranch(length=seq["time"], **branch_args)
            width += d_model
        if "fft" in branches:
            self.fft = FFTMagnitude(log=fft_log)
            self.freq = SequenceBranch(length=seq["fft"], **branch_args)
            width += d_model
        if "meta" in branches:
            self.meta = nn.Sequential(
                nn.Linear(n_meta, meta_hidden),
                nn.LeakyReLU(),
                nn.Linear(meta_hidden, meta_hidden),
                nn.LeakyReLU(),
            )
            width += meta_hidden
        self.feature_dim = width
        self.head = nn.Sequential(
            nn.Linear(width, hidden),
            nn.LeakyReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def input_shapes(self) -> dict[str, tuple]:
        shapes: dict[str, tuple] = {"x": ("B", self.n_leads, self.n_samples)}
        if "meta" in self.branches:
            shapes["meta"] = ("B", self.n_meta)
        return shapes

    def forward(self, x: Tensor, meta: Tensor | None = None) -> ModelOutput:
        x = self._check_signal(x)
        parts = []
        if "time" in self.branches:
            parts.append(self.time(x))
        if "fft" in self.branches:
            parts.append(self.freq(self.fft(x)))
        if "meta" in self.branches:
            parts.append(self.meta(self._check_meta(meta, x.shape[0])))
        features = torch.cat(parts, dim=1)
        return ModelOutput(self.head(features), features)

    def _check_signal(self, x: Tensor) -> Tensor:
        want = f"[batch, {self.n_leads}, {self.n_samples}]"
        if not isinstance(x, Tensor):
            raise ShapeError(f"multimodal expects signals {want}, got {type(x).__name__}")
        if x.dim() == 2 and self.n_leads == 1:
            x = x[:, None]
        if x.dim() != 3 or x.shape[1] != self.n_leads or x.shape[2] != self.n_samples:
            hint = ""
            if x.dim() == 3 and x.shape[1] == self.n_samples and x.shape[2] == self.n_leads:
                hint = "; the axes look swapped: transpose to [batch, leads, samples]"
            raise ShapeError(
                f"multimodal expects signals {want} (n_leads={self.n_leads}, "
                f"n_samples={self.n_samples}), got {tuple(x.shape)}{hint}"
            )
        if not torch.is_floating_point(x):
            raise ShapeError(f"multimodal expects floating-point signals, got dtype {x.dtype}")
        return x

    def _check_meta(self, meta: Tensor | None, batch: int) -> Tensor:
        want = f"[batch={batch}, {self.n_meta}]"
        if meta is None:
            raise ShapeError(
                f"multimodal with the 'meta' branch expects metadata {want}, got None; pass "
                "meta or drop 'meta' from branches"
            )
        if meta.dim() != 2 or meta.shape[0] != batch or meta.shape[1] != self.n_meta:
            raise ShapeError(
                f"multimodal expects metadata {want} (n_meta={self.n_meta}), "
                f"got {tuple(meta.shape)}"
            )
        return meta.to(self.head[0].weight.dtype)
