"""One page that puts a preset's result folders side by side (written by `ecgfusion reproduce`).

Each `ecgfusion reproduce` run writes one folder per dataset x protocol; the questions the paper
leaves open need them next to each other: intra- vs inter-patient for the same models, SVEB/VEB
(what a clinician reads), frozen vs jointly trained backbones, and our numbers beside the published
ones. Everything here is read from the folders' results.json, so the page cannot drift from them.
"""

from __future__ import annotations

import json
from pathlib import Path

from ecgfusion.errors import DataError
from ecgfusion.evaluation.report import mean_of_known
from ecgfusion.experiments.inter_patient import inter_patient_section
from ecgfusion.experiments.published import ORIGINAL, REPRODUCTION
from ecgfusion.experiments.stages import PROTOCOLS, STAGES
from ecgfusion.experiments.tables import dig, markdown_table, mean_std, published_value
from ecgfusion.io import atomic_write_text

PAGE = "comparison.md"
DATASET_TITLES = {"mitdb": "MIT-BIH Arrhythmia (5 AAMI classes)", "ptbxl-beats": "PTB-XL beats"}
JOINT_PAIRS = (
    ("late_fusion", "late_fusion_joint"),
    ("intermediate_concat", "intermediate_concat_joint"),
)
TITLES = {s.key: s.title for s in STAGES}


def load_folders(preset_dir: Path) -> dict[tuple[str, str], dict]:
    """{(dataset, protocol): results.json} of every finished folder under ``preset_dir``."""
    found = {}
    for dataset in DATASET_TITLES:
        for protocol in PROTOCOLS:
            file = preset_dir / f"{dataset}-{protocol}" / "results.json"
            if file.is_file():
                try:
                    found[(dataset, protocol)] = json.loads(file.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise DataError(
                        f"{file} is corrupt or unreadable ({exc}); delete it and run "
                        "'ecgfusion reproduce' again: finished stages are reused"
                    ) from None
    return found


def _values(result: dict, stage: str, *path: str) -> list[float | None]:
    return [dig(m, path) for m in result["stages"].get(stage, {}).get("metrics", [])]


def _triple(result: dict | None, stage: str) -> str:
    if result is None or stage not in result["stages"]:
        return "–"
    return " / ".join(mean_std(_values(result, stage, k)) for k in ("mcc", "macro_f1", "accuracy"))


def _protocol_name(dataset: str, protocol: str, folders: dict) -> str:
    result = folders.get((dataset, protocol))
    return result["context"]["protocol_label"] if result else PROTOCOLS[protocol][dataset]


def _experiments(dataset: str, folders: dict) -> list[str]:
    protocols = [p for p in PROTOCOLS if (dataset, p) in folders]
    stages = [
        s.key for s in STAGES if any(s.key in folders[(dataset, p)]["stages"] for p in protocols)
    ]
    headers = ["model"] + [f"ours, {p}" for p in protocols]
    headers += ["original paper", "reproduction"]
    rows = []
    for stage in stages:
        row = [TITLES[stage]] + [_triple(folders[(dataset, p)], stage) for p in protocols]
        for table in (ORIGINAL, REPRODUCTION):
            row.append(
                " / ".join(
                    published_value(table, dataset, stage, k)
                    for k in ("mcc", "macro_f1", "accuracy")
                )
            )
        rows.append(row)
    lines = [
        "MCC / macro-F1 / accuracy on the test part (mean ± std when several seeds). Protocols: "
        + "; ".join(f"**{p}** = {_protocol_name(dataset, p, folders)}" for p in protocols)
        + ".",
        "",
        markdown_table(headers, rows),
    ]
    return lines


def _target(folders: dict, targets: dict[str, dict[str, float]]) -> list[str]:
    """The preset's targets (configs/presets/<name>.yaml) on MIT-BIH beat-random, mean of seeds."""
    result = folders.get(("mitdb", "beat-random"))
    if result is None or not targets:
        return []
    rows, met_all = [], True
    for stage, goals in targets.items():
        if stage not in result["stages"]:
            continue
        for key, goal in goals.items():
            value = mean_of_known(_values(result, stage, key))
            met = value is not None and value >= goal
            met_all &= met
            rows.append(
                [
                    result["stages"][stage]["title"],
                    key,
                    "–" if value is None else f"{value:.4f}",
                    f"≥ {goal}",
                    "met" if met else "**NOT met**",
                ]
            )
    if not rows:
        return []
    verdict = "all met" if met_all else "**not all met**"
    return [
        f"The preset's targets on MIT-BIH beat-random (mean over seeds): {verdict}.",
        "",
        markdown_table(["model", "metric", "ours", "target", ""], rows),
    ]


def _clinical(folders: dict) -> list[str]:
    protocols = [p for p in PROTOCOLS if ("mitdb", p) in folders]
    if not protocols:
        return []
    keys = ("sveb_sensitivity", "sveb_ppv", "veb_sensitivity", "veb_ppv")
    headers = ["model", "protocol", "SVEB Se", "SVEB +P", "VEB Se", "VEB +P", "macro-F1"]
    rows = []
    for stage in (s.key for s in STAGES):
        for p in protocols:
            result = folders[("mitdb", p)]
            if stage not in result["stages"]:
                continue
            rows.append(
                [TITLES[stage], p]
                + [mean_std(_values(result, stage, "aami", k)) for k in keys]
                + [mean_std(_values(result, stage, "macro_f1"))]
            )
    return [markdown_table(headers, rows)]


def _joint(folders: dict) -> list[str]:
    headers = ["dataset", "protocol", "fusion", "frozen backbones", "joint training", "Δ MCC"]
    rows = []
    for (dataset, protocol), result in folders.items():
        for frozen, joint in JOINT_PAIRS:
            if frozen not in result["stages"] or joint not in result["stages"]:
                continue
            a = mean_of_known(_values(result, frozen, "mcc"))
            b = mean_of_known(_values(result, joint, "mcc"))
            delta = "–" if a is None or b is None else f"{b - a:+.4f}"
            rows.append(
                [
                    dataset,
                    protocol,
                    TITLES[frozen],
                    _triple(result, frozen),
                    _triple(result, joint),
                    delta,
                ]
            )
    if not rows:
        return ["No jointly trained fusion in these folders (the `quick` preset leaves them out)."]
    return ["MCC / macro-F1 / accuracy.", "", markdown_table(headers, rows)]


def _runs(folders: dict) -> list[str]:
    # the recipe each folder ran with: a preset edited since shows up here as another text
    headers = ["folder", "recipe (the preset's description when it ran)", "command", "epochs"]
    headers += ["stage time (s)", "hardware"]
    rows = []
    for (dataset, protocol), result in folders.items():
        c = result["context"]
        rows.append(
            [
                f"[{dataset}-{protocol}]({dataset}-{protocol}/README.md)",
                " ".join(str(c.get("preset_description", "–")).split()),
                f"`{c['command']}`",
                c["epochs"],
                f"{c['stage_seconds']:.0f}",
                c["hardware"],
            ]
        )
    return [markdown_table(headers, rows)]


def comparison_page(preset_dir: Path) -> str | None:
    folders = load_folders(preset_dir)
    if not folders:
        return None
    preset = next(iter(folders.values()))["context"]["preset"]
    lines = [
        f"# `{preset}` preset: all datasets and protocols side by side",
        "",
        "Generated by `ecgfusion reproduce` from the results.json of each folder below; the "
        "published numbers are the original paper's and the student reproduction's (hybrid only: "
        "'–' where a source gives no number).",
        "",
    ]
    for dataset, title in DATASET_TITLES.items():
        if any(d == dataset for d, _ in folders):
            lines += (
                [f"## {title}: Experiments 1 and 2", ""] + _experiments(dataset, folders) + [""]
            )
    if target := _target(folders, _preset_targets(preset)):
        lines += ["## Target", ""] + target + [""]
    if clinical := _clinical(folders):
        lines += ["## MIT-BIH: SVEB and VEB, intra- vs inter-patient", ""] + clinical + [""]
    if ("mitdb", "inter-patient") in folders:
        section = inter_patient_section(folders[("mitdb", "inter-patient")])
        lines += ["## MIT-BIH inter-patient per class, next to published methods", ""]
        lines += section + [""]
    lines += ["## Frozen vs jointly trained backbones", ""] + _joint(folders) + [""]
    lines += ["## Runs", ""] + _runs(folders) + [""]
    return "\n".join(lines)


def _preset_targets(name: str) -> dict[str, dict[str, float]]:
    """Targets of the named shipped preset; none for a preset given by path or since removed."""
    from ecgfusion.errors import ConfigError
    from ecgfusion.experiments.presets import load_preset

    try:
        return load_preset(name).targets
    except ConfigError:
        return {}


def write_comparison(preset_dir: Path) -> Path | None:
    text = comparison_page(preset_dir)
    if text is None:
        return None
    path = preset_dir / PAGE
    atomic_write_text(path, text)
    return path
