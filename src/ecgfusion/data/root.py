"""Where the PhysioNet databases are: --data-root, then $ECGFUSION_DATA, then ../shared/datasets."""

from __future__ import annotations

import os
from pathlib import Path

from ecgfusion.errors import DataError

ENV_VAR = "ECGFUSION_DATA"

#: Folder names a database may have under the data root: ours first, then PhysioNet's own
#: download names, so a user can point --data-root at an untouched PhysioNet download.
DATABASE_FOLDERS: dict[str, tuple[str, ...]] = {
    "mitdb": ("mitdb", "mit-bih-arrhythmia-database-1.0.0"),
    "ptbxl": (
        "ptbxl",
        "ptb-xl",
        "ptb-xl-a-large-publicly-available-electrocardiography-dataset-1.0.3",
        "ptb-xl-a-large-publicly-available-electrocardiography-dataset-1.0.1",
    ),
    "ludb": ("ludb", "lobachevsky-university-electrocardiography-database-1.0.1"),
    "ptbdb": ("ptbdb", "ptbdb-sample", "ptb-diagnostic-ecg-database-1.0.0"),
    "kaggle-heartbeat": ("kaggle-heartbeat", "kaggle-heartbeat-sample", "heartbeat"),
}

#: What `wfdb.dl_database` calls each database on PhysioNet.
PHYSIONET_NAMES = {"mitdb": "mitdb", "ptbxl": "ptb-xl", "ludb": "ludb", "ptbdb": "ptbdb"}


def _repo_default() -> list[Path]:
    here = Path(__file__).resolve()
    candidates = [Path.cwd() / ".." / "shared" / "datasets"]
    # src/ecgfusion/data/root.py -> the checkout is parents[3]; its sibling shared/ holds the data.
    if len(here.parents) > 3:
        candidates.insert(0, here.parents[3].parent / "shared" / "datasets")
    return candidates


def data_roots(data_root: str | os.PathLike | None = None) -> list[Path]:
    """The roots to look in, in order of precedence (only the first given one counts)."""
    if data_root is not None:
        return [Path(data_root).expanduser()]
    env = os.environ.get(ENV_VAR)
    if env:
        return [Path(env).expanduser()]
    return _repo_default()


def database_dir(name: str, data_root: str | os.PathLike | None = None) -> Path:
    """The folder of one database, or a DataError saying where we looked and how to get it.

    The root may also be the database folder itself (it then holds RECORDS).
    """
    if name not in DATABASE_FOLDERS:
        raise DataError(f"unknown database {name!r}; known: {', '.join(sorted(DATABASE_FOLDERS))}")
    looked: list[Path] = []
    for root in data_roots(data_root):
        for folder in DATABASE_FOLDERS[name]:
            path = root / folder
            looked.append(path)
            if path.is_dir():
                return path.resolve()
        if data_root is not None and (root / "RECORDS").is_file() and root.name != "datasets":
            return root.resolve()
    hint = (
        f"download it with: python -c \"import wfdb; wfdb.dl_database('{PHYSIONET_NAMES[name]}', "
        f"'DIR/{DATABASE_FOLDERS[name][0]}')\" and pass --data-root DIR (or set {ENV_VAR}=DIR)"
        if name in PHYSIONET_NAMES
        else f"put it under DIR/{DATABASE_FOLDERS[name][0]} and pass --data-root DIR"
    )
    raise DataError(
        f"database {name!r} not found; looked in {', '.join(str(p) for p in looked)}; {hint}"
    )
