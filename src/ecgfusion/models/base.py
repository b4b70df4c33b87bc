"""What every model shares: the output tuple, the constructor's common part and boundary checks."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ecgfusion.errors import ConfigError, ShapeError


class ModelOutput(NamedTuple):
    """Scores [B, n_classes] (logits) and the feature vector [B, F] fusion and analysis read."""

    scores: Tensor
    features: Tensor


class EcgModel(nn.Module):
    """Base of every registered model: one constructor signature, one input check.

    ``feature_dim`` is the width of ``ModelOutput.features`` (fusion heads are sized from it).
    ``spec`` is set by :func:`ecgfusion.models.create_model` and is what a checkpoint stores.
    """

    name: str = ""
    #: The setting ``ecgfusion models list`` shows (beat models: MIT-BIH, 187 samples @ 125 Hz).
    example_setting: dict = {"n_classes": 5, "n_samples": 187, "sampling_rate": 125.0}
    #: Submodules used only to turn features into scores (unused when a fusion reads features).
    score_head: tuple[str, ...] = ()

    def __init__(self, n_classes: int, n_samples: int, sampling_rate: float):
        super().__init__()
        for key, value in (("n_classes", n_classes), ("n_samples", n_samples)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{self.name}: {key} must be a positive integer, got {value!r}")
        if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, int | float):
            raise ConfigError(f"{self.name}: sampling_rate must be a number, got {sampling_rate!r}")
        if sampling_rate <= 0:
            raise ConfigError(f"{self.name}: sampling_rate must be positive, got {sampling_rate}")
        self.n_classes = int(n_classes)
        self.n_samples = int(n_samples)
        self.sampling_rate = float(sampling_rate)
        self.feature_dim = 0
        self.spec: dict | None = None

    def input_shapes(self) -> dict[str, tuple]:
        """Named input shapes of one batch (B = batch): the keyword arguments of ``forward``."""
        return {"x": ("B", self.n_samples)}

    @property
    def inputs(self) -> tuple[str, ...]:
        """The names of ``forward``'s inputs: ("x",) for beats, ("rr",) for RR features, both
        for a fusion with a rhythm branch. A batch is served as a dict of these keys."""
        return tuple(self.input_shapes())

    def check_beats(self, x: Tensor) -> Tensor:
        """[B, n_samples] or [B, 1, n_samples] -> [B, n_samples]; anything else is a ShapeError."""
        return check_beats(x, self.n_samples, self.name)


def model_inputs(model: nn.Module, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """The named inputs ``model`` reads (:attr:`EcgModel.inputs`) out of a batch's, or a
    ShapeError naming the missing one: ``model(**model_inputs(model, batch))``."""
    names = getattr(model, "inputs", ("x",))
    missing = [k for k in names if k not in inputs]
    if missing:
        raise ShapeError(
            f"{getattr(model, 'name', type(model).__name__)} reads {', '.join(names)} but got "
            f"{', '.join(inputs) or 'nothing'}; a rhythm model also needs each beat's RR "
            "features (rr)"
        )
    return {k: inputs[k] for k in names}


def check_beats(x: Tensor, n_samples: int, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise ShapeError(f"{name} expects a torch tensor [batch, {n_samples}], got {type(x)}")
    if x.dim() == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 2 or x.shape[1] != n_samples:
        if x.dim() == 1:
            hint = "add the batch axis (x[None] for one beat)"
        elif x.dim() == 2:
            hint = f"the model was built for n_samples={n_samples}; use beats of that length"
        else:
            hint = "give one lead per beat"
        raise ShapeError(
            f"{name} expects beats of shape [batch, {n_samples}] or [batch, 1, {n_samples}], "
            f"got {tuple(x.shape)}; {hint}"
        )
    if not torch.is_floating_point(x):
        raise ShapeError(f"{name} expects a floating-point tensor, got dtype {x.dtype}")
    return x


def sinusoidal_encoding(length: int, dim: int) -> Tensor:
    """Positional encodings of "Attention is all you need": sin on even, cos on odd channels."""
    position = torch.arange(length, dtype=torch.float64)[:, None]
    rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate[: dim // 2])
    return table.float()


def transformer_encoder(
    dim: int, heads: int, layers: int, feedforward: int, dropout: float
) -> nn.TransformerEncoder:
    """Post-norm encoder (each sub-layer followed by LayerNorm), batch first, as in the paper."""
    if dim % heads:
        raise ConfigError(f"transformer width {dim} must be divisible by n_heads={heads}")
    layer = nn.TransformerEncoderLayer(
        d_model=dim,
        nhead=heads,
        dim_feedforward=feedforward,
        dropout=dropout,
        batch_first=True,
        norm_first=False,
    )
    return nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
