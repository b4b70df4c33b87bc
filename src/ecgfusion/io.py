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
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


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


def set_aside(path: str | os.PathLike, reason: str) -> Path:
    """Move a folder or file the program will not continue out of the way, never deleting it:
    ``NAME`` becomes ``NAME.REASON-<UTC time>`` beside it; returns the new path."""
    from datetime import UTC, datetime

    source = Path(path)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = source.with_name(f"{source.name}.{reason}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = source.with_name(f"{source.name}.{reason}-{stamp}-{n}")
    source.rename(target)
    return target
