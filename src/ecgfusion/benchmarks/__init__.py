"""Benchmarks of issue 7, each a module with ``run(tiny, data_root) -> BenchResult``.

Run them with ``ecgfusion bench [NAME ...]``; see benchmarks/README.md for what each measures.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable

from ecgfusion.benchmarks.common import BenchResult
from ecgfusion.errors import ConfigError

#: name -> module under ecgfusion.benchmarks, in the order `ecgfusion bench` runs them.
BENCHMARKS: dict[str, str] = {
    "spectrogram": "spectrogram",
    "train": "train",
    "convergence": "convergence",
    "fusion": "fusion",
    "inference": "inference",
    "prepare": "prepare",
    "end-to-end": "end_to_end",
    "detection": "detection",
}


#: Run only when named: time-to-accuracy trains six models for minutes each (6 x --budget);
#: detection runs every detector over 44 whole records (~13 min on 2 cores).
ON_REQUEST = ("convergence", "detection")


def resolve(names: list[str] | None) -> list[str]:
    """Benchmark names in run order; ``end_to_end`` is accepted for ``end-to-end``. Without
    names: every benchmark but the ON_REQUEST ones."""
    if not names:
        return [n for n in BENCHMARKS if n not in ON_REQUEST]
    wanted = [n.replace("_", "-") for n in names]
    unknown = [n for n in wanted if n not in BENCHMARKS]
    if unknown:
        raise ConfigError(
            f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    return [n for n in BENCHMARKS if n in wanted]


def runner(name: str) -> Callable[..., BenchResult]:
    return importlib.import_module(f"ecgfusion.benchmarks.{BENCHMARKS[name]}").run


def run_benchmark(
    name: str, tiny: bool = False, data_root: str | None = None, quick: bool = True
) -> BenchResult:
    start = time.perf_counter()
    extra = {} if name != "end-to-end" else {"quick": quick}
    result = runner(name)(tiny=tiny, data_root=data_root, **extra)
    result.seconds = round(time.perf_counter() - start, 2)
    return result
