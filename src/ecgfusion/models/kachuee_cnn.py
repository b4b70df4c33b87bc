"""The residual CNN of Kachuee et al. (2018), the model that defined the 187-sample beat format.

It is Experiment 1's baseline: a plain 1D CNN with no transformer and no spectrogram, so the table
shows whether the hybrid earns its extra cost.
"""

from __future__ import annotations

from torch import Tensor, nn

from ecgfusion.errors import ConfigError
from ecgfusion.models.base import EcgModel, ModelOutput
from ecgfusion.models.registry import register_model

N_BLOCKS = 5
KERNEL = 5
POOL, POOL_STRIDE = 5, 2


def pooled_length(n_samples: int, n_blocks: int = N_BLOCKS) -> int:
    """Length after the blocks' max-pools (kernel 5, stride 2, no padding): 187 -> 2."""
    length = n_samples
    for _ in range(n_blocks):
        length = (length - POOL) // POOL_STRIDE + 1
    return length


class ResidualBlock(nn.Module):
    """conv -> ReLU -> conv, + the input, -> ReLU -> max-pool (Kachuee et al., Fig. 2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, KERNEL, padding=KERNEL // 2)
        self.conv2 = nn.Conv1d(channels, channels, KERNEL, padding=KERNEL // 2)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool1d(POOL, stride=POOL_STRIDE)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.act(x + self.conv2(self.act(self.conv1(x)))))


@register_model("kachuee_cnn")
class KachueeCNN(EcgModel):
    """Conv1d(1 -> 32, k 5), 5 residual blocks of two 32-filter k=5 convolutions with a skip and a
    max-pool, then Dense 32 -> ReLU -> Dense 32 -> ReLU -> Dense n_classes (softmax in the loss).

    Features are the second dense layer's activations (32 values per beat).
    """

    score_head = ("head",)

    def __init__(
        self,
        n_classes: int,
        n_samples: int,
        sampling_rate: float,
        channels: int = 32,
        dense: int = 32,
    ):
        super().__init__(n_classes, n_samples, sampling_rate)
        if pooled_length(n_samples) < 1:
            raise ConfigError(
                f"kachuee_cnn needs beats long enough for {N_BLOCKS} max-pools (k {POOL}, "
                f"stride {POOL_STRIDE}), got n_samples={n_samples}"
            )
        if channels < 1 or dense < 1:
            raise ConfigError(
                f"kachuee_cnn: channels and dense must be positive, got {channels}, {dense}"
            )
        self.stem = nn.Conv1d(1, channels, KERNEL, padding=KERNEL // 2)
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(N_BLOCKS)))
        self.dense = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * pooled_length(n_samples), dense),
            nn.ReLU(),
            nn.Linear(dense, dense),
            nn.ReLU(),
        )
        self.head = nn.Linear(dense, n_classes)
        self.feature_dim = dense

    def forward(self, x: Tensor) -> ModelOutput:
        x = self.check_beats(x)
        features = self.dense(self.blocks(self.stem(x.unsqueeze(1))))
        return ModelOutput(self.head(features), features)
