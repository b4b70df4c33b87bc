"""The benchmark harness: medians and spread, names, JSON and table output."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from ecgfusion.benchmarks import BENCHMARKS, resolve
from ecgfusion.benchmarks.common import BenchResult, Timing, render, write_json
from ecgfusion.errors import ConfigError


def test_timing_is_the_median_per_unit_with_relative_spread():
    timing = Timing.of([4.0, 2.0, 3.0], per=2.0)
    assert (timing.median, timing.low, timing.high) == (1.5, 1.0, 2.0)
    assert timing.spread == pytest.approx(1.0 / 1.5)
    assert timing.rate() == pytest.approx(1 / 1.5)


def test_names_run_in_suite_order_and_accept_underscores():
    assert resolve(["end_to_end", "spectrogram"]) == ["spectrogram", "end-to-end"]
    assert resolve(None)[0] == "spectrogram" and "convergence" not in resolve([])
    assert resolve([]) == [n for n in BENCHMARKS if n not in ("convergence", "detection")]
    assert resolve(["convergence"]) == ["convergence"]  # long: only when named
    assert resolve(["detection"]) == ["detection"]
    with pytest.raises(ConfigError, match="unknown benchmark foo"):
        resolve(["foo"])


def test_targets_json_and_table(tmp_path):
    result = BenchResult("demo", "Demo", True, ["what", "beats/s"], rows=[{"what": "a",
                                                                          "beats/s": 12.5}])
    result.ratios["a vs b"] = 3.0
    result.add_target("fast enough", 3.0, 2.0)
    result.add_target("whole record (s)", 3.0, 2.0, higher=False)
    assert [t["met"] for t in result.targets] == [True, False]
    data = json.loads(write_json(result, tmp_path).read_text())
    assert data["ratios"] == {"a vs b": 3.0} and data["environment"]["python"]
    assert not list(tmp_path.glob(".*.tmp"))
    console = Console(width=120, record=True)
    console.print(render(result))
    text = console.export_text()
    assert "a vs b" in text and "NOT met" in text and "12.5" in text
