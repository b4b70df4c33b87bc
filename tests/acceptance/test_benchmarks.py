"""Every benchmark runs in tiny mode on real MIT-BIH beats and writes a well-formed result.

No timed asserts: speed on a shared machine is noise; the structure and the same-run ratios
(positive, finite) are what must not rot.
"""

from __future__ import annotations

import json
import math

import pytest

from ecgfusion.benchmarks import BENCHMARKS
from ecgfusion.benchmarks.common import FORMAT
from ecgfusion.benchmarks.convergence_curves import time_ratio
from ecgfusion.cli import main

pytestmark = pytest.mark.acceptance


def _bench(out, mitdb_dir, *names: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", *names, "--tiny", "--out", str(out), "--data-root", str(mitdb_dir.parent)])
    assert exit_info.value.code in (0, None)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mitdb_dir):
    """Every benchmark but convergence (its own fixture, so its test can run alone)."""
    out = tmp_path_factory.mktemp("bench")
    _bench(out, mitdb_dir, *(name for name in BENCHMARKS if name != "convergence"))
    return out


@pytest.fixture(scope="module")
def convergence_run(tmp_path_factory, mitdb_dir):
    """`ecgfusion bench convergence --tiny`: six fits of a few seconds on 400 real beats."""
    out = tmp_path_factory.mktemp("bench-convergence")
    _bench(out, mitdb_dir, "convergence")
    return out


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_each_benchmark_writes_rows_ratios_and_environment(request, name):
    out = request.getfixturevalue("convergence_run" if name == "convergence" else "tiny_run")
    data = json.loads((out / f"{name.replace('-', '_')}.json").read_text())
    assert data["format"] == FORMAT and data["tiny"] is True
    assert data["environment"]["torch"] and data["environment"]["cores"] >= 1
    assert data["rows"] and all(set(row) <= set(data["columns"]) for row in data["rows"])
    assert data["ratios"], "every benchmark reports same-run ratios"
    for key, value in data["ratios"].items():
        assert math.isfinite(value) and value > 0, key
    for target in data["targets"]:
        assert isinstance(target["met"], bool) and target["goal"] > 0


def test_convergence_curves_thresholds_ratios_and_plot(convergence_run):
    """Three models x two recipes, each with a curve that moves forward in time, times to 97 / 98 %
    that are the curve's first point at or above them, ratios that follow from the curves, and
    the plot and CSV next to the JSON."""
    data = json.loads((convergence_run / "convergence.json").read_text())
    pairs = {(row["model"], row["recipe"]) for row in data["rows"]}
    assert len(data["rows"]) == 6 and pairs == {
        (m, r) for m in ("1D", "2D", "hybrid") for r in ("paper", "cpu")
    }
    assert data["params"]["threads"] >= 1 and data["params"]["budget_s_per_run"] > 0
    curves = {(c["model"], c["recipe"]): c["points"] for c in data["params"]["curves"]}
    assert set(curves) == pairs
    for row in data["rows"]:
        points = curves[row["model"], row["recipe"]]
        assert points and row["points"] == len(points), row
        walls = [p["wall_s"] for p in points]
        assert all(a < b for a, b in zip(walls, walls[1:], strict=False)), walls
        for key in ("train_s", "epoch", "step"):
            values = [p[key] for p in points]
            assert all(a <= b for a, b in zip(values, values[1:], strict=False)), (key, values)
        assert all(p["train_s"] <= p["wall_s"] for p in points)
        assert all(0 <= p["val_acc"] <= 1 and 0 <= p["val_macro_f1"] <= 1 for p in points)
        assert row["best acc"] == max(p["val_acc"] for p in points)
        assert row["last F1"] == points[-1]["val_macro_f1"]
        assert row["epochs"] >= points[-1]["epoch"] and row["train s"] >= points[-1]["train_s"]
        for pct, threshold in (("97%", 0.97), ("98%", 0.98)):
            hit = next((p for p in points if p["val_acc"] >= threshold), None)
            assert row[f"s to {pct}"] == (None if hit is None else hit["train_s"]), row
            assert row[f"epochs to {pct}"] == (None if hit is None else hit["epoch"]), row
    for detail in data["params"]["time_to_accuracy"]:
        model, threshold = detail["model"], detail["threshold"]
        value, kind = time_ratio(curves[model, "paper"], curves[model, "cpu"], threshold)
        assert (detail["ratio"], detail["kind"]) == (value, kind)
        reported = [
            v
            for k, v in data["ratios"].items()
            if k.startswith(f"{model}: paper vs cpu time to {threshold:.0%} val acc")
        ]
        assert reported == ([] if value is None else [value])
    for model in ("1D", "2D", "hybrid"):
        assert data["ratios"][f"{model}: cpu vs paper training beats/s"] > 0
    png = convergence_run / "convergence.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (convergence_run / "convergence_curves.csv").read_text().splitlines()
    assert len(lines) == 1 + sum(len(p) for p in curves.values())


def test_unknown_benchmark_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "nonsense", "--tiny"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown benchmark nonsense") and "\n" not in err
