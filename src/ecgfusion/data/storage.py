"""Where caches live and how a database folder is fingerprinted: a leaf module (no ecgfusion
imports), so the beat cache, the dataset registry and the PTB-XL record cache can all use it
without importing each other."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

ENV_VAR = "ECGFUSION_CACHE"

__all__ = ["ENV_VAR", "cache_dir", "fingerprint"]


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """--cache-dir, then $ECGFUSION_CACHE, then $XDG_CACHE_HOME/ecgfusion, then ~/.cache."""
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ecgfusion"


def fingerprint(db_dir: Path) -> str:
    """Names, sizes and modification times of the database files: a changed file, a new key."""
    h = hashlib.sha256(str(db_dir.resolve()).encode())
    for root, dirs, files in os.walk(db_dir):
        dirs.sort()
        for name in sorted(files):
            st = os.stat(os.path.join(root, name))
            h.update(
                f"{os.path.relpath(os.path.join(root, name), db_dir)}:{st.st_size}:"
                f"{st.st_mtime_ns}\n".encode()
            )
    return h.hexdigest()
