"""Beat labels: MIT-BIH annotation symbols and the AAMI EC57 classes they map to."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

AAMI_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")

#: The mapping the paper's Kaggle set (Kachuee et al. 2018) uses.
AAMI_MAP: dict[str, str] = {
    **dict.fromkeys("NLRej", "N"),
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VE", "V"),
    "F": "F",
    **dict.fromkeys("/fQ", "Q"),
}

#: Every WFDB annotation code that marks a beat (PhysioNet's "beat annotations"). Any beat symbol
#: outside AAMI_MAP (B, r, n, ?) is counted as unmapped and reported; everything else (rhythm,
#: noise, comments, '+', '~', '|', '!', 'x', '[', ']' ...) is a non-beat annotation and skipped.
BEAT_SYMBOLS: frozenset[str] = frozenset("NLRBaJASVrFejnE/fQ?")

PTB_CLASSES: tuple[str, ...] = ("normal", "abnormal")


def aami_class(symbol: str) -> str | None:
    """The AAMI class of a beat symbol, or None when the symbol is not a mapped beat."""
    return AAMI_MAP.get(symbol)


def summarise_symbols(symbols: Iterable[str]) -> dict[str, dict[str, int]]:
    """Count symbols into mapped beats, unmapped beats and non-beat annotations."""
    mapped: Counter[str] = Counter()
    unmapped: Counter[str] = Counter()
    non_beat: Counter[str] = Counter()
    for s in symbols:
        if s in AAMI_MAP:
            mapped[s] += 1
        elif s in BEAT_SYMBOLS:
            unmapped[s] += 1
        else:
            non_beat[s] += 1
    return {"mapped": dict(mapped), "unmapped": dict(unmapped), "non_beat": dict(non_beat)}
