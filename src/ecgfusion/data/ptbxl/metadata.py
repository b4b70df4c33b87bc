"""PTB-XL metadata: ptbxl_database.csv and scp_statements.csv, checked and cleaned.

SCP codes are parsed without evaluating code, mapped to the diagnostic superclasses, ages
cleaned, and the strat-fold split checked for patients crossing parts (rules in the package
docstring).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ecgfusion.errors import DataError, LeakageError

METADATA_FILE = "ptbxl_database.csv"
STATEMENTS_FILE = "scp_statements.csv"
SUPERCLASSES: tuple[str, ...] = ("NORM", "MI", "STTC", "CD", "HYP")
FLAG_COLUMNS: tuple[str, ...] = (
    "baseline_drift",
    "static_noise",
    "burst_noise",
    "electrodes_problems",
    "extra_beats",
    "pacemaker",
)
FILENAME_COLUMN = {100: "filename_lr", 500: "filename_hr"}
REQUIRED_COLUMNS = ("ecg_id", "patient_id", "age", "sex", "scp_codes", "strat_fold")

AGE_CODE_OVER_89 = 300  # PTB-XL hides ages above 89 behind this code
AGE_CAP = 90.0
AGE_MAX_PLAUSIBLE = 120
#: Fixed (not data-derived) scalings keep the metadata vector identical for any subset or split.
AGE_CENTER, AGE_SCALE = 60.0, 20.0
HEIGHT_CENTER, HEIGHT_SCALE, HEIGHT_RANGE = 166.0, 10.0, (40.0, 250.0)
WEIGHT_CENTER, WEIGHT_SCALE, WEIGHT_RANGE = 70.0, 15.0, (2.0, 300.0)
#: Columns of PtbxlRecords.metadata. PTB-XL codes sex as 0 = male, 1 = female (Wagner et al.
#: 2020, Table 2); a missing or unknown value has both one-hot entries 0 and sex_missing 1.
META_FEATURES: tuple[str, ...] = (
    "age",
    "age_missing",
    "age_capped",
    "sex_male",
    "sex_female",
    "sex_missing",
    "height",
    "height_missing",
    "weight",
    "weight_missing",
)

TRAIN_FOLDS, VAL_FOLDS, TEST_FOLDS = tuple(range(1, 9)), (9,), (10,)
FOLD_PARTS = {"train": TRAIN_FOLDS, "val": VAL_FOLDS, "test": TEST_FOLDS}
MAX_SCP_TEXT = 10_000


def parse_scp_codes(text: object, where: str = "scp_codes") -> dict[str, float]:
    """A ``{code: likelihood}`` dict from its CSV text; never evaluates code."""
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: scp_codes is empty; expected a dict like {{'NORM': 100.0}}")
    if len(text) > MAX_SCP_TEXT:
        raise DataError(f"{where}: scp_codes is {len(text)} characters long; not a PTB-XL entry")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise DataError(
            f"{where}: scp_codes {text[:60]!r} is not a literal dict like {{'NORM': 100.0}}; "
            "re-download ptbxl_database.csv"
        ) from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
        for k, v in value.items()
    ):
        raise DataError(
            f"{where}: scp_codes {text[:60]!r} must map SCP codes to numeric likelihoods; "
            "re-download ptbxl_database.csv"
        )
    return {k: float(v) for k, v in value.items()}


def load_statements(db_dir: Path) -> dict[str, str]:
    """Diagnostic SCP code -> superclass, from scp_statements.csv."""
    path = Path(db_dir) / STATEMENTS_FILE
    if not path.is_file():
        raise DataError(
            f"{path} is missing; it maps SCP codes to the diagnostic superclasses — copy "
            f"scp_statements.csv from the PTB-XL release into {Path(db_dir)}"
        )
    try:
        table = pd.read_csv(path, index_col=0)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path} cannot be read ({exc}); re-download it") from None
    for column in ("diagnostic", "diagnostic_class"):
        if column not in table.columns:
            raise DataError(f"{path} has no {column!r} column; re-download scp_statements.csv")
    diagnostic = table[pd.to_numeric(table["diagnostic"], errors="coerce") == 1]
    bad = diagnostic[~diagnostic["diagnostic_class"].isin(SUPERCLASSES)]
    if len(bad):
        raise DataError(
            f"{path}: diagnostic statement {bad.index[0]!r} has diagnostic_class "
            f"{bad['diagnostic_class'].iloc[0]!r}, not one of {', '.join(SUPERCLASSES)}"
        )
    return {str(code): str(cls) for code, cls in diagnostic["diagnostic_class"].items()}


def superclasses_of(
    codes: dict[str, float], statements: dict[str, str], min_likelihood: float = 0.0
) -> tuple[str, ...]:
    """Superclasses (in SUPERCLASSES order) of the diagnostic codes with likelihood > min."""
    found = {statements[c] for c, lik in codes.items() if c in statements and lik > min_likelihood}
    return tuple(c for c in SUPERCLASSES if c in found)


def clean_age(age: object) -> tuple[float, bool, bool]:
    """(age, capped, missing): 300 -> 90 capped; NaN, < 0 or > 120 -> missing."""
    try:
        value = float(age)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan"), False, True
    if not np.isfinite(value) or value < 0:
        return float("nan"), False, True
    if value == AGE_CODE_OVER_89 or AGE_CAP <= value <= AGE_MAX_PLAUSIBLE:
        return AGE_CAP, True, False
    if value > AGE_MAX_PLAUSIBLE:
        return float("nan"), False, True
    return value, False, False


def _in_range(values: pd.Series, bounds: tuple[float, float]) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    return numeric.where((numeric >= bounds[0]) & (numeric <= bounds[1]))


def load_metadata(db_dir: Path, statements: dict[str, str] | None = None) -> pd.DataFrame:
    """ptbxl_database.csv, checked and cleaned; indexed by ecg_id.

    Adds ``age_capped``, ``age_missing``, ``sex_missing``, boolean recording flags (a free-text
    flag column is True when it holds any text) and ``superclasses``.
    """
    db_dir = Path(db_dir)
    path = db_dir / METADATA_FILE
    if not path.is_file():
        raise DataError(
            f"{path} is missing; it lists the PTB-XL records — point --data-root at a PTB-XL "
            "download that has ptbxl_database.csv"
        )
    if statements is None:
        statements = load_statements(db_dir)
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path} cannot be read ({exc}); re-download it") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if not any(c in df.columns for c in FILENAME_COLUMN.values()):
        missing.append("filename_lr")
    if missing:
        raise DataError(f"{path} has no column(s) {', '.join(missing)}; re-download it")
    ids = pd.to_numeric(df["ecg_id"], errors="coerce")
    if ids.isna().any() or (ids != ids.round()).any():
        row = int(np.flatnonzero((ids.isna() | (ids != ids.round())).to_numpy())[0])
        raise DataError(f"{path}: row {row + 2} has no integer ecg_id; re-download it")
    df["ecg_id"] = ids.astype(np.int64)
    dup = df["ecg_id"][df["ecg_id"].duplicated()]
    if len(dup):
        raise DataError(f"{path}: ecg_id {int(dup.iloc[0])} is listed twice; re-download it")

    folds = pd.to_numeric(df["strat_fold"], errors="coerce")
    bad = ~folds.isin(range(1, 11))
    if bad.any():
        first = df.loc[bad, "ecg_id"].iloc[0]
        raise DataError(
            f"{path}: ecg_id {first} has strat_fold {df.loc[bad, 'strat_fold'].iloc[0]!r}, "
            f"outside 1-10 ({int(bad.sum())} such rows); use the ptbxl_database.csv of the release"
        )
    df["strat_fold"] = folds.astype(np.int64)

    patients = pd.to_numeric(df["patient_id"], errors="coerce")
    if patients.isna().any():
        first = df.loc[patients.isna(), "ecg_id"].iloc[0]
        raise DataError(
            f"{path}: ecg_id {first} has no patient_id; patient-disjoint splits need it — "
            "re-download ptbxl_database.csv"
        )
    df["patient_id"] = patients.astype(np.int64)

    ages = [clean_age(a) for a in df["age"]]
    df["age"] = [a for a, _, _ in ages]
    df["age_capped"] = [c for _, c, _ in ages]
    df["age_missing"] = [m for _, _, m in ages]
    sex = pd.to_numeric(df["sex"], errors="coerce")
    df["sex_missing"] = ~sex.isin((0, 1))
    df["sex"] = sex.where(~df["sex_missing"], -1).astype(np.int64)
    df["height"] = _in_range(df.get("height", pd.Series(np.nan, index=df.index)), HEIGHT_RANGE)
    df["weight"] = _in_range(df.get("weight", pd.Series(np.nan, index=df.index)), WEIGHT_RANGE)
    for flag in FLAG_COLUMNS:
        values = df.get(flag, pd.Series(np.nan, index=df.index))
        df[flag] = values.notna() & (values.astype(str).str.strip() != "")

    df["scp_codes"] = [
        parse_scp_codes(text, f"{path} ecg_id {eid}")
        for eid, text in zip(df["ecg_id"], df["scp_codes"], strict=True)
    ]
    df["superclasses"] = [superclasses_of(codes, statements) for codes in df["scp_codes"]]
    return df.set_index("ecg_id", drop=False)


def binary_label(superclasses: Sequence[str]) -> int | None:
    """0 = normal (exactly {NORM}), 1 = abnormal (any other superclass), None = no diagnosis."""
    if not superclasses:
        return None
    return 0 if tuple(superclasses) == ("NORM",) else 1


def split_by_fold(strat_fold: np.ndarray, patient_id: np.ndarray) -> dict[str, np.ndarray]:
    """PTB-XL convention: folds 1-8 train, 9 validation, 10 test; patients never in two parts."""
    strat_fold = np.asarray(strat_fold)
    parts = {
        name: np.flatnonzero(np.isin(strat_fold, folds)).astype(np.int64)
        for name, folds in FOLD_PARTS.items()
    }
    part_of = np.empty(len(strat_fold), dtype=object)
    for name, idx in parts.items():
        part_of[idx] = name
    per_patient = pd.Series(part_of).groupby(np.asarray(patient_id)).nunique()
    crossing = per_patient[per_patient > 1]
    if len(crossing):
        raise LeakageError(
            f"{len(crossing)} PTB-XL patient(s) have records in two of train/val/test (e.g. "
            f"patient_id {crossing.index[0]}); strat_fold must keep each patient in one fold"
        )
    return parts
