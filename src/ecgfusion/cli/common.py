"""Options and printing shared by the CLI modules."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ecgfusion.errors import ConfigError, DataError

console = Console()

DataRoot = Annotated[
    Path | None,
    typer.Option(
        "--data-root",
        help="Folder holding the PhysioNet databases "
        "(default: $ECGFUSION_DATA, then ../shared/datasets).",
    ),
]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Cache folder (default: $ECGFUSION_CACHE, then ~/.cache/ecgfusion).",
    ),
]


def positive_finite(example: str) -> Callable[[typer.Context, typer.CallbackParam, float], float]:
    """Typer callback of a float option that must be a finite number above 0 (not nan or inf).

    ``typer.Option(callback=positive_finite("360"))``: a bad value is one ``error:`` line naming
    the option and an example, before any work. (Integer options use typer's ``min=``.)
    """

    def check(ctx: typer.Context, param: typer.CallbackParam, value: float | None) -> float | None:
        if value is None or (math.isfinite(value) and value > 0):
            return value
        name = max(param.opts, key=len) if param.opts else f"--{param.name}"
        raise ConfigError(
            f"{name} must be a positive finite number, got {value:g}; pass e.g. {name} {example}"
        )

    return check


def writable_path(path: Path, option: str = "--out", folder: bool = True) -> Path:
    """Check now, before any work, that ``path`` (a folder, or a file when ``folder`` is false)
    can be created and written: a bad --out is one error line, not a traceback after the work.

    Nothing is created; a write that still fails later names its file through the CLI's OSError
    handler.
    """
    target = Path(path).expanduser()
    if folder and target.exists() and not target.is_dir():
        raise DataError(
            f"{option} {path}: it is a file, not a folder; pass a folder (it is created if missing)"
        )
    if not folder and target.is_dir():
        raise DataError(f"{option} {path}: it is a folder; pass a file name")
    existing = target if folder and target.is_dir() else target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DataError(
            f"{option} {path}: cannot be created because {existing} is a file; pass a path "
            "under a folder"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DataError(
            f"{option} {path}: {existing} is not writable; pass a folder you can write to"
        )
    return path


def split_records(records: list[str] | None) -> list[str] | None:
    """Accept both `--records 100 --records 101` and `--records 100,101`."""
    if not records:
        return None
    return [r for item in records for r in item.replace(",", " ").split()]


def class_table(title: str, rows: dict[str, dict[str, int]], class_names: tuple[str, ...]) -> Table:
    table = Table(title=title)
    table.add_column("part")
    for c in class_names:
        table.add_column(c, justify="right")
    table.add_column("total", justify="right")
    for name, counts in rows.items():
        table.add_row(name, *(f"{counts[c]:,}" for c in class_names), f"{sum(counts.values()):,}")
    return table
