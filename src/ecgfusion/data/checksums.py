"""Integrity of a PhysioNet download against the SHA256SUMS file it ships with."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ecgfusion.errors import DataError

SUM_FILES = ("SHA256SUMS.txt", "SHA256SUMS")


@dataclass
class VerifyReport:
    checked: int = 0
    ok: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.missing and not self.mismatched


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_checksums(db_dir: Path) -> VerifyReport:
    sums = next((db_dir / n for n in SUM_FILES if (db_dir / n).is_file()), None)
    if sums is None:
        raise DataError(
            f"no SHA256SUMS.txt in {db_dir}; download the database again from PhysioNet "
            "(it ships one) to verify it"
        )
    try:
        lines = sums.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{sums} cannot be read ({exc}); re-download it") from None
    report = VerifyReport()
    for line_no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DataError(f"{sums}:{line_no}: not a 'SHA256 FILENAME' line; re-download the file")
        digest, name = parts[0].lower(), parts[1].strip().lstrip("*")
        path = db_dir / name
        report.checked += 1
        if not path.is_file():
            report.missing.append(name)
        elif _sha256(path) != digest:
            report.mismatched.append(name)
        else:
            report.ok += 1
    return report
