"""The inter-patient per-class table of the comparison page: means, spread, anchors, targets."""

from __future__ import annotations

from ecgfusion.experiments.inter_patient import inter_patient_section


def _metrics(acc: float, s_se: float) -> dict:
    per_class = {
        c: {"sensitivity": 0.9, "ppv": 0.95, "f1": 0.92} for c in ("N", "S", "V", "F", "Q")
    }
    per_class["S"] = {"sensitivity": s_se, "ppv": 0.5, "f1": None}
    return {"accuracy": acc, "macro_f1": 0.6, "per_class": per_class}


def test_rows_are_percent_means_with_sample_std_and_the_targets_name_the_best_model():
    result = {
        "context": {"seeds": [0, 1]},
        "stages": {
            "rhythm_mlp": {"title": "Rhythm", "metrics": [_metrics(0.9, 0.8), _metrics(0.92, 0.9)]},
            "late_fusion_rhythm": {"title": "Hybrid + rhythm", "metrics": [_metrics(0.96, 0.7)]},
        },
    }
    text = "\n".join(inter_patient_section(result))
    rhythm = next(line for line in text.splitlines() if line.startswith("| Rhythm"))
    cells = [c.strip() for c in rhythm.strip("|").split("|")]
    assert cells[1] == "91.0 ± 1.4"  # accuracy: mean 91, sample std sqrt(2)
    assert cells[4] == "85.0 ± 7.1" and cells[5] == "50.0 ± 0.0"  # S Se, S +P
    assert cells[10] == "–"  # S F1 unknown in both seeds
    assert "| *Niu et al. 2020* | 96.4 |" in text
    assert "most accurate model (Hybrid + rhythm)" in text
    assert "accuracy 96.0 (≥ 95: met)" in text and "S_se 70.0 (≥ 80: **not met**)" in text
