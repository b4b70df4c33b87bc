"""`ecgfusion reproduce`: the paper's experiments in one command."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from ecgfusion.cli.common import CacheDir, DataRoot, console, writable_path


def reproduce(
    dataset: Annotated[str, typer.Option(help="mitdb, ptbxl-beats or all.")] = "mitdb",
    protocol: Annotated[
        str, typer.Option(help="beat-random, inter-patient or all.")
    ] = "beat-random",
    preset: Annotated[
        str, typer.Option(help="quick (minutes), cpu (hours) or paper (Table II).")
    ] = "quick",
    seeds: Annotated[int, typer.Option(help="Repeat every stage over this many seeds.")] = 1,
    out: Annotated[Path, typer.Option(help="Results folder.")] = Path("results"),
    runs: Annotated[Path, typer.Option(help="Folder of the stages' run folders.")] = Path(
        "runs/reproduce"
    ),
    data_root: DataRoot = None,
    cache_dir: CacheDir = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a config key in every stage, after the preset: "
            "--set trainer.precision=32 (repeatable).",
        ),
    ] = None,
) -> None:
    """prepare -> 1D model -> 2D model -> late fusion -> intermediate fusions -> tables.

    Finished stages are reused and an interrupted one continues, so a rerun after a kill goes on
    where it stopped.
    """
    from ecgfusion.experiments.reproduce import reproduce as run

    writable_path(out)
    writable_path(runs, "--runs")
    command = "ecgfusion " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    folders = run(
        dataset,
        protocol,
        preset,
        seeds,
        out,
        runs,
        command,
        None if data_root is None else str(data_root),
        None if cache_dir is None else str(cache_dir),
        log=lambda line: console.print(line, markup=False),
        extra=tuple(set_ or ()),
    )
    for folder in folders:
        for name in ("experiment1.md", "experiment2.md"):
            console.print((folder / name).read_text(), markup=False)
        console.print(f"results: {folder}")


def register(app: typer.Typer) -> None:
    app.command("reproduce")(reproduce)
