"""Named, seeded splits that say how honest they are.

``beat-random`` is the Kaggle/paper protocol: beats of one patient land in train and test, so its
numbers measure recognition of known patients (intra-patient). ``patient-disjoint`` and
``inter-patient`` (de Chazal 2004) keep patients apart, which is what a new patient sees.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import train_test_split

from ecgfusion.data.beats import BeatSet
from ecgfusion.errors import DataError, LeakageError

# de Chazal, O'Dwyer & Reilly (2004), IEEE TBME 51(7); paced 102, 104, 107, 217 excluded.
DS1 = (
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
    "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
)
DS2 = (
    "100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
    "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234",
)
#: Records 201 (DS1) and 202 (DS2) are one patient; the published split keeps them apart anyway.
DE_CHAZAL_KNOWN_OVERLAP = ("mitdb:201",)

PROTOCOLS = ("beat-random", "patient-disjoint", "inter-patient", "strat-fold")
PATIENT_DISJOINT = {"patient-disjoint", "inter-patient", "strat-fold"}
REBALANCE = (None, "reduced")


class KnownPatientOverlapWarning(UserWarning):
    """A published protocol has a patient in two parts; kept for comparability, reported here."""


@dataclass
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    protocol: str
    seed: int
    intra_patient: bool
    label: str
    beats: BeatSet = field(repr=False)
    warnings: list[str] = field(default_factory=list)
    rebalance: str | None = None

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def counts(self) -> dict[str, dict[str, int]]:
        return {name: self.beats.class_counts(idx) for name, idx in self.parts().items()}

    def report(self) -> str:
        names = self.beats.class_names
        lines = [f"protocol: {self.label}", f"seed: {self.seed}"]
        if self.rebalance:
            lines.append(f"training part re-balanced: {self.rebalance}")
        widths = [max(8, len(c) + 1) for c in names]
        header = f"{'part':<6}{'beats':>9}{'records':>9}{'patients':>9}" + "".join(
            f"{c:>{w}}" for c, w in zip(names, widths, strict=True)
        )
        lines.append(header)
        for name, idx in self.parts().items():
            counts = self.beats.class_counts(idx)
            lines.append(
                f"{name:<6}{len(idx):>9}{len(np.unique(self.beats.record[idx])):>9}"
                f"{len(np.unique(self.beats.patient[idx])):>9}"
                + "".join(f"{counts[c]:>{w}}" for c, w in zip(names, widths, strict=True))
            )
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def check_patient_disjoint(
    beats: BeatSet, parts: dict[str, np.ndarray], known_overlap: tuple[str, ...] = ()
) -> list[str]:
    """Raise LeakageError if a patient is in two parts; known, published overlaps only warn."""
    seen: dict[str, set[str]] = {}
    for name, idx in parts.items():
        for patient in np.unique(beats.patient[idx]):
            seen.setdefault(str(patient), set()).add(name)
    shared = {p: sorted(ps) for p, ps in seen.items() if len(ps) > 1}
    unexpected = {p: ps for p, ps in shared.items() if p not in known_overlap}
    if unexpected:
        first = next(iter(unexpected.items()))
        raise LeakageError(
            f"{len(unexpected)} patient(s) appear in more than one part (e.g. {first[0]} in "
            f"{' and '.join(first[1])}); a patient-disjoint protocol must keep them apart"
        )
    messages = []
    for patient, ps in shared.items():
        msg = (
            f"known patient overlap: {patient} is in {' and '.join(ps)} (MIT-BIH records 201 and "
            "202 are one patient; de Chazal's published DS1/DS2 split keeps them apart anyway)"
        )
        warnings.warn(msg, KnownPatientOverlapWarning, stacklevel=3)
        messages.append(msg)
    return messages


def _stratify(labels: np.ndarray) -> np.ndarray | None:
    """Stratify when every present class can be split (a class with one beat cannot)."""
    counts = np.bincount(labels)
    return labels if (counts[counts > 0] >= 2).all() else None


def _beat_random(beats: BeatSet, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    idx = np.arange(len(beats))
    train, test = train_test_split(
        idx, test_size=0.2, random_state=seed, stratify=_stratify(beats.labels)
    )
    train, val = train_test_split(
        train, test_size=0.2, random_state=seed, stratify=_stratify(beats.labels[train])
    )
    return np.sort(train), np.sort(val), np.sort(test)


def _group_split(
    idx: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    seed: int,
    fraction: float = 0.2,
    tries: int = 300,
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out about ``fraction`` of the beats as whole patients, with the class mix kept close.

    Seeded random patient orders are tried and the held-out prefix whose class proportions (and
    size) are closest to the whole set wins: different seeds give different patients, which
    StratifiedGroupKFold's shuffle does not guarantee.
    """
    uniq, group_of = np.unique(groups, return_inverse=True)
    if len(uniq) < 2:
        raise DataError(f"a patient-disjoint split needs at least 2 patients, got {len(uniq)}")
    n_classes = int(labels.max()) + 1
    per_group = np.zeros((len(uniq), n_classes))
    np.add.at(per_group, (group_of, labels), 1)
    target = per_group.sum(0) / len(labels)
    rng = np.random.default_rng(seed)
    best, best_score = None, np.inf
    for _ in range(tries):
        order = rng.permutation(len(uniq))
        cum = np.cumsum(per_group[order], axis=0)
        k = int(np.searchsorted(cum.sum(1), fraction * len(labels))) + 1
        k = min(max(k, 1), len(uniq) - 1)
        held = cum[k - 1]
        score = np.abs(held / held.sum() - target).sum() + abs(held.sum() / len(labels) - fraction)
        if score < best_score:
            best, best_score = order[:k], score
    out = np.isin(group_of, best)
    return idx[~out], idx[out]


def _patient_disjoint(beats: BeatSet, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if (beats.patient == "unknown").any():
        raise DataError(
            f"{beats.dataset}: beats without a patient id (Kaggle CSVs) cannot be split by "
            "patient; "
            "use --protocol beat-random or prepare the beats from the WFDB records"
        )
    idx = np.arange(len(beats))
    train, test = _group_split(idx, beats.labels, beats.patient, seed)
    train, val = _group_split(train, beats.labels[train], beats.patient[train], seed)
    return np.sort(train), np.sort(val), np.sort(test)


def _inter_patient(beats: BeatSet, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if beats.dataset != "mitdb":
        raise DataError(
            f"the inter-patient (de Chazal) protocol is defined for mitdb, not {beats.dataset}; "
            "use --protocol patient-disjoint"
        )
    present = set(np.unique(beats.record))
    missing = sorted((set(DS1) | set(DS2)) - present)
    if missing:
        raise DataError(
            f"inter-patient protocol needs all 44 DS1/DS2 records; missing {', '.join(missing)} — "
            "prepare mitdb without --records"
        )
    rng = np.random.default_rng(seed)
    # Validation = whole DS1 records (one in five), drawn until it holds every class that at least
    # three DS1 records have, but no more than half of any class: record 208 alone has ~90 % of
    # DS1's F beats and must stay in training.
    ds1_counts = {r: beats.class_counts(np.flatnonzero(beats.record == r)) for r in DS1}
    totals = {c: sum(v[c] for v in ds1_counts.values()) for c in beats.class_names}
    common = [c for c in beats.class_names if sum(v[c] > 0 for v in ds1_counts.values()) >= 3]
    for _ in range(10_000):
        val_records = rng.choice(DS1, size=len(DS1) // 5, replace=False)
        share = {c: sum(ds1_counts[r][c] for r in val_records) / totals[c] for c in common}
        if all(0 < share[c] <= 0.5 for c in common):
            break
    else:  # pragma: no cover - the constraint is satisfiable on the published records
        raise DataError("could not draw inter-patient validation records covering every class")
    train = np.flatnonzero(np.isin(beats.record, DS1) & ~np.isin(beats.record, val_records))
    val = np.flatnonzero(np.isin(beats.record, val_records))
    test = np.flatnonzero(np.isin(beats.record, DS2))
    return train, val, test


def _strat_fold(beats: BeatSet, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    folds_by_record = beats.meta.get("record_folds")
    if not folds_by_record:
        raise DataError(
            f"{beats.dataset} has no strat_fold per record; strat-fold is for PTB-XL datasets"
        )
    folds = np.array([int(folds_by_record[str(r)]) for r in beats.record])
    return (
        np.flatnonzero(folds <= 8),
        np.flatnonzero(folds == 9),
        np.flatnonzero(folds == 10),
    )


_PROTOCOL_FUNCS = {
    "beat-random": _beat_random,
    "patient-disjoint": _patient_disjoint,
    "inter-patient": _inter_patient,
    "strat-fold": _strat_fold,
}

_LABELS = {
    "beat-random": "beat-random (INTRA-patient: beats of the same patients are in train and test)",
    "patient-disjoint": "patient-disjoint (inter-patient: no patient in two parts)",
    "inter-patient": "inter-patient (de Chazal 2004 DS1/DS2; paced records excluded)",
    "strat-fold": "strat-fold (PTB-XL folds 1-8 / 9 / 10; inter-patient)",
}


def rebalance_reduced(
    idx: np.ndarray, labels: np.ndarray, seed: int, fraction: float = 0.5
) -> np.ndarray:
    """Down-sample each class to at most ``fraction`` of the largest (the seed's "reduced")."""
    counts = np.bincount(labels[idx])
    cap = int(counts.max() * fraction)
    rng = np.random.default_rng(seed)
    kept = [
        rng.permutation(idx[labels[idx] == c])[:cap] for c in range(len(counts)) if counts[c] > 0
    ]
    return np.sort(np.concatenate(kept))


def make_split(beats: BeatSet, protocol: str, seed: int = 0, rebalance: str | None = None) -> Split:
    if protocol not in _PROTOCOL_FUNCS:
        raise DataError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if rebalance not in REBALANCE:
        raise DataError(f"unknown rebalance {rebalance!r}; choose none or 'reduced'")
    train, val, test = _PROTOCOL_FUNCS[protocol](beats, seed)
    found: list[str] = []
    if protocol in PATIENT_DISJOINT:
        known = DE_CHAZAL_KNOWN_OVERLAP if protocol == "inter-patient" else ()
        found = check_patient_disjoint(beats, {"train": train, "val": val, "test": test}, known)
    if rebalance == "reduced":
        train = rebalance_reduced(train, beats.labels, seed)
    return Split(
        train=train.astype(np.int64),
        val=val.astype(np.int64),
        test=test.astype(np.int64),
        protocol=protocol,
        seed=seed,
        intra_patient=protocol == "beat-random",
        label=_LABELS[protocol],
        beats=beats,
        warnings=found,
        rebalance=rebalance,
    )
