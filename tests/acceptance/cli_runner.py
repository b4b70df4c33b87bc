"""Driving the `ecgfusion` CLI in-process from acceptance tests."""

from __future__ import annotations

import pytest

from ecgfusion.cli import main


def run_cli(args, capsys):
    """(exit code, stdout, stderr) of one `ecgfusion ...` call."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return info.value.code, out.out, out.err
