"""Atomic sets, not just atomic files: publish, ONNX export and the temporaries a kill leaves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ecgfusion.errors import DataError
from ecgfusion.experiments import publish
from ecgfusion.inference import export as onnx_export
from ecgfusion.inference import loading
from ecgfusion.io import atomic_path, sweep_stale_temporaries
from ecgfusion.models import create_model, save_model
from ecgfusion.training.config import load_config, save_config

ROOT = Path(__file__).resolve().parents[2]


def fake_run(path: Path, weights: bytes = b"weights") -> Path:
    """A finished run folder as publish reads it (model.pt is only copied, never loaded)."""
    path.mkdir(parents=True)
    save_config(load_config(ROOT / "configs" / "cnn_transformer_1d_mitdb.yaml"), path)
    (path / "model.pt").write_bytes(weights)
    metrics = {
        "data": {
            "protocol": "beat-random",
            "split_label": "beat-random",
            "class_names": list("NSVFQ"),
        },
        "metrics": {"n": 100, "accuracy": 0.9, "macro_f1": 0.5, "weighted_f1": 0.8, "mcc": 0.4},
        "timing": {"epochs_trained": 1, "train_seconds": 1.0},
    }
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


def _dead_pid() -> int:
    """The pid of a process that has exited (and been waited for)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


class Stop(Exception):
    """Raised by a stand-in for the work that follows a sweep: the test ends there."""


def _stop(*args, **kwargs):
    raise Stop


def _publish(run: Path, dest: Path, logged: list[str] | None = None) -> Path:
    kwargs = {"log": logged.append} if logged is not None else {}
    return publish.publish_pretrained(run, "m", "quick", "cmd", dest=dest, **kwargs)


# --------------------------------------------------------------------------- publish


def test_publish_keeps_the_model_it_replaces(tmp_path, monkeypatch):
    dest = tmp_path / "pretrained"
    _publish(fake_run(tmp_path / "old", b"old weights"), dest)
    logged: list[str] = []
    target = _publish(fake_run(tmp_path / "new", b"new weights"), dest, logged)
    assert (target / "model.pt").read_bytes() == b"new weights"
    kept = [p for p in dest.iterdir() if p.name.startswith(".m.replaced-")]
    assert len(kept) == 1 and (kept[0] / "model.pt").read_bytes() == b"old weights"
    assert str(kept[0]) in logged[0]  # the caller can tell the user where it went
    assert sorted(p.name for p in dest.iterdir()) == [kept[0].name, "m"]  # no staging left
    # the kept folder is hidden: never listed as a model
    monkeypatch.setattr(loading, "PRETRAINED_DIR", dest)
    assert loading.pretrained_names() == ["m"]
    with pytest.raises(DataError, match="no pretrained model"):
        loading.resolve_run_dir(None, kept[0].name)
    assert (target.stat().st_mode & 0o777) == (0o777 & ~_umask())  # not mkdtemp's private 0700


def test_a_failed_final_rename_leaves_the_old_model_and_no_staging(tmp_path, monkeypatch):
    dest = tmp_path / "pretrained"
    _publish(fake_run(tmp_path / "old", b"old weights"), dest)
    rename = Path.rename

    def failing(self, target):
        if ".staging" in self.name:
            raise OSError("disk gone")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(OSError, match="disk gone"):
        _publish(fake_run(tmp_path / "new", b"new weights"), dest)
    assert (dest / "m" / "model.pt").read_bytes() == b"old weights"
    assert [p.name for p in dest.iterdir()] == ["m"]  # old one back in place, staging removed


def test_a_failure_while_staging_leaves_the_old_model_and_no_staging(tmp_path, monkeypatch):
    dest = tmp_path / "pretrained"
    _publish(fake_run(tmp_path / "old", b"old weights"), dest)

    def failing(path, text):
        raise OSError("disk full")

    monkeypatch.setattr(publish, "atomic_write_text", failing)
    with pytest.raises(OSError, match="disk full"):
        _publish(fake_run(tmp_path / "new", b"new weights"), dest)
    assert (dest / "m" / "model.pt").read_bytes() == b"old weights"
    assert [p.name for p in dest.iterdir()] == ["m"]


def test_a_foreign_staging_folder_is_not_deleted(tmp_path):
    dest = tmp_path / "pretrained"
    # another publish's staging folder (today's fixed name, and one of the new per-process ones)
    for name in (".m.staging", ".m.staging-1-abcdefgh"):
        (dest / name).mkdir(parents=True)
        (dest / name / "model.pt").write_bytes(b"someone else's")
    target = _publish(fake_run(tmp_path / "run"), dest)
    assert (target / "model.pt").read_bytes() == b"weights"
    for name in (".m.staging", ".m.staging-1-abcdefgh"):
        assert (dest / name / "model.pt").read_bytes() == b"someone else's"


# --------------------------------------------------------------------------- export


def test_an_export_failing_its_parity_check_leaves_no_model_onnx(tmp_path, monkeypatch):
    from ecgfusion.cli import inference as cli

    run = fake_run(tmp_path / "run")
    torch.manual_seed(0)
    model = create_model(
        "cnn_transformer_1d",
        n_classes=5,
        n_samples=187,
        sampling_rate=125.0,
        n_layers=1,
        channels=16,
        n_heads=2,
    )
    save_model(model, run / "model.pt")

    class Program:  # a stand-in for the dynamo exporter's result: the test needs no real export
        def save(self, path):
            Path(path).write_bytes(b"bad onnx")

    monkeypatch.setattr(torch.onnx, "export", lambda *args, **kwargs: Program())
    monkeypatch.setattr(
        onnx_export, "onnx_probabilities", lambda path, beats: torch.zeros(len(beats), 5)
    )
    with pytest.raises(DataError, match="differs from torch by .* \\(> 1e-4\\)"):
        cli.export(run, "onnx", None)
    assert not (run / "model.onnx").exists()
    assert not list(run.glob(".*.tmp"))
    # an earlier export is left as it was
    (run / "model.onnx").write_bytes(b"good onnx")
    with pytest.raises(DataError, match="differs from torch"):
        cli.export(run, "onnx", None)
    assert (run / "model.onnx").read_bytes() == b"good onnx"
    assert not list(run.glob(".*.tmp"))


# --------------------------------------------------------------------------- temporaries


def test_atomic_path_temporaries_carry_the_pid(tmp_path):
    with atomic_path(tmp_path / "r.md") as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(f".r.md.ecgf-{os.getpid()}-") and tmp.name.endswith(".tmp")
        tmp.write_text("x")
    assert (tmp_path / "r.md").read_text() == "x"


def test_only_temporaries_of_dead_processes_are_swept(tmp_path):
    dead = _dead_pid()
    stale = tmp_path / f".model.pt.ecgf-{dead}-abc123_x.tmp"
    nested = tmp_path / "seed_0" / "checkpoints" / f".last.ckpt.ecgf-{dead}-zz9.tmp"
    live = tmp_path / f".model.pt.ecgf-{os.getpid()}-abc123_x.tmp"
    users = [tmp_path / "foo.tmp", tmp_path / f".foo.{dead}.tmp", tmp_path / ".foo.abc.tmp"]
    nested.parent.mkdir(parents=True)
    for path in (stale, nested, live, *users):
        path.write_bytes(b"x")
    assert sweep_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists() and nested.exists() and live.exists()
    assert all(p.exists() for p in users)
    assert sweep_stale_temporaries(tmp_path, depth=1) == []  # checkpoints/ is two levels down
    assert sweep_stale_temporaries(tmp_path, depth=2) == [nested]
    assert live.exists() and all(p.exists() for p in users)
    assert sweep_stale_temporaries(tmp_path / "absent") == []


def test_preparing_the_cache_sweeps_a_killed_preparation(tmp_path, monkeypatch):
    import dataclasses

    from ecgfusion.data import cache

    (tmp_path / "cache").mkdir()
    (tmp_path / "db").mkdir()
    dead = _dead_pid()
    stale = tmp_path / "cache" / f".mitdb-kachuee-x.parquet.ecgf-{dead}-abc.tmp"
    elsewhere = tmp_path / f".mitdb-kachuee-x.parquet.ecgf-{dead}-abc.tmp"
    for path in (stale, elsewhere):
        path.write_bytes(b"half a parquet")

    # the sweep comes before the beats are cut: no need to cut them here
    spec = dataclasses.replace(cache.get_beat_dataset("mitdb"), build=_stop)
    monkeypatch.setattr(cache, "get_beat_dataset", lambda name: spec)
    monkeypatch.setattr(cache, "database_dir", lambda *args: tmp_path / "db")
    with pytest.raises(Stop):
        cache.prepare_beats("mitdb", "kachuee", cache_dir=tmp_path / "cache")
    assert not stale.exists() and elsewhere.exists()


def test_training_sweeps_its_run_folder_first(tmp_path, monkeypatch):
    from ecgfusion.training import trainer

    run = fake_run(tmp_path / "run")
    stale = run / "checkpoints" / f".last.ckpt.ecgf-{_dead_pid()}-abc.tmp"
    stale.parent.mkdir()
    stale.write_bytes(b"half a checkpoint")
    monkeypatch.setattr(trainer, "train_run", _stop)
    with pytest.raises(Stop):
        trainer.train(load_config(run / "config.yaml"), run, resume=True)
    assert not stale.exists() and (run / "model.pt").exists()


def test_reproduce_sweeps_its_results_and_runs_folders_first(tmp_path, monkeypatch):
    from ecgfusion.experiments import reproduce

    dead = _dead_pid()
    stale = [
        tmp_path / "results/quick/mitdb-beat-random/figures" / f".a.png.ecgf-{dead}-a.tmp",
        tmp_path
        / "runs/quick/mitdb-beat-random/seed_0/cnn_2d/checkpoints"
        / f".last.ckpt.ecgf-{dead}-b.tmp",
    ]
    for path in stale:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
    logged: list[str] = []
    monkeypatch.setattr(reproduce, "reproduce_one", _stop)
    with pytest.raises(Stop):
        reproduce.reproduce(out=tmp_path / "results", runs=tmp_path / "runs", log=logged.append)
    assert not any(p.exists() for p in stale) and len(logged) == 2


def test_a_figure_copy_that_fails_leaves_no_half_copied_png(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from ecgfusion.experiments import reproduce_results

    run = tmp_path / "run"
    run.mkdir()
    (run / "confusion_matrix.png").write_bytes(b"\x89PNG" + b"x" * 1000)
    result = SimpleNamespace(
        stage=SimpleNamespace(key="cnn_2d"),
        runs=[{"figures": ["confusion_matrix.png"]}],
        run_dirs=[run],
    )

    def half_copy(src, dst, **kwargs):
        Path(dst).write_bytes(Path(src).read_bytes()[:10])
        raise OSError("disk full")

    monkeypatch.setattr(reproduce_results.shutil, "copyfile", half_copy)
    with pytest.raises(OSError, match="disk full"):
        reproduce_results._copy_figures(tmp_path / "out", [result])
    assert list((tmp_path / "out" / "figures").iterdir()) == []
