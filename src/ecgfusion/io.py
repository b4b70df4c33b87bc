"""Atomic writes: a cache, checkpoint or report is either complete or absent, never half-written.

A temporary is named ``.<name>.ecgf-<pid>-<random>.tmp``: the pid of the process writing it, so
`sweep_stale_temporaries` can tell one a killed process left behind from one still being written.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMP_MARK = "ecgf"
_TEMP_NAME = re.compile(rf"^\..+\.{TEMP_MARK}-(?P<pid>[0-9]+)-[^.]+\.tmp$")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; it replaces ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.{TEMP_MARK}-{os.getpid()}-", suffix=".tmp", dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        chmod_as_created(tmp_path, 0o666)  # mkstemp makes it private (0600)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def chmod_as_created(path: str | os.PathLike, mode: int) -> None:
    """Give ``path`` the permissions a plain open() (0o666) or mkdir() (0o777) would under the
    process's umask; mkstemp and mkdtemp make their files private."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a pid this module writes: never treat it as dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, someone else's; anything else: assume alive
        return True
    return True


def sweep_stale_temporaries(folder: str | os.PathLike, depth: int = 0) -> list[Path]:
    """Remove the `atomic_path` temporaries in ``folder`` whose writing process is gone.

    Only regular files named ``.<name>.ecgf-<pid>-<random>.tmp`` with a pid that is not a live
    process are removed (a killed write: never finished, never to be); a user's own ``*.tmp``,
    a temporary still being written and anything else stay. ``depth`` levels of subfolders are
    searched too (0: ``folder`` only), so the sweep stays cheap. Returns the removed paths.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:  # absent, not a folder, unreadable: nothing of ours to sweep
        return removed
    for entry in entries:
        if depth > 0 and entry.is_dir(follow_symlinks=False):
            removed += sweep_stale_temporaries(entry.path, depth - 1)
            continue
        match = _TEMP_NAME.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        if _pid_alive(int(match["pid"])):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def aside_path(path: str | os.PathLike, reason: str, hidden: bool = False) -> Path:
    """A free name beside ``path`` for keeping it: ``NAME.REASON-<UTC time>`` (with a leading
    dot when ``hidden``, e.g. a published model that must not be listed or packaged)."""
    from datetime import UTC, datetime

    source = Path(path)
    base = f"{'.' if hidden else ''}{source.name}.{reason}-"
    base += datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target, n = source.with_name(base), 1
    while target.exists():
        n += 1
        target = source.with_name(f"{base}-{n}")
    return target


def set_aside(path: str | os.PathLike, reason: str) -> Path:
    """Move a folder or file the program will not continue out of the way, never deleting it:
    ``NAME`` becomes ``NAME.REASON-<UTC time>`` beside it; returns the new path."""
    target = aside_path(path, reason)
    Path(path).rename(target)
    return target
