"""The results folder of one `ecgfusion reproduce` dataset × protocol: tables, figures, README.

Given the trained stages' metrics (:class:`StageResult`, one per stage, a metrics.json per seed),
this module writes what a reader of the reproduction opens: ``experiment1.md`` / ``.csv`` and
``experiment2.md`` / ``.csv`` (our metrics, mean ± std over seeds, beside the paper's and the
earlier reproduction's published numbers), the train / test time tables, the stages' figures
under ``figures/``, a README of the run's context, and ``results.json``. It trains nothing;
:mod:`ecgfusion.experiments.reproduce` runs the stages and calls :func:`write_results`.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ecgfusion.experiments.published import NOTES, ORIGINAL, REPRODUCTION
from ecgfusion.experiments.stages import Stage
from ecgfusion.experiments.tables import (
    dig,
    joined_ints,
    markdown_table,
    mean_std,
    published_value,
)
from ecgfusion.io import atomic_path, atomic_write_text


@dataclass
class StageResult:
    stage: Stage
    runs: list[dict]  # metrics.json of each seed
    run_dirs: list[Path]

    def values(self, *path: str) -> list[float | None]:
        return [dig(run, path) for run in self.runs]


def _metric_table(results: list[StageResult], dataset: str) -> tuple[list[str], list[list[str]]]:
    headers = ["model", "MCC", "macro-F1", "accuracy"]
    if dataset == "mitdb":
        headers += ["SVEB Se", "SVEB +P", "VEB Se", "VEB +P"]
    headers += ["paper MCC", "paper F1", "paper acc", "repro. MCC", "repro. F1", "repro. acc"]
    rows = []
    for r in results:
        row = [r.stage.title] + [
            mean_std(r.values("metrics", k)) for k in ("mcc", "macro_f1", "accuracy")
        ]
        if dataset == "mitdb":
            row += [
                mean_std(r.values("metrics", "aami", k))
                for k in ("sveb_sensitivity", "sveb_ppv", "veb_sensitivity", "veb_ppv")
            ]
        row += [
            published_value(ORIGINAL, dataset, r.stage.key, k)
            for k in ("mcc", "macro_f1", "accuracy")
        ]
        row += [
            published_value(REPRODUCTION, dataset, r.stage.key, k)
            for k in ("mcc", "macro_f1", "accuracy")
        ]
        rows.append(row)
    return headers, rows


def _time_table(results: list[StageResult]) -> tuple[list[str], list[list[str]]]:
    headers = ["model", "epochs", "train time (s)", "test time (s)", "test beats/s", "device"]
    rows = []
    for r in results:
        # a later fusion stage on the same frozen backbones reuses their test outputs
        reused = " (head only)" if any(r.values("timing", "test_backbones_reused")) else ""
        rows.append(
            [
                r.stage.title,
                joined_ints(r.values("timing", "epochs_trained")),
                mean_std(r.values("timing", "train_seconds"), 1),
                mean_std(r.values("timing", "test_inference_seconds"), 1) + reused,
                mean_std(r.values("timing", "test_samples_per_second"), 0) + reused,
                str(r.runs[0]["timing"].get("device", "?")),
            ]
        )
    return headers, rows


def _csv(headers: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(headers)
    writer.writerows(rows)
    return buf.getvalue()


def write_tables(
    out: Path, results: list[StageResult], dataset: str, protocol_label: str, context: dict
) -> dict[str, Path]:
    """experiment1/2 .md and .csv (metrics + time tables) for one dataset × protocol."""
    written = {}
    for number, title in ((1, "single models vs hybrid"), (2, "fusion methods")):
        part = [r for r in results if number in r.stage.experiments]
        if not part:
            continue
        mh, mrows = _metric_table(part, dataset)
        th, trows = _time_table(part)
        md = "\n".join(
            [
                f"# Experiment {number}: {title} — {dataset}",
                "",
                f"Protocol: **{protocol_label}**. Preset `{context['preset']}`, seeds "
                f"{context['seeds']} (mean ± std over seeds when more than one). "
                f"Test part: {context['test_beats']} beats.",
                "",
                markdown_table(mh, mrows),
                "",
                f"Published numbers: {NOTES[dataset]}. '–' = not given in our sources.",
                "",
                "## Train and test time",
                "",
                markdown_table(th, trows),
                "",
                f"Command: `{context['command']}`",
                "",
            ]
        )
        written[f"experiment{number}.md"] = atomic_write_text(out / f"experiment{number}.md", md)
        written[f"experiment{number}.csv"] = atomic_write_text(
            out / f"experiment{number}.csv", _csv(mh, mrows)
        )
        written[f"experiment{number}_time.csv"] = atomic_write_text(
            out / f"experiment{number}_time.csv", _csv(th, trows)
        )
    return written


def _copy_figures(out: Path, results: list[StageResult]) -> list[str]:
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    names = []
    for r in results:
        run_dir = r.run_dirs[0]
        for fig in r.runs[0].get("figures", []):
            src = run_dir / fig
            if src.is_file():
                name = f"{r.stage.key}_{fig}"
                with atomic_path(figures / name) as tmp:  # never a half-copied PNG
                    shutil.copyfile(src, tmp)
                names.append(name)
    return names


def _folder_readme(out: Path, context: dict, figures: list[str]) -> Path:
    lines = [
        f"# Reproduction: {context['dataset']}, {context['protocol_label']}",
        "",
        f"- dataset: `{context['dataset']}` ({context['beats']} beats, {context['n_samples']} "
        "samples at 125 Hz)",
        f"- protocol: {context['protocol_label']}",
        f"- preset: `{context['preset']}` — {context['preset_description']}",
        f"- seeds: {context['seeds']}",
        f"- epochs per stage: {context['epochs']}",
        f"- hardware: {context['hardware']}",
        f"- training + test time of all stages: {context['stage_seconds']:.0f} s "
        f"(this invocation: {context['wall_seconds']:.0f} s; finished stages are reused, "
        "so a rerun is short)",
        f"- command: `{context['command']}`",
        "",
        "Tables: [experiment1.md](experiment1.md), [experiment2.md](experiment2.md). Run folders "
        f"(configs, logs, checkpoints, model.pt): `{context['runs']}`.",
        "",
        "## Figures",
        "",
    ]
    lines += [f"![{name}](figures/{name})" for name in figures]
    return atomic_write_text(out / "README.md", "\n".join(lines) + "\n")


def write_results(
    out: Path, results: list[StageResult], dataset: str, protocol_label: str, context: dict
) -> Path:
    """Every file of the results folder ``out``: the tables, figures, README and results.json."""
    write_tables(out, results, dataset, protocol_label, context)
    figures = _copy_figures(out, results)
    _folder_readme(out, context, figures)
    summary = {
        "context": context,
        "stages": {
            r.stage.key: {
                "title": r.stage.title,
                "runs": [str(d) for d in r.run_dirs],
                "metrics": [x["metrics"] for x in r.runs],
            }
            for r in results
        },
    }
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2, default=str))
    return out
