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
