"""Which task trains a config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecgfusion.training.tasks.base import Task

if TYPE_CHECKING:
    from ecgfusion.training.config import RunConfig


def task_for(config: RunConfig) -> Task:
    """The task that trains ``config``: records for record datasets, beats for the rest."""
    from ecgfusion.training.config import RECORD_DATASETS

    if config.data.dataset in RECORD_DATASETS:
        from ecgfusion.training.tasks.record_classification import RecordTask

        return RecordTask()
    from ecgfusion.training.tasks.beat_classification import BeatTask

    return BeatTask()
