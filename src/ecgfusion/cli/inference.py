"""`ecgfusion predict | score`: label the beats of a real recording and score them (EC57 style)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ecgfusion.cli.common import console, positive_finite, writable_path
from ecgfusion.errors import ConfigError, DataError


def _window(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        a, b = (float(v) for v in text.split(":"))
    except ValueError:
        raise DataError(f"--window {text!r}: expected START:END in seconds, e.g. 120:150") from None
    if not 0 <= a < b:
        raise DataError(f"--window {text!r}: START must be >= 0 and below END")
    return a, b


def predict(
    records: Annotated[
        list[Path],
        typer.Argument(help="WFDB record(s) (.hea or no extension), .csv or .npy files."),
    ],
    model: Annotated[
        Path | None, typer.Option("--model", help="Run folder of `ecgfusion train`.")
    ] = None,
    pretrained: Annotated[
        str | None, typer.Option(help="Name of a shipped pretrained model.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("predictions"),
    lead: Annotated[str | None, typer.Option(help="Lead name (default MLII, then II).")] = None,
    fs: Annotated[
        float | None,
        typer.Option(
            "--fs", help="Sampling rate of a .csv/.npy file.", callback=positive_finite("360")
        ),
    ] = None,
    window: Annotated[str | None, typer.Option(help="Strip window START:END in seconds.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Beats per forward pass.")] = 256,
    precision: Annotated[
        str,
        typer.Option(help="auto (bf16 where the CPU has it natively), 32 or bf16."),
    ] = "auto",
    detector: Annotated[
        str | None,
        typer.Option(
            help="R-peak detector by name (default: the one the model card names; "
            "see docs/detection.md), e.g. gqrs-125-deviation."
        ),
    ] = None,
) -> None:
    """Detect, cut and classify every beat of a recording; write .ecgf, CSV, summary and strip.

    Several records share one loaded model; each record's outputs are rendered in full before
    any of its files is written.
    """
    import time

    from ecgfusion.inference.loading import load_predictor
    from ecgfusion.inference.predict import predict_recording, write_outputs
    from ecgfusion.inference.recording import read_recording
    from ecgfusion.runtime import use_bf16

    strip = _window(window)
    writable_path(out)
    bf16 = use_bf16(precision)
    predictor = load_predictor(model, pretrained)
    if detector is not None:
        predictor = _with_detector(predictor, detector)
    for record in records:
        start = time.perf_counter()
        recording = read_recording(record, lead, fs)
        prediction = predict_recording(recording, predictor, batch_size, progress=True, bf16=bf16)
        written = write_outputs(prediction, predictor, out, strip)
        summary = prediction.summary(predictor)
        for warning in prediction.warnings:
            console.print(f"[bold red]warning[/bold red]: {warning}")
        counts = "  ".join(f"{c} {k}" for c, k in summary["counts"].items())
        console.print(
            f"record {recording.name}: {summary['beats']} beats ({counts}); mean HR "
            f"{summary['mean_heart_rate_bpm']} bpm; "
            f"ectopic burden {summary['ectopic_burden_percent']} % "
            f"({time.perf_counter() - start:.1f} s)"
        )
        console.print(f"wrote {', '.join(str(p) for p in written.values())}")


def _with_detector(predictor: Any, name: str) -> Any:
    """The predictor served with detector ``name``; a warning when its training beats were cut
    at peaks of another detector (then every beat it sees shifts)."""
    import dataclasses

    from ecgfusion.data.rpeaks import DATASET_DETECTORS, get_detector

    try:
        settings = get_detector(name)
    except DataError as exc:
        raise ConfigError(f"--detector: {exc}") from None
    if settings.confirm_below is not None:
        raise ConfigError(f"--detector {name} needs two leads; predict reads one lead")
    cut_with = DATASET_DETECTORS.get(predictor.dataset)
    if cut_with is not None and cut_with != name:
        console.print(
            f"[bold red]warning[/bold red]: this model's {predictor.dataset} beats were cut at "
            f"{cut_with} peaks; serving it with {name} shifts the beats it sees"
        )
    return dataclasses.replace(predictor, detector=name)


def score(
    pred: Annotated[
        Path | None, typer.Argument(help="Predicted annotation file, e.g. OUT/100.ecgf.")
    ] = None,
    ref: Annotated[
        Path | None, typer.Argument(help="Reference annotation file, e.g. mitdb/100.atr.")
    ] = None,
    records: Annotated[
        list[str] | None, typer.Option(help="Score these records (with --pred-dir/--ref-dir).")
    ] = None,
    pred_dir: Annotated[Path | None, typer.Option(help="Folder of predicted annotations.")] = None,
    ref_dir: Annotated[
        Path | None, typer.Option(help="Folder of reference annotations (default: mitdb).")
    ] = None,
    pred_ext: Annotated[str, typer.Option(help="Extension of the predictions.")] = "ecgf",
    ref_ext: Annotated[str, typer.Option(help="Extension of the references.")] = "atr",
    out: Annotated[
        Path | None, typer.Option(help="Write the table as markdown + JSON here.")
    ] = None,
) -> None:
    """Beat-by-beat comparison (150 ms window): QRS and per-class Se / +P, gross and average."""
    import json

    from ecgfusion.cli.common import split_records
    from ecgfusion.data.root import database_dir
    from ecgfusion.inference.score import format_table, read_annotations, score_record, score_table
    from ecgfusion.io import atomic_write_text

    if out is not None:
        writable_path(out.with_suffix(".md"), "--out", folder=False)
    if records:
        if pred_dir is None:
            raise DataError("--records needs --pred-dir (the --out folder of `ecgfusion predict`)")
        ref_root = ref_dir or database_dir("mitdb")
        pairs = [
            (pred_dir / f"{r}.{pred_ext}", ref_root / f"{r}.{ref_ext}")
            for r in split_records(records)
        ]
    elif pred is not None and ref is not None:
        pairs = [(pred, ref)]
    else:
        raise DataError("give PRED REF, or --records R... with --pred-dir (and --ref-dir)")
    scores = [score_record(read_annotations(p), read_annotations(r)) for p, r in pairs]
    rows = score_table(scores)
    table = format_table(rows)
    console.print(table, markup=False)
    if out is not None:
        atomic_write_text(out.with_suffix(".md"), table + "\n")
        atomic_write_text(out.with_suffix(".json"), json.dumps(rows, indent=2))
        console.print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


def export(
    run_dir: Annotated[Path, typer.Argument(help="Run folder of `ecgfusion train`.")],
    format: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    out: Annotated[
        Path | None, typer.Option(help="Output file (default RUN_DIR/model.onnx).")
    ] = None,
) -> None:
    """Export a trained beat model (spectrogram included) and check it against PyTorch."""
    from ecgfusion.inference.export import export_checked
    from ecgfusion.inference.loading import resolve_run_dir
    from ecgfusion.models import load_model

    if format != "onnx":
        raise DataError(f"--format {format!r}: only onnx is supported")
    path = resolve_run_dir(run_dir, None)
    model = load_model(path / "model.pt")
    # checked before it takes the target's place: a failing export leaves no model.onnx behind
    target, diff = export_checked(model, out or path / "model.onnx", n_beats=64)
    console.print(f"wrote {target}; max |onnxruntime - torch| = {diff:.2e} on 64 beats")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
    app.command("score")(score)
    app.command("export")(export)
