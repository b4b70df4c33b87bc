"""The results of an `ecgfusion tune` study: trials.csv, trials.md, best.yaml and importance.png.

Everything here reads a study as it stands (finished, interrupted or still to be resumed) and
writes the study folder's result files: one row per trial, the best complete trial's config
(``ecgfusion train best.yaml``), and the fANOVA importance of the parameters that varied, as a
table and a plot. It trains nothing; the study itself is run by
:func:`ecgfusion.experiments.tune.tune`, which calls :func:`write_results` at its end.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ecgfusion.evaluation.report import markdown_table
from ecgfusion.experiments.search_space import SearchSpace, trial_config
from ecgfusion.io import atomic_path, atomic_write_text
from ecgfusion.training.config import RunConfig

TRIALS_CSV = "trials.csv"
TRIALS_MD = "trials.md"
BEST_FILE = "best.yaml"
IMPORTANCE_FILE = "importance.png"
#: The note on a trial a killed run left RUNNING, marked FAIL by the next run.
INTERRUPTED = "interrupted; marked FAIL on resume"


def _state(trial: FrozenTrial) -> str:
    return trial.state.name


def trial_seconds(trial: FrozenTrial) -> float | None:
    """Wall time of a trial; unknown (None) for one a killed run left behind."""
    duration = trial.duration
    if duration is None or trial.user_attrs.get("note") == INTERRUPTED:
        return None
    return round(duration.total_seconds(), 2)


def trial_rows(study: optuna.Study, space: SearchSpace) -> list[dict[str, Any]]:
    """One row per trial: number, state, value, each parameter, epochs, seconds."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {
            "trial": trial.number,
            "state": _state(trial),
            space.objective: trial.value,
        }
        for key in space.params:
            row[key] = trial.params.get(key)
        row["epochs"] = trial.user_attrs.get("epochs")
        row["seconds"] = trial_seconds(trial)
        rows.append(row)
    return rows


def format_cell(value: Any, column: str = "") -> str:
    """A table cell: 4 decimals (4 significant digits for small values), seconds to 0.1 s."""
    if value is None:
        return ""
    if isinstance(value, float):
        if column == "seconds":
            return f"{value:.1f}"
        small_or_large = value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4)
        return f"{value:.4g}" if small_or_large else f"{value:.4f}"
    return str(value)


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in columns})
    return out.getvalue()


def _markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    cells = [[format_cell(row[k], k) for k in columns] for row in rows]
    return markdown_table(columns, cells).splitlines()


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(complete, key=lambda t: t.value) if complete else None


def parameter_importance(
    study: optuna.Study, space: SearchSpace
) -> tuple[dict[str, float] | None, str]:
    """fANOVA importance of the parameters that vary among complete trials, and a note."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    varying = [k for k in space.params if len({repr(t.params.get(k)) for t in complete}) > 1]
    if len(complete) < 2 or not varying:
        return None, (
            f"no parameter importance: it needs at least 2 complete trials that differ in a "
            f"parameter ({len(complete)} complete, {len(varying)} parameter(s) varied)"
        )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=space.seed)
    try:
        importance = optuna.importance.get_param_importances(
            study, evaluator=evaluator, params=varying
        )
    except (RuntimeError, ValueError) as exc:
        return None, f"no parameter importance: {exc}"
    note = (
        f"fANOVA importance of the {len(varying)} varied parameter(s) over {len(complete)} "
        "complete trials (sums to 1; with few trials it is a rough guide)"
    )
    return {k: float(v) for k, v in importance.items()}, note


def plot_importance(importance: dict[str, float], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(importance)[::-1]  # most important on top
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(names) + 1.4))
    ax.barh(names, [importance[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance (fANOVA, sums to 1)")
    ax.set_xlim(0, max(1e-9, max(importance.values())) * 1.1)
    ax.set_title(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_results(
    study: optuna.Study, space: SearchSpace, base: RunConfig, run_dir: Path, commands: list[str]
) -> dict[str, Any]:
    """trials.csv, trials.md, best.yaml and importance.png from the study as it stands."""
    rows = trial_rows(study, space)
    columns = ["trial", "state", space.objective, *space.params, "epochs", "seconds"]
    atomic_write_text(run_dir / TRIALS_CSV, _csv_text(rows, columns))
    counts = {s.name: 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1

    best = best_trial(study)
    best_info = None
    if best is not None:
        config = trial_config(base, best.params, f"best trial {best.number}")
        header = (
            f"# Best trial {best.number} of the study in {run_dir} "
            f"({space.objective}={best.value:.4f} on the validation part).\n"
            f"# Train it: ecgfusion train {run_dir / BEST_FILE}\n"
        )
        atomic_write_text(run_dir / BEST_FILE, header + config.to_yaml())
        best_info = {"trial": best.number, "value": best.value, "params": dict(best.params)}

    importance, importance_note = parameter_importance(study, space)
    if importance is not None:
        title = f"{base.model.name}: parameter importance ({counts['COMPLETE']} complete trials)"
        plot_importance(importance, run_dir / IMPORTANCE_FILE, title)

    finished = counts["COMPLETE"] + counts["PRUNED"]
    lines = [
        f"# Study of {base.model.name}: {len(space.params)} parameter(s), {finished} finished "
        "trial(s)",
        "",
        f"Objective: `{space.objective}` on the validation part, maximised. The test part is "
        "never loaded by a study.",
        f"Trials: {counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
        f"{counts['FAIL']} failed (TPE sampler, seed {space.seed}; pruner {space.pruner.name}). "
        "A pruned trial's value is its last validation score before it was stopped.",
        "",
    ]
    if best_info is not None:
        shown = ", ".join(f"{k}={format_cell(v)}" for k, v in best_info["params"].items())
        lines += [
            f"Best: trial {best_info['trial']}, {space.objective} = {best_info['value']:.4f} "
            f"({shown}); its config is [{BEST_FILE}]({BEST_FILE}).",
            "",
        ]
    else:
        lines += ["No trial completed yet, so there is no best.yaml.", ""]
    lines += _markdown_table(rows, columns)
    lines += ["", "## Parameter importance", "", importance_note.rstrip(".") + "."]
    if importance is not None:
        lines += ["", "| parameter | importance |", "|---|---:|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in importance.items()]
        lines += ["", f"![parameter importance]({IMPORTANCE_FILE})"]
    lines += ["", "## Commands", "", "```", *commands, "```", ""]
    atomic_write_text(run_dir / TRIALS_MD, "\n".join(lines))
    files = [TRIALS_CSV, TRIALS_MD] + ([BEST_FILE] if best_info else [])
    files += [IMPORTANCE_FILE] if importance is not None else []
    return {
        "rows": rows,
        "columns": columns,
        "counts": counts,
        "best": best_info,
        "importance": importance,
        "importance_note": importance_note,
        "files": files,
    }
