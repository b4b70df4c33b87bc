"""MIT-BIH inter-patient (DS1 -> DS2) per class, next to the published inter-patient methods and
issue 15's targets: the table a clinician reads (N, S, V, F sensitivity and +P per model)."""

from __future__ import annotations

from ecgfusion.evaluation.report import mean_of_known
from ecgfusion.experiments.published import INTER_PATIENT_ANCHORS, INTER_PATIENT_TARGETS
from ecgfusion.experiments.stages import STAGES
from ecgfusion.experiments.tables import dig, markdown_table

CLASSES = ("N", "S", "V", "F")
#: (column, key in a row's values): accuracy, Se and +P of each class, F1 of S and V, macro-F1.
COLUMNS = (
    [("accuracy", "accuracy")]
    + [(f"{c} {k}", f"{c}_{key}") for c in CLASSES for k, key in (("Se", "se"), ("+P", "ppv"))]
    + [("S F1", "S_f1"), ("V F1", "V_f1"), ("macro-F1", "macro_f1")]
)


def _stage_values(metrics: list[dict]) -> dict[str, list[float | None]]:
    """Percent values per seed of one stage, keyed as COLUMNS."""
    out: dict[str, list[float | None]] = {key: [] for _, key in COLUMNS}
    for m in metrics:
        for _, key in COLUMNS:
            if "_" in key and key[0] in CLASSES:
                cls, what = key.split("_")
                field = {"se": "sensitivity", "ppv": "ppv", "f1": "f1"}[what]
                value = dig(m, ("per_class", cls, field))
            else:
                value = dig(m, (key,))
            out[key].append(None if value is None else 100.0 * float(value))
    return out


def _cell(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "–"
    mean = sum(known) / len(known)
    if len(known) == 1:
        return f"{mean:.1f}"
    spread = (sum((v - mean) ** 2 for v in known) / (len(known) - 1)) ** 0.5
    return f"{mean:.1f} ± {spread:.1f}"


def inter_patient_section(result: dict) -> list[str]:
    """Rows for every stage of a mitdb inter-patient results.json, then the anchors, then the
    targets met or missed by the best stage (by mean accuracy)."""
    headers = ["model"] + [name for name, _ in COLUMNS]
    rows, means = [], {}
    for stage in STAGES:
        entry = result["stages"].get(stage.key)
        if entry is None:
            continue
        values = _stage_values(entry.get("metrics", []))
        means[stage.key] = {k: mean_of_known(v) for k, v in values.items()}
        rows.append([stage.title] + [_cell(values[key]) for _, key in COLUMNS])
    for name, published in INTER_PATIENT_ANCHORS:
        rows.append(
            [f"*{name}*"]
            + [f"{published[key]:.1f}" if key in published else "–" for _, key in COLUMNS]
        )
    seeds = len(result["context"].get("seeds", []))
    lines = [
        f"Percent on DS2 ({seeds} seed(s): mean ± std). Published rows in italics (only the "
        "numbers issue 15 quotes; '–' where not quoted).",
        "",
        markdown_table(headers, rows),
    ]
    if means:
        best = max(means, key=lambda k: means[k]["accuracy"] or 0.0)
        checks = []
        for key, goal in INTER_PATIENT_TARGETS.items():
            value = means[best].get(key)
            met = value is not None and value >= goal
            shown = "–" if value is None else f"{value:.1f}"
            checks.append(f"{key} {shown} (≥ {goal:g}: {'met' if met else '**not met**'})")
        title = result["stages"][best]["title"]
        lines += ["", f"Issue 15's DS2 targets, for the most accurate model ({title}): "]
        lines[-1] += "; ".join(checks) + "."
    return lines
