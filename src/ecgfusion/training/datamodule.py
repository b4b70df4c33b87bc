"""Beats in memory as tensors, served as sliced batches.

The whole MIT-BIH beat set is ~80 MB as float32, so it lives in memory and a batch is one tensor
index (``x[idx]``): no per-sample ``__getitem__`` and no collate loop, which on a 2-core CPU cost
more than the 1D model's forward pass. Shuffling is a permutation seeded by (seed, epoch), so a
resumed run sees the same batch order an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from ecgfusion.data.beats import BeatSet
from ecgfusion.data.cache import load_beats
from ecgfusion.data.splits import Split, make_split
from ecgfusion.errors import DataError
from ecgfusion.training.config import BeatDataConfig

PARTS = ("train", "val", "test")


#: A model's named inputs for a set of beats: {"x": beats} and, for a rhythm model, {"rr": ...}.
Inputs = dict[str, Tensor]


class TensorBatches(Dataset):
    """Indexed with a whole index tensor: ``ds[idx]`` is one batch, ``(inputs, y)`` where
    ``inputs`` is a tensor or a dict of named tensors (each indexed the same way)."""

    def __init__(self, x: Tensor | Inputs, y: Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: Tensor) -> tuple[Tensor | Inputs, Tensor]:
        if isinstance(self.x, dict):
            return {k: v[index] for k, v in self.x.items()}, self.y[index]
        return self.x[index], self.y[index]


class SliceSampler(Sampler[Tensor]):
    """Yields index tensors of ``batch_size``: contiguous slices of a seeded per-epoch permutation.

    With ``weights`` (one per item) an epoch is instead ``n`` items drawn with replacement in
    proportion to them: the class-balanced sampler. Lightning calls ``set_epoch`` before each
    training epoch.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        weights: Tensor | None = None,
    ):
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        if weights is not None and len(weights) != n:
            raise ValueError(f"sampler weights: expected {n}, got {len(weights)}")
        self.weights = weights
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[Tensor]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=gen)
        elif self.shuffle:
            order = torch.randperm(self.n, generator=gen)
        else:
            order = torch.arange(self.n)
        yield from order.split(self.batch_size)


def batch_loader(
    x: Tensor | Inputs,
    y: Tensor,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    weights: Tensor | None = None,
) -> DataLoader:
    # batch_size=None turns off automatic batching: each sampler item is already a batch.
    return DataLoader(
        TensorBatches(x, y),
        sampler=SliceSampler(len(y), batch_size, shuffle, seed, weights),
        batch_size=None,
        num_workers=0,
    )


def class_weights(labels: np.ndarray, n_classes: int, policy: str = "balanced") -> Tensor:
    """Loss weight per class under a class-weight policy.

    balanced: inverse frequency n_samples / (n_classes * count_c), as the paper computes them;
    sqrt_inverse: its square root (rare classes still count more, the common one loses less);
    none and sampler: all ones (the sampler balances the batches instead). A class absent from
    the training part gets weight 0 (it cannot be learnt; its zero count would give infinity).
    """
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    balanced = np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1.0)), 0.0)
    if policy == "balanced":
        weights = balanced
    elif policy == "sqrt_inverse":
        weights = np.sqrt(balanced)
    elif policy in ("none", "sampler"):
        weights = np.where(counts > 0, 1.0, 0.0)
    else:
        raise ValueError(f"unknown class-weight policy {policy!r}")
    return torch.as_tensor(weights, dtype=torch.float32)


def balanced_sample_weights(labels: Tensor, n_classes: int) -> Tensor:
    """Per-item draw weights 1 / count(class): every class equally likely in a batch."""
    counts = torch.bincount(labels, minlength=n_classes).double()
    return (1.0 / counts.clamp(min=1))[labels]


@dataclass
class PreparedData:
    beats: BeatSet
    split: Split
    index: dict[str, np.ndarray]


def load_config_beats(config: BeatDataConfig) -> BeatSet:
    """The beat set a config names, from the Parquet cache (built on first use)."""
    return load_beats(
        dataset=config.dataset,
        method=config.method,
        records=config.records,
        data_root=config.data_root,
        cache_dir=config.cache_dir,
    )


def prepare_split(config: BeatDataConfig, beats: BeatSet | None = None) -> PreparedData:
    """Load (or take) the beat set, split it, and apply the training-part caps of the config."""
    if beats is None:
        beats = load_config_beats(config)
    if config.max_beats is not None and len(beats) > config.max_beats:
        rng = np.random.default_rng(config.seed)
        beats = beats.subset(np.sort(rng.choice(len(beats), size=config.max_beats, replace=False)))
    split = make_split(beats, config.protocol, seed=config.seed, rebalance=config.rebalance)
    index = {part: np.asarray(idx, dtype=np.int64) for part, idx in split.parts().items()}
    for part, cap in (("train", config.max_train_beats), ("val", config.max_val_beats)):
        if cap is not None and len(index[part]) > cap:
            rng = np.random.default_rng(config.seed)
            index[part] = np.sort(rng.choice(index[part], size=cap, replace=False))
    for part in PARTS:
        if len(index[part]) == 0:
            raise DataError(
                f"the {part} part of {config.dataset} ({config.protocol}) is empty; "
                "use more records (data.records) or another data.protocol"
            )
    return PreparedData(beats=beats, split=split, index=index)


class SizedDataModule(L.LightningDataModule):
    """A datamodule that says what a model of its data is built with: create_model's
    data-given arguments (n_classes, n_samples, sampling_rate, and what a subclass adds)."""

    n_classes: int
    n_samples: int
    sampling_rate: float

    def extra_sizes(self) -> dict[str, int]:
        return {}

    @property
    def model_sizes(self) -> dict[str, int | float]:
        return {
            "n_classes": self.n_classes,
            "n_samples": self.n_samples,
            "sampling_rate": self.sampling_rate,
            **self.extra_sizes(),
        }


#: The named inputs a beat set can serve: the samples, and the RR features where it has them.
BEAT_INPUTS = ("x", "rr")


class BeatDataModule(SizedDataModule):
    """Train/val/test tensors of one split, in memory. A batch is ``(inputs, y)`` with
    ``inputs`` a dict of named tensors: "x" the beats and, where the beats have them, "rr"
    their RR features (a model reads the ones it names, :func:`model_inputs`)."""

    def __init__(
        self,
        prepared: PreparedData,
        batch_size: int,
        eval_batch_size: int = 1024,
        seed: int = 0,
        balanced_sampler: bool = False,
        inputs: tuple[str, ...] | None = None,
    ):
        super().__init__()
        self.prepared = prepared
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.balanced_sampler = balanced_sampler
        beats = prepared.beats
        # By default every input the beats have; each model picks the ones it reads.
        self.inputs = tuple(inputs or (BEAT_INPUTS if beats.rr is not None else ("x",)))
        unknown = sorted(set(self.inputs) - set(BEAT_INPUTS))
        if unknown:
            raise DataError(f"beat models read {', '.join(BEAT_INPUTS)}, not {', '.join(unknown)}")
        if "rr" in self.inputs and beats.rr is None:
            raise DataError(
                f"the {beats.dataset} ({beats.method}) beats carry no RR features, which a rhythm "
                "model reads; use mitdb beats (data.dataset: mitdb), whose cache stores them"
            )
        columns = {"x": beats.signals, "rr": beats.rr}
        # Fancy indexing copies, so the tensors own writable memory (cache arrays are read-only).
        self.tensors: dict[str, tuple[Inputs, Tensor]] = {
            part: (
                {
                    k: torch.from_numpy(np.asarray(columns[k][idx], dtype=np.float32))
                    for k in self.inputs
                },
                torch.from_numpy(np.asarray(beats.labels[idx], dtype=np.int64)),
            )
            for part, idx in prepared.index.items()
        }

    def with_inputs(self, inputs: dict[str, Tensor], name: str = "packed") -> BeatDataModule:
        """A copy serving ``{name: inputs[part]}`` (e.g. cached backbone outputs) instead of the
        beats of those parts; labels, batch sizes and the seeded batch order stay the same."""
        other = BeatDataModule(
            self.prepared,
            self.batch_size,
            self.eval_batch_size,
            self.seed,
            self.balanced_sampler,
            self.inputs,
        )
        for part, x in inputs.items():
            y = self.tensors[part][1]
            if len(x) != len(y):
                raise ValueError(f"{part}: {len(x)} inputs for {len(y)} labels")
            other.tensors[part] = ({name: x}, y)
        return other

    @property
    def beats(self) -> BeatSet:
        return self.prepared.beats

    @property
    def split(self):
        return self.prepared.split

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.beats.class_names)

    @property
    def n_classes(self) -> int:
        return len(self.beats.class_names)

    @property
    def n_samples(self) -> int:
        return self.beats.n_samples

    @property
    def sampling_rate(self) -> float:
        return float(self.beats.fs)

    @property
    def description(self) -> str:
        return f"{self.beats.dataset} ({self.beats.method}) beats"

    def class_counts(self) -> dict[str, dict[str, int]]:
        return {p: self.beats.class_counts(self.prepared.index[p]) for p in PARTS}

    def class_weights(self, policy: str = "balanced") -> Tensor:
        return class_weights(self.tensors["train"][1].numpy(), self.n_classes, policy)

    def train_dataloader(self) -> DataLoader:
        x, y = self.tensors["train"]
        weights = balanced_sample_weights(y, self.n_classes) if self.balanced_sampler else None
        return batch_loader(x, y, self.batch_size, shuffle=True, seed=self.seed, weights=weights)

    def val_dataloader(self) -> DataLoader:
        x, y = self.tensors["val"]
        return batch_loader(x, y, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        x, y = self.tensors["test"]
        return batch_loader(x, y, self.eval_batch_size, shuffle=False)
