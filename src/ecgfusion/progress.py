"""Progress bars (rich) that step aside when there is no terminal or the caller wants silence."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from rich.progress import track as _rich_track

T = TypeVar("T")


def track(items: Sequence[T], description: str, enabled: bool = True) -> Iterator[T]:
    iterable: Iterable[T] = (
        _rich_track(items, description=description, transient=True) if enabled else items
    )
    yield from iterable
