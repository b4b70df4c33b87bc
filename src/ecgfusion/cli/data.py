"""`ecgfusion data …`: prepare, verify and split the PhysioNet databases."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Annotated

import typer

from ecgfusion.cli.common import CacheDir, DataRoot, class_table, console, split_records

data_app = typer.Typer(
    help="Prepare, verify and split the PhysioNet databases.", no_args_is_help=True
)

Records = Annotated[
    list[str] | None,
    typer.Option("--records", help="Only these records (e.g. --records 100,101)."),
]
Method = Annotated[str, typer.Option("--method", help="Beat segmenter: kachuee or centered.")]


@data_app.command("prepare")
def prepare(
    dataset: Annotated[str, typer.Argument(help="Beat dataset, e.g. mitdb.")],
    method: Method = "kachuee",
    records: Records = None,
    data_root: DataRoot = None,
    cache_dir: CacheDir = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if cached.")] = False,
    sampling_rate: Annotated[
        int, typer.Option("--sampling-rate", help="ptbxl only: 100 (records100) or 500 Hz.")
    ] = 100,
) -> None:
    """Cut the beats of a database into the Parquet cache and print the class table.

    `ptbxl` prepares the record-level PTB-XL set (12 leads, metadata) of the multimodal model.
    """
    from ecgfusion.data.cache import prepare_beats

    start = time.perf_counter()
    if dataset == "ptbxl":
        _prepare_ptbxl_records(data_root, cache_dir, sampling_rate, force, start)
        return
    beats, path, reused = prepare_beats(
        dataset, method, split_records(records), data_root, cache_dir, progress=True, force=force
    )
    seconds = time.perf_counter() - start
    n_records = len(set(beats.record.tolist()))
    console.print(
        class_table(
            f"{dataset} beats ({method}, {n_records} records, {beats.n_samples} samples at "
            f"{beats.fs:g} Hz)",
            {"all": beats.class_counts()},
            beats.class_names,
        )
    )
    meta = beats.meta
    if meta.get("unmapped_symbols"):
        console.print(
            f"beat symbols outside the AAMI map (not in the set): {meta['unmapped_symbols']}"
        )
    if meta.get("flat_dropped"):
        console.print(f"flat beats dropped (no amplitude range): {meta['flat_dropped']}")
    other_leads = {
        r: v["lead"] for r, v in meta.get("records", {}).items() if v.get("lead") != "MLII"
    }
    if dataset == "mitdb" and other_leads:
        console.print(f"records without MLII, first lead used instead: {other_leads}")
    if dataset == "ptbxl-beats":
        from ecgfusion.data.ptbxl import ptbxl_beats_table

        console.print("\n".join(meta.get("report", [])), markup=False)
        console.print(ptbxl_beats_table(beats), markup=False)
    console.print(f"{'reused' if reused else 'wrote'} {path} in {seconds:.1f} s")


def _prepare_ptbxl_records(data_root, cache_dir, sampling_rate, force, start) -> None:
    from ecgfusion.data.ptbxl import prepare_ptbxl_records

    records, path, report = prepare_ptbxl_records(
        data_root, cache_dir, sampling_rate=sampling_rate, force=force, progress=True
    )
    console.print(report, markup=False)
    console.print(f"{len(records.ecg_id)} records -> {path} in {time.perf_counter() - start:.1f} s")


@data_app.command("verify")
def verify(
    database: Annotated[str, typer.Argument(help="Database folder key, e.g. mitdb.")],
    data_root: DataRoot = None,
) -> None:
    """Check every file of a database against its SHA256SUMS.txt."""
    from ecgfusion.data.checksums import verify_checksums
    from ecgfusion.data.root import database_dir

    db_dir = database_dir(database, data_root)
    report = verify_checksums(db_dir)
    console.print(f"{db_dir}: {report.ok}/{report.checked} files match SHA256SUMS")
    for name in report.missing:
        console.print(f"missing: {name}")
    for name in report.mismatched:
        console.print(f"checksum mismatch: {name}")
    if not report.passed:
        raise typer.Exit(1)


@data_app.command("split")
def split(
    dataset: Annotated[str, typer.Argument(help="Beat dataset, e.g. mitdb.")],
    protocol: Annotated[
        str,
        typer.Option(help="beat-random, patient-disjoint, inter-patient or strat-fold."),
    ] = "beat-random",
    seed: Annotated[int, typer.Option(min=0, help="Seed of the split.")] = 0,
    method: Method = "kachuee",
    rebalance: Annotated[
        str | None, typer.Option(help="Re-balance the training part: 'reduced'.")
    ] = None,
    records: Records = None,
    data_root: DataRoot = None,
    cache_dir: CacheDir = None,
) -> None:
    """Print per-part class counts of a split protocol (and its leakage warnings)."""
    from ecgfusion.data.cache import load_beats
    from ecgfusion.data.splits import KnownPatientOverlapWarning, make_split

    beats = load_beats(dataset, method, split_records(records), data_root, cache_dir, progress=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KnownPatientOverlapWarning)  # printed below instead
        result = make_split(beats, protocol, seed, rebalance)
    console.print(
        class_table(f"{dataset} — {result.label}, seed {seed}", result.counts(), beats.class_names)
    )
    for name, idx in result.parts().items():
        records_in = sorted(set(beats.record[idx].tolist()))
        if protocol != "beat-random":
            console.print(f"{name} records ({len(records_in)}): {' '.join(records_in)}")
    if result.rebalance:
        console.print(f"training part re-balanced: {result.rebalance}")
    for message in result.warnings:
        console.print(f"[yellow]warning[/yellow]: {message}")


@data_app.command("kaggle")
def kaggle(
    csv: Annotated[list[Path], typer.Argument(help="Kaggle heartbeat CSV file(s).")],
) -> None:
    """Read Kaggle heartbeat CSVs (mitbih_*.csv, ptbdb_*.csv) and print their class tables."""
    from ecgfusion.data.kaggle import read_kaggle_csv

    for path in csv:
        beats = read_kaggle_csv(path)
        console.print(
            class_table(
                f"{path.name} ({len(beats)} beats, {beats.n_samples} samples; intra-patient only: "
                "no patient ids)",
                {"all": beats.class_counts()},
                beats.class_names,
            )
        )


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
