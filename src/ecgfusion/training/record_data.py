"""PTB-XL records as training data: 12-lead signals, the metadata vector and the targets of
the strat_fold split, in memory, served as index slices; and the subset note every record
output carries.

Every number is on the PTB-XL records under the data root; the shared copy is ecg_id 1-1999, and
each output says so (see :func:`subset_note`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ecgfusion.data.ptbxl import PtbxlRecords, prepare_ptbxl_records
from ecgfusion.errors import ConfigError, DataError
from ecgfusion.training.config import RunConfig
from ecgfusion.training.datamodule import Inputs, SizedDataModule, batch_loader, class_weights

TASKS = ("binary", "superclasses")
BINARY_CLASSES = ("normal", "abnormal")
TASK_LABELS = {
    "binary": "normal (diagnostic superclasses exactly {NORM}) vs abnormal (any other), "
    "cross-entropy over 2 classes",
    "superclasses": "NORM, MI, STTC, CD, HYP as 5 independent labels, BCE with logits",
}
SPLIT_LABEL = "PTB-XL strat_fold 1-8 train / 9 validation / 10 test (patient-disjoint)"
#: Records of the full PTB-XL release (v1.0.3); fewer means a subset.
FULL_RELEASE = 21_799
BENCHMARK = "published superdiagnostic macro AUROC about 0.93, Strodthoff et al. 2020"
RECORD_MODELS = ("multimodal",)


def subset_note(records: PtbxlRecords) -> str:
    """The line every output carries: which records these numbers come from."""
    ids = records.ecg_id
    what = f"PTB-XL ecg_id {int(ids.min())}-{int(ids.max())}: {len(ids):,} records"
    if len(ids) < FULL_RELEASE:
        return (
            f"{what}, a subset of the {FULL_RELEASE:,}-record release; not comparable with "
            f"full-PTB-XL results ({BENCHMARK})"
        )
    return f"{what} (full release; for reference, {BENCHMARK})"


# --------------------------------------------------------------------------- data


def load_config_records(config: RunConfig) -> PtbxlRecords:
    """The record set a config names, from its Parquet cache (built on first use)."""
    data = config.data
    records, _, _ = prepare_ptbxl_records(
        data_root=data.data_root,
        cache_dir=data.cache_dir,
        sampling_rate=data.sampling_rate or 100,
        ids=data.records,
    )
    return records


class RecordDataModule(SizedDataModule):
    """Train/val/test tensors of the strat_fold split, in memory, served as index slices."""

    def __init__(
        self,
        records: PtbxlRecords,
        task: str,
        batch_size: int,
        eval_batch_size: int = 256,
        seed: int = 0,
        parts: Sequence[str] | None = None,
    ):
        super().__init__()
        if task not in TASKS:
            raise ConfigError(f"data.task must be one of {', '.join(TASKS)}, got {task!r}")
        self.records, self.task = records, task
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.index = records.split()
        if parts is not None:
            self.index = {p: self.index[p] for p in parts}
        for part in self.index:
            if len(self.index[part]) == 0:
                raise DataError(
                    f"the {part} part (strat_fold {part}) of the PTB-XL records is empty; use "
                    "more records (data.records) or none to take all"
                )
        y = records.binary if task == "binary" else records.targets
        # (named inputs, y) per part, as beat batches are: the model reads x, and meta when it
        # has a metadata branch (models.base.model_inputs).
        self.tensors: dict[str, tuple[Inputs, Tensor]] = {
            part: (
                {
                    "x": torch.from_numpy(
                        np.ascontiguousarray(records.signal[idx], dtype=np.float32)
                    ),
                    "meta": torch.from_numpy(
                        np.ascontiguousarray(records.metadata[idx], dtype=np.float32)
                    ),
                },
                torch.from_numpy(np.asarray(y[idx])),
            )
            for part, idx in self.index.items()
        }

    @property
    def binary(self) -> bool:
        return self.task == "binary"

    @property
    def class_names(self) -> tuple[str, ...]:
        return BINARY_CLASSES if self.binary else tuple(self.records.class_names)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_leads(self) -> int:
        return self.records.signal.shape[1]

    @property
    def n_samples(self) -> int:
        return self.records.signal.shape[2]

    @property
    def n_meta(self) -> int:
        return self.records.metadata.shape[1]

    @property
    def sampling_rate(self) -> float:
        return float(self.records.fs)

    def extra_sizes(self) -> dict[str, int]:
        return {"n_leads": self.n_leads, "n_meta": self.n_meta}

    @property
    def description(self) -> str:
        return f"the {self.task} PTB-XL data"

    def targets(self, part: str) -> Tensor:
        """{0, 1} targets [n, columns] matching :func:`probabilities` (binary: P(abnormal))."""
        y = self.tensors[part][1]
        return y[:, None].double() if self.binary else y.double()

    def class_counts(self) -> dict[str, dict[str, int]]:
        """Records per class and part (multi-label: a record counts in each of its classes)."""
        out = {}
        for part in self.tensors:
            y = self.tensors[part][1]
            counts = torch.bincount(y, minlength=2) if self.binary else y.sum(dim=0)
            out[part] = {c: int(v) for c, v in zip(self.class_names, counts, strict=True)}
        return out

    def loss_weights(self) -> Tensor:
        """Binary: inverse-frequency class weights; multi-label: BCE pos_weight = neg / pos."""
        y = self.tensors["train"][1]
        if self.binary:
            return class_weights(y.numpy(), 2)
        pos = y.sum(dim=0)
        return torch.where(pos > 0, (len(y) - pos) / pos.clamp(min=1), torch.zeros_like(pos))

    def _loader(self, part: str, batch_size: int, shuffle: bool) -> DataLoader:
        inputs, y = self.tensors[part]
        return batch_loader(inputs, y, batch_size, shuffle, self.seed)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)


def probabilities(scores: Tensor, binary: bool) -> Tensor:
    """Binary: P(abnormal) [n, 1] from the 2 logits; multi-label: sigmoid per class [n, C]."""
    scores = scores.float()
    return torch.softmax(scores, dim=1)[:, 1:] if binary else torch.sigmoid(scores)
