"""The `ecgfusion` command: a thin shell over the package.

Each concern adds its commands from its own module (``cli/data.py``, ``cli/models.py`` …) through a
``register(app)`` function, so the shell stays a list. Errors a user can fix
(:class:`~ecgfusion.errors.EcgFusionError`, and an OSError that names its file) become one line on
stderr and a non-zero exit code. Anything else is a bug: one line that says where its full trace
was saved (``crash/`` under the cache folder) and exit code 70; Ctrl-C is one line and exit 130.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import NoReturn

import typer

from ecgfusion.errors import DataError, EcgFusionError

#: Exit code of an unexpected error (a bug): EX_SOFTWARE of sysexits.h.
CRASH_EXIT_CODE = 70
#: Exit code after Ctrl-C (128 + SIGINT), as a shell reports it.
INTERRUPT_EXIT_CODE = 130

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
        _fail(f"error: {exc}", exc.exit_code)
    except SystemExit as exc:
        # typer turns Ctrl-C inside a command into a silent Exit(130), Lightning into a
        # sys.exit(1) after its graceful shutdown; say what happened, with the shell's code
        if exc.code not in (0, None) and _caused_by(exc, KeyboardInterrupt):
            _fail("error: interrupted", INTERRUPT_EXIT_CODE)
        raise  # --help, usage errors, typer.Exit: as typer made them
    except KeyboardInterrupt:
        _fail("error: interrupted", INTERRUPT_EXIT_CODE)
    except OSError as exc:
        if exc.filename is None:
            _crash(exc, argv)
        error = DataError(
            f"{exc.filename}: {exc.strerror or exc}; check that the path exists and that you may "
            "read or write it"
        )
        _fail(f"error: {error}", error.exit_code)
    except Exception as exc:
        _crash(exc, argv)


def _fail(line: str, code: int) -> NoReturn:
    print(line, file=sys.stderr)
    raise SystemExit(code) from None


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        if isinstance(item, kind):
            return True
        seen.add(id(item))
        todo += [item.__cause__, item.__context__]
    return False


def _crash(exc: BaseException, argv: list[str] | None) -> NoReturn:
    """One line naming the error and the file its full trace went to; exit 70."""
    message = " ".join(str(exc).split())
    if len(message) > 300:
        message = message[:297] + "..."
    where = _save_trace(exc, argv)
    saved = f"full trace saved to {where}" if where else "its trace could not be saved"
    _fail(
        f"error: unexpected {type(exc).__name__}: {message} ({saved}; please report it)",
        CRASH_EXIT_CODE,
    )


def crash_dir() -> Path:
    """``crash/`` under the ecgfusion cache folder ($ECGFUSION_CACHE, then ~/.cache/ecgfusion)."""
    from ecgfusion.data.cache import cache_dir

    return cache_dir() / "crash"


def _save_trace(exc: BaseException, argv: list[str] | None) -> Path | None:
    """A new file per crash, under crash_dir(), else the system temp folder; None if neither."""
    from ecgfusion import __version__

    args = sys.argv[1:] if argv is None else list(argv)
    text = (
        f"ecgfusion {__version__}, python {sys.version.split()[0]}, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        f"command: ecgfusion {' '.join(str(a) for a in args)}\n\n"
        + "".join(traceback.format_exception(exc))
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder, prefix in ((crash_dir, "crash-"), (tempfile.gettempdir, "ecgfusion-crash-")):
        try:
            target = Path(folder())
            target.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"{prefix}{stamp}-", suffix=".txt", dir=target)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
            return Path(name)
        except Exception:  # noqa: BLE001 - an unwritable cache must not hide the crash
            continue
    return None
