"""The `ecgfusion` command: a thin shell over the package.

Each concern adds its commands from its own module (``cli/data.py``, ``cli/models.py`` …) through a
``register(app)`` function, so the shell stays a list. Errors a user can fix
(:class:`~ecgfusion.errors.EcgFusionError`) become one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import importlib
import sys

import typer

from ecgfusion.errors import EcgFusionError

app = typer.Typer(
    name="ecgfusion",
    help="Hybrid CNN-Transformer ECG classification on real PhysioNet data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

#: Modules under ecgfusion.cli that register commands, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "data",
    "models",
    "train",
    "tune",
    "inference",
    "experiments",
    "bench",
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"ecgfusion.cli.{_name}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point; ``main([...])`` is also how tests drive the CLI."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="ecgfusion", standalone_mode=True)
    except EcgFusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
