"""Numbers published by the original paper and by the student reproduction, for side-by-side tables.

Only the numbers our sources state are here (hybrid late fusion); a missing entry is shown as
"–", never guessed. Scale: fractions (the paper reports percent; converted here).
"""

from __future__ import annotations

#: Vindas et al. (MLHC 2022), hybrid CNN-Transformer (late fusion), beat-random protocol.
ORIGINAL = {
    ("mitdb", "late_fusion"): {"mcc": 0.9463, "macro_f1": 0.9128, "accuracy": 0.9837},
    ("ptbxl-beats", "late_fusion"): {"mcc": 0.9929, "macro_f1": 0.9965, "accuracy": 0.9971},
}

#: The student reproduction: MIT-BIH on its *reduced* (re-balanced) set, PTB on the Kaggle PTB CSVs.
REPRODUCTION = {
    ("mitdb", "late_fusion"): {"mcc": 0.8412, "macro_f1": 0.9494, "accuracy": 0.9435},
    ("ptbxl-beats", "late_fusion"): {"mcc": 0.9865, "macro_f1": 0.9946, "accuracy": 0.9946},
}

NOTES = {
    "mitdb": "original: full Kaggle MIT-BIH set, beat-random; reproduction: its reduced set "
    "(every class down-sampled), beat-random",
    "ptbxl-beats": "original and reproduction: Kaggle PTB beat CSVs (PTB Diagnostic, not PTB-XL); "
    "ours: beats cut from PTB-XL ecg_id 1-1999, so the comparison is of the task, not the data",
}

#: Published MIT-BIH inter-patient results (de Chazal DS1 -> DS2), the anchors issue 15 names, in
#: percent as published. Only the numbers the issue quotes are here; "–" elsewhere.
INTER_PATIENT_ANCHORS: tuple[tuple[str, dict[str, float]], ...] = (
    (
        "de Chazal et al. 2004 (LDA, morphology + RR)",
        {"S_se": 75.9, "S_ppv": 38.5, "V_se": 77.7, "V_ppv": 81.9},
    ),
    ("Mar et al. 2011", {"accuracy": 89.9}),
    ("Mondéjar-Guerra et al. 2019 (SVM ensemble, RR + morphology)", {"accuracy": 94.5}),
    ("Niu et al. 2020", {"accuracy": 96.4, "S_f1": 76.6, "V_f1": 89.7}),
)

#: Issue 15's targets for DS2 at beat level (mean over seeds), in percent.
INTER_PATIENT_TARGETS = {"accuracy": 95.0, "V_se": 92.0, "V_ppv": 92.0, "S_se": 80.0, "S_ppv": 60.0}
