"""The one layout of every "paper beside ours" table (oodlib.beside)."""

import math

import pytest

from oodlib import beside


def test_pairs_become_paper_and_ours_columns_in_order_with_missing_marked():
    t = beside.table([{"set": "a", "AUROC": beside.Pair(97.5, 0.912), "note": "x"},
                      {"set": "b", "AUROC": beside.Pair(None, math.nan), "FPR": beside.Pair(1.0, 2.0)}],
                     index=["set"], fmt=lambda v: round(v, 1))
    assert list(t.columns) == ["AUROC paper", "AUROC ours", "note", "FPR paper", "FPR ours"]
    assert t.loc["a", "AUROC paper"] == 97.5 and t.loc["a", "AUROC ours"] == 0.9
    assert t.loc["b", "AUROC paper"] == beside.MISSING == t.loc["b", "AUROC ours"]
    assert t.loc["a", "FPR ours"] == beside.MISSING and t.loc["b", "note"] == beside.MISSING


def test_an_unnamed_quantity_gives_plain_paper_and_ours_columns():
    t = beside.table([{"quantity": "q", "": beside.Pair("34.7 → 4.3", "10.0 → 5.0")}])
    assert list(t.columns) == ["quantity", "paper", "ours"] and t.loc[0, "paper"] == "34.7 → 4.3"


@pytest.mark.parametrize("records, index, match", [
    ([], (), "non-empty sequence"),
    ("abc", (), "non-empty sequence"),
    ([3], (), "each record to be a dict"),
    ([{"a": 1}], ["set"], r"lacks \['set'\]"),
])
def test_bad_records_are_refused(records, index, match):
    with pytest.raises(ValueError, match=match):
        beside.table(records, index=index)
