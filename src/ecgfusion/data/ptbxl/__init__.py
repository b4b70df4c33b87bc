"""PTB-XL: metadata, diagnostic superclasses, 12-lead records and the PTB normal/abnormal beat set.

The Kaggle PTB beat CSVs are not available, so the paper's PTB task is rebuilt from real PTB-XL
records. Paths come from ``filename_lr`` / ``filename_hr`` of ``ptbxl_database.csv``, so the same
code reads the 2k-record subset under ``../shared/datasets/ptbxl`` and a full PhysioNet download.

Rules (each one tested):

* ``scp_codes`` is parsed with :func:`ast.literal_eval` and must be a ``{code: likelihood}`` dict;
  anything else (an expression, a call) is a DataError naming the file and the ecg_id.
* Superclasses follow the PTB-XL paper: diagnostic statements with likelihood > 0 mapped through
  ``diagnostic_class``. The benchmark code of Strodthoff et al. (2020) also keeps likelihood-0
  statements; on ecg_id 1-1999 those are 37 ``NST_`` (non-specific ST changes) statements, and the
  choice changes the superclasses of 22 records.
* Ages above 89 are coded 300 by PTB-XL: they become 90 with ``age_capped``; NaN, negative or
  otherwise impossible ages (> 120) become missing (``age_missing``).
* A ``strat_fold`` outside 1-10 is a DataError naming the file and the ecg_id.
* A record whose signal has a NaN or flat (all-zero or constant) lead is dropped and reported
  with its ids: a lead without information would silently teach the model a wrong pattern.
* Records listed in the metadata but missing on disk are reported once (count and first ids).

Modules: :mod:`.metadata` (statements, SCP codes, ages, load_metadata, split_by_fold),
:mod:`.signals` (reading and checking WFDB records, records missing on disk), :mod:`.records`
(the record-level set and its Parquet cache) and :mod:`.beats` (the beat set, cut at R peaks
from :mod:`ecgfusion.data.rpeaks`). Every name is re-exported here.
"""

from __future__ import annotations

from ecgfusion.data.ptbxl.beats import (
    DETECTOR,
    build_ptbxl_beats,
    load_ptbxl_beats,
    ptbxl_beats_table,
)
from ecgfusion.data.ptbxl.metadata import (
    AGE_CAP,
    AGE_CENTER,
    AGE_CODE_OVER_89,
    AGE_MAX_PLAUSIBLE,
    AGE_SCALE,
    FILENAME_COLUMN,
    FLAG_COLUMNS,
    FOLD_PARTS,
    HEIGHT_CENTER,
    HEIGHT_RANGE,
    HEIGHT_SCALE,
    MAX_SCP_TEXT,
    META_FEATURES,
    METADATA_FILE,
    REQUIRED_COLUMNS,
    STATEMENTS_FILE,
    SUPERCLASSES,
    TEST_FOLDS,
    TRAIN_FOLDS,
    VAL_FOLDS,
    WEIGHT_CENTER,
    WEIGHT_RANGE,
    WEIGHT_SCALE,
    binary_label,
    clean_age,
    load_metadata,
    load_statements,
    parse_scp_codes,
    split_by_fold,
    superclasses_of,
)
from ecgfusion.data.ptbxl.records import (
    RECORDS_CACHE_VERSION,
    ROW_FIELDS,
    PtbxlRecords,
    build_ptbxl_records,
    load_ptbxl_records,
    metadata_vector,
    prepare_ptbxl_records,
    read_ptbxl_records,
    records_cache_path,
    write_ptbxl_records,
)
from ecgfusion.data.ptbxl.signals import (
    LEADS,
    RECORD_SECONDS,
    SHOW_IDS,
    SUBSET_NOTE,
    MissingRecordsWarning,
    check_sampling_rate,
    filename_column,
    flat_or_nan_leads,
    missing_on_disk,
    read_signal,
    record_base,
    report_missing,
)

__all__ = [
    "AGE_CAP",
    "AGE_CENTER",
    "AGE_CODE_OVER_89",
    "AGE_MAX_PLAUSIBLE",
    "AGE_SCALE",
    "DETECTOR",
    "FILENAME_COLUMN",
    "FLAG_COLUMNS",
    "FOLD_PARTS",
    "HEIGHT_CENTER",
    "HEIGHT_RANGE",
    "HEIGHT_SCALE",
    "LEADS",
    "MAX_SCP_TEXT",
    "META_FEATURES",
    "METADATA_FILE",
    "RECORDS_CACHE_VERSION",
    "RECORD_SECONDS",
    "REQUIRED_COLUMNS",
    "ROW_FIELDS",
    "SHOW_IDS",
    "STATEMENTS_FILE",
    "SUBSET_NOTE",
    "SUPERCLASSES",
    "TEST_FOLDS",
    "TRAIN_FOLDS",
    "VAL_FOLDS",
    "WEIGHT_CENTER",
    "WEIGHT_RANGE",
    "WEIGHT_SCALE",
    "MissingRecordsWarning",
    "PtbxlRecords",
    "binary_label",
    "build_ptbxl_beats",
    "build_ptbxl_records",
    "check_sampling_rate",
    "clean_age",
    "filename_column",
    "flat_or_nan_leads",
    "load_metadata",
    "load_ptbxl_beats",
    "load_ptbxl_records",
    "load_statements",
    "metadata_vector",
    "missing_on_disk",
    "parse_scp_codes",
    "prepare_ptbxl_records",
    "ptbxl_beats_table",
    "read_ptbxl_records",
    "read_signal",
    "record_base",
    "records_cache_path",
    "report_missing",
    "split_by_fold",
    "superclasses_of",
    "write_ptbxl_records",
]
