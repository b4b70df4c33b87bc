from __future__ import annotations

from ecgfusion.data.labels import AAMI_CLASSES, AAMI_MAP, aami_class, summarise_symbols


def test_aami_mapping_is_the_kaggle_one():
    expected = {
        "N": "NLRej",
        "S": "AaJS",
        "V": "VE",
        "F": "F",
        "Q": "/fQ",
    }
    for cls, symbols in expected.items():
        for s in symbols:
            assert aami_class(s) == cls, s
    assert set(AAMI_MAP) == set("".join(expected.values()))
    assert AAMI_CLASSES == ("N", "S", "V", "F", "Q")


def test_unmapped_beats_and_non_beats_are_counted_separately():
    summary = summarise_symbols(["N", "N", "V", "B", "?", "+", "~", "|", "r"])
    assert summary["mapped"] == {"N": 2, "V": 1}
    assert summary["unmapped"] == {"B": 1, "?": 1, "r": 1}
    assert summary["non_beat"] == {"+": 1, "~": 1, "|": 1}


def test_cli_record_lists_accept_commas_and_repeats():
    from ecgfusion.cli.common import split_records

    assert split_records(["100,101", "102"]) == ["100", "101", "102"]
    assert split_records(None) is None
