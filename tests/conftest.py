"""Shared fixtures: where the real PhysioNet data is, and a per-session beat cache.

Acceptance tests need the real databases. Where they are absent (a user without the download) those
tests skip with the reason; in CI (CI=true) a missing database is a failure, never a skip.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from ecgfusion.errors import DataError


def _database(name: str) -> Path:
    from ecgfusion.data.root import database_dir

    try:
        return database_dir(name)
    except DataError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the real data: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def mitdb_dir() -> Path:
    return _database("mitdb")


@pytest.fixture(scope="session")
def ptbxl_dir() -> Path:
    return _database("ptbxl")


@pytest.fixture(scope="session")
def kaggle_dir() -> Path:
    return _database("kaggle-heartbeat")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    """One cache folder for the whole run, so the full MIT-BIH set is cut once."""
    return tmp_path_factory.mktemp("ecgfusion-cache")


@pytest.fixture(scope="session")
def mitdb_beats(mitdb_dir, session_cache):
    """All 48 MIT-BIH records, kachuee beats (built once per test session, ~3 s)."""
    from ecgfusion.data.cache import load_beats

    return load_beats("mitdb", "kachuee", data_root=mitdb_dir.parent, cache_dir=session_cache)


@pytest.fixture(scope="session", autouse=True)
def _default_cache_in_a_temporary_folder(tmp_path_factory):
    """A test run never writes to the user's ~/.cache: the default cache (and crash traces) of
    every command a test runs without --cache-dir go to a temporary folder."""
    before = os.environ.get("ECGFUSION_CACHE")
    os.environ["ECGFUSION_CACHE"] = str(tmp_path_factory.mktemp("default-cache"))
    yield
    if before is None:
        os.environ.pop("ECGFUSION_CACHE", None)
    else:
        os.environ["ECGFUSION_CACHE"] = before


@pytest.fixture(autouse=True)
def _quiet_known_overlap():
    from ecgfusion.data.splits import KnownPatientOverlapWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KnownPatientOverlapWarning)
        yield
