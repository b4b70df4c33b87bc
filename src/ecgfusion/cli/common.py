"""Options and printing shared by the CLI modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

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
