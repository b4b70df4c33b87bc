"""The run folder's metrics.json and report.md, and the mean ± std summary of repeated runs.

Every report states the split protocol first: an intra-patient beat-random score and an
inter-patient score of the same model differ by tens of points and must never be read as one.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ecgfusion.errors import DataError
from ecgfusion.evaluation.metrics import METRIC_NAMES, headline
from ecgfusion.io import atomic_write_text

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"


def format_value(value: Any, digits: int = 4) -> str:
    """A table cell: floats to ``digits`` decimals, None as n/a, anything else as str."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def mean_of_known(values: Sequence[float | None]) -> float | None:
    """The mean of the values that are not None; None when none is."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(format_value(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render_report(result: dict[str, Any]) -> str:
    """report.md of one run from the same dict that metrics.json holds."""
    data, metrics, timing = result["data"], result["metrics"], result.get("timing", {})
    names = metrics["class_names"]
    run = result.get("run", {})
    out = [
        f"# {run.get('model', 'model')} on {data['dataset']} — {data['split_label']}",
        "",
        f"- Split protocol: **{data['split_label']}** "
        f"({'intra-patient' if data['intra_patient'] else 'inter-patient'}; "
        f"`{data['protocol']}`, split seed {data.get('split_seed', 'n/a')})",
        f"- Dataset: `{data['dataset']}`, beat method `{data['method']}`, "
        f"{data.get('n_samples', '?')} samples per beat",
    ]
    labels = (("config", "Config"), ("seed", "Training seed"), ("best_epoch", "Best epoch"))
    for key, label in labels:
        if run.get(key) is not None:
            out.append(f"- {label}: `{run[key]}`")
    for warning in data.get("warnings", []):
        out.append(f"- Warning: {warning}")
    out += ["", "## Class counts per part", ""]
    parts = list(data["counts"])
    out.append(
        markdown_table(
            ["Class", *parts],
            [[c, *(data["counts"][p].get(c, 0) for p in parts)] for c in names]
            + [["total", *(sum(data["counts"][p].values()) for p in parts)]],
        )
    )
    flat = headline(metrics)
    out += ["", f"## Test metrics (n = {metrics['n']})", ""]
    out.append(markdown_table(["Metric", "Value"], [[METRIC_NAMES[k], v] for k, v in flat.items()]))
    out += ["", "## Per class", ""]
    out.append(
        markdown_table(
            ["Class", "Support", "Predicted", "Sensitivity", "PPV", "F1"],
            [
                [c, pc["support"], pc["predicted"], pc["sensitivity"], pc["ppv"], pc["f1"]]
                for c, pc in metrics["per_class"].items()
            ],
        )
    )
    out += ["", "## Confusion matrix (rows: true, columns: predicted)", ""]
    out.append(
        markdown_table(
            ["true \\ pred", *names],
            [[c, *row] for c, row in zip(names, metrics["confusion_matrix"], strict=True)],
        )
    )
    if timing:
        out += ["", "## Timing", ""]

        def one_decimal(key: str) -> str | None:
            return None if timing.get(key) is None else f"{timing[key]:,.1f}"

        rows = [
            ["Training (s)", one_decimal("train_seconds")],
            ["Epochs trained", timing.get("epochs_trained")],
            ["Test inference (s)", one_decimal("test_inference_seconds")],
            ["Test samples/s", one_decimal("test_samples_per_second")],
            ["Device", timing.get("device")],
            ["Torch threads", timing.get("torch_threads")],
        ]
        out.append(markdown_table(["What", "Value"], [r for r in rows if r[1] is not None]))
        if timing.get("resumed"):
            out.append("\nTraining was resumed; the training time counts the last session only.")
    figures = [f for f in result.get("figures", []) if f]
    if figures:
        out += ["", "## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures]
    return "\n".join(out) + "\n"


def write_report(run_dir: str | os.PathLike, result: dict[str, Any]) -> None:
    run_dir = Path(run_dir)
    atomic_write_text(run_dir / METRICS_FILE, json.dumps(result, indent=2) + "\n")
    atomic_write_text(run_dir / REPORT_FILE, render_report(result))


def read_metrics(run_dir: str | os.PathLike) -> dict[str, Any]:
    """A run's metrics.json; a missing, corrupt or truncated file is one DataError line."""
    path = Path(run_dir) / METRICS_FILE
    fix = (
        f"restore it, or delete it and run 'ecgfusion evaluate {Path(run_dir)}' to recompute the "
        "metrics from model.pt"
    )
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} not found; the run has not finished — train it first") from None
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror or exc}); {fix}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is corrupt or truncated ({exc}); {fix}") from None
    if not isinstance(result, dict) or not isinstance(result.get("metrics"), dict):
        raise DataError(f"{path} holds no 'metrics' object, it is not an ecgfusion result; {fix}")
    return result


def _mean_std(values: list[float]) -> dict[str, float]:
    mean = sum(values) / len(values)
    # Sample standard deviation (n - 1), as papers reporting mean ± std over seeds use.
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return {"mean": mean, "std": math.sqrt(var), "n": len(values)}


def summarise(
    results: dict[int, dict[str, Any]],
    headline_of: Callable[[dict[str, Any]], dict[str, float | None]] = headline,
) -> dict[str, Any]:
    """Mean ± std of each headline metric (``headline_of`` a run's metrics) over the runs of
    several seeds."""
    flats = {seed: headline_of(r["metrics"]) for seed, r in results.items()}
    keys = list(next(iter(flats.values())))
    first = next(iter(results.values()))
    summary: dict[str, Any] = {
        "seeds": list(results),
        "data": {k: first["data"].get(k) for k in ("dataset", "protocol", "split_label", "method")},
        "model": first.get("run", {}).get("model"),
        "per_seed": flats,
        "metrics": {},
    }
    for key in keys:
        values = [f[key] for f in flats.values() if f.get(key) is not None]
        if values:
            summary["metrics"][key] = _mean_std(values)
    return summary


def render_summary(summary: dict[str, Any], names: Mapping[str, str] = METRIC_NAMES) -> str:
    data = summary["data"]
    seeds = summary["seeds"]
    out = [
        f"# {summary.get('model')} on {data['dataset']} — {data['split_label']}",
        "",
        f"Mean ± sample std over {len(seeds)} seed(s): {', '.join(map(str, seeds))}.",
        "",
        markdown_table(
            ["Metric", "Mean ± std", *(f"seed {s}" for s in seeds)],
            [
                [
                    names[k],
                    f"{ms['mean']:.4f} ± {ms['std']:.4f}",
                    *(summary["per_seed"][s].get(k) for s in seeds),
                ]
                for k, ms in summary["metrics"].items()
            ],
        ),
    ]
    return "\n".join(out) + "\n"


def write_summary(
    run_dir: str | os.PathLike,
    results: dict[int, dict[str, Any]],
    headline_of: Callable[[dict[str, Any]], dict[str, float | None]] = headline,
    names: Mapping[str, str] = METRIC_NAMES,
) -> dict:
    """summary.json and summary.md of several seeds (``names``: display name of each key)."""
    summary = summarise(results, headline_of)
    run_dir = Path(run_dir)
    atomic_write_text(run_dir / SUMMARY_JSON, json.dumps(summary, indent=2) + "\n")
    atomic_write_text(run_dir / SUMMARY_MD, render_summary(summary, names))
    return summary
