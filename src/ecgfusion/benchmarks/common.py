"""The shared harness: repeats with median and spread, real beats, machine facts, JSON and tables.

Absolute times on a shared 2-core machine are noise; every benchmark therefore reports ratios of
two things measured in the same process, back to back, each as the median over repeats.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgfusion.io import atomic_write_text
from ecgfusion.runtime import cpu_model

FORMAT = "ecgfusion-bench/1"


def repeat(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


@dataclass(frozen=True)
class Timing:
    """Median wall time of one unit of work and the spread over the repeats."""

    median: float
    low: float
    high: float
    repeats: int

    @classmethod
    def of(cls, times: list[float], per: float = 1.0) -> Timing:
        """From raw repeat times, each divided by ``per`` (e.g. seconds per beat)."""
        scaled = [t / per for t in times]
        return cls(statistics.median(scaled), min(scaled), max(scaled), len(scaled))

    @property
    def spread(self) -> float:
        """(max - min) / median: how much to trust the median on a noisy machine."""
        return (self.high - self.low) / self.median if self.median > 0 else float("inf")

    def rate(self) -> float:
        """Units per second at the median."""
        return 1.0 / self.median if self.median > 0 else float("inf")

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "spread": round(self.spread, 4)}


def measure(fn: Callable[[], Any], repeats: int, per: float = 1.0, warmup: int = 1) -> Timing:
    return Timing.of(repeat(fn, repeats, warmup), per)


@dataclass
class BenchResult:
    """One benchmark's rows (one per thing measured), its same-run ratios and notes."""

    name: str
    title: str
    tiny: bool
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def add_target(self, what: str, value: float, goal: float, higher: bool = True) -> None:
        """A target of issue 7 with the measured value; ``higher=False`` for time limits."""
        met = value >= goal if higher else value <= goal
        self.targets.append({"target": what, "value": value, "goal": goal, "met": bool(met)})

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "environment": environment(), **asdict(self)}


def environment() -> dict[str, Any]:
    """Machine, versions and load: what makes two runs' numbers comparable or not."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def real_beats(n: int | None, seed: int = 0, data_root: str | None = None) -> torch.Tensor:
    """``n`` MIT-BIH beats [n, 187] (all when None), drawn without replacement, from the cache."""
    from ecgfusion.data.cache import load_beats

    beats = load_beats("mitdb", data_root=data_root)
    x = torch.from_numpy(np.array(beats.signals, dtype=np.float32))  # writable copy
    if n is None or n >= len(x):
        return x
    rng = np.random.default_rng(seed)
    return x[torch.from_numpy(np.sort(rng.choice(len(x), size=n, replace=False)))]


def real_labels(n: int, n_classes: int = 5, seed: int = 0) -> torch.Tensor:
    """Labels only shape the loss; their values do not change a step's cost."""
    return torch.from_numpy(np.random.default_rng(seed).integers(0, n_classes, size=n))


def matmul_peak(seconds: float = 1.0, size: int = 2048) -> float:
    """fp32 FLOP/s of a ``size``² matmul loop in this process (the MFU denominator)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best


def write_json(result: BenchResult, out_dir: str | os.PathLike) -> Path:
    """NAME.json (everything) and NAME.md (the tables) in ``out_dir``; returns the JSON path."""
    path = Path(out_dir) / f"{result.name}.json"
    atomic_write_text(path, json.dumps(result.as_dict(), indent=2, default=float) + "\n")
    atomic_write_text(path.with_suffix(".md"), markdown(result))
    return path


def markdown(result: BenchResult) -> str:
    """The same table, ratios and targets as :func:`render`, as Markdown (for docs/)."""
    cols = result.columns
    lines = [
        f"**{result.title}**" + (" (tiny)" if result.tiny else ""),
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in cols) + " |" for row in result.rows]
    if result.ratios:
        lines += ["", "| ratio (same run) | x |", "|---|---|"]
        lines += [f"| {k} | {fmt(float(v))} |" for k, v in result.ratios.items()]
    if result.targets:
        lines += ["", "| target | value | goal | met |", "|---|---|---|---|"]
        lines += [
            f"| {t['target']} | {fmt(float(t['value']))} | {fmt(float(t['goal']))} | "
            f"{'met' if t['met'] else '**NOT met**'} |"
            for t in result.targets
        ]
    lines += [""] + [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else ("yes" if value else "no")
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e5:
            return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def render(result: BenchResult):
    """A rich renderable: the rows, then ratios and targets (met / NOT met)."""
    from rich import box
    from rich.console import Group
    from rich.table import Table

    mode = " (tiny)" if result.tiny else ""
    table = Table(title=f"{result.title}{mode}", box=box.SIMPLE_HEAD, title_justify="left")
    for column in result.columns:
        first = column == result.columns[0]
        table.add_column(column, justify="left" if first else "right", no_wrap=first)
    for row in result.rows:
        table.add_row(*(fmt(row.get(c)) for c in result.columns))
    parts: list[Any] = [table]
    if result.ratios:
        ratios = Table(box=box.SIMPLE, show_header=True, title_justify="left")
        ratios.add_column("ratio (same run)")
        ratios.add_column("x", justify="right")
        for key, value in result.ratios.items():
            ratios.add_row(key, f"{value:,.3g}" if value < 100 else f"{value:,.0f}")
        parts.append(ratios)
    if result.targets:
        targets = Table(box=box.SIMPLE, show_header=True)
        for column in ("target", "value", "goal", "met"):
            targets.add_column(column, justify="left" if column == "target" else "right")
        for t in result.targets:
            met = "[green]met[/]" if t["met"] else "[red]NOT met[/]"
            targets.add_row(t["target"], fmt(float(t["value"])), fmt(float(t["goal"])), met)
        parts.append(targets)
    for note in result.notes:
        parts.append(f"[dim]- {note}[/]")
    return Group(*parts)
