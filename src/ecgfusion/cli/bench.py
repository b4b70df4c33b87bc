"""`ecgfusion bench [NAME ...]`: the performance benchmarks, a table each and JSON files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from ecgfusion.cli.common import console, positive_finite, writable_path


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def bench(
    names: list[str] = typer.Argument(
        None,
        help="spectrogram, train, convergence, fusion, inference, prepare, end-to-end, "
        "detection (default: all but convergence and detection, which run when named)",
    ),
    tiny: bool = typer.Option(False, "--tiny", help="a few hundred beats / steps: a smoke run"),
    out: Path = typer.Option(Path("benchmarks/results"), "--out", help="folder for NAME.json"),
    data_root: str = typer.Option(None, "--data-root", help="folder holding mitdb/"),
    skip_quick: bool = typer.Option(
        False, "--skip-quick", help="end-to-end: extrapolate only, do not run the quick preset"
    ),
    budget: float = typer.Option(
        None,
        "--budget",
        min=1,
        callback=positive_finite("300"),
        help="convergence: wall seconds per model and recipe (default 300; --tiny: 2.5)",
    ),
) -> None:
    """Measure speed on real MIT-BIH beats; every table ends with same-run ratios."""
    from ecgfusion.benchmarks import convergence, resolve, run_benchmark
    from ecgfusion.benchmarks.common import environment, render, write_json

    selected = resolve(names)
    writable_path(out)
    env = environment()
    console.print(
        f"[bold]{env['cpu']}[/], {env['cores']} cores, torch {env['torch']} "
        f"({env['torch_threads']} threads, OMP_WAIT_POLICY={env['omp_wait_policy']}), "
        f"python {env['python']}, load {env['load_average']}"
    )
    if os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        console.print(
            "[yellow]hint: OMP_WAIT_POLICY=PASSIVE ecgfusion bench … is faster and "
            "steadier on a shared CPU (it must be set before torch starts)[/]"
        )
    start = time.perf_counter()
    for name in selected:
        console.rule(name)
        # convergence also writes its plot and curves next to the JSON (its run() gets only
        # tiny and data_root from the harness)
        with convergence.options(budget_s=budget, out_dir=out):
            result = run_benchmark(name, tiny=tiny, data_root=data_root, quick=not skip_quick)
        console.print(render(result))
        path = write_json(result, out)
        console.print(f"[dim]{result.seconds:.1f} s; wrote {path}[/]")
    console.print(f"{len(selected)} benchmark(s) in {time.perf_counter() - start:.0f} s wall")
