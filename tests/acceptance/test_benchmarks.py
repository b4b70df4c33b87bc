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
from ecgfusion.cli import main

pytestmark = pytest.mark.acceptance


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mitdb_dir):
    out = tmp_path_factory.mktemp("bench")
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--tiny", "--out", str(out), "--data-root", str(mitdb_dir.parent)])
    assert exit_info.value.code in (0, None)
    return out


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_each_benchmark_writes_rows_ratios_and_environment(tiny_run, name):
    data = json.loads((tiny_run / f"{name.replace('-', '_')}.json").read_text())
    assert data["format"] == FORMAT and data["tiny"] is True
    assert data["environment"]["torch"] and data["environment"]["cores"] >= 1
    assert data["rows"] and all(set(row) <= set(data["columns"]) for row in data["rows"])
    assert data["ratios"], "every benchmark reports same-run ratios"
    for key, value in data["ratios"].items():
        assert math.isfinite(value) and value > 0, key
    for target in data["targets"]:
        assert isinstance(target["met"], bool) and target["goal"] > 0


def test_unknown_benchmark_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "nonsense", "--tiny"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown benchmark nonsense") and "\n" not in err
