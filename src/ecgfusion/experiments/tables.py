"""Formatting shared by the experiment tables (reproduce's and the comparison page)."""

from __future__ import annotations

import numpy as np

from ecgfusion.evaluation.report import markdown_table

__all__ = ["dig", "joined_ints", "markdown_table", "mean_std", "published_value"]


def mean_std(values: list[float | None], digits: int = 4) -> str:
    """One seed as it is, several as mean ± sample std, none as '–'."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def joined_ints(values: list) -> str:
    return "/".join(str(v) for v in values if v is not None) or "–"


def published_value(table: dict, dataset: str, stage: str, key: str) -> str:
    value = table.get((dataset, stage), {}).get(key)
    return "–" if value is None else f"{value:.4f}"


def dig(node: object, path: tuple[str, ...]) -> object:
    """``node[path[0]][path[1]]...``, None where a key is missing."""
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node
