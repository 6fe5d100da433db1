"""Runs held as columns read back exactly as the dicts they were built from."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from gitml.query.columns import MAX_CODES, ColumnTable

FIELDS = ["id", "params.lr", "params.model", "metrics.acc", "tags.note", "code.dirty"]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
)  # fmt: skip
ROWS = st.lists(st.dictionaries(st.sampled_from(FIELDS), VALUES), max_size=60)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


@settings(max_examples=150, deadline=None)
@given(ROWS)
def test_every_row_reads_back_as_its_dict_without_its_nulls(rows):
    table = ColumnTable(rows)
    views = table.views()
    assert len(views) == len(rows)
    for row, view in zip(rows, views, strict=True):
        kept = {k: v for k, v in row.items() if v is not None}
        assert sorted(view) == sorted(kept)
        for key in FIELDS:
            got, want = view.get(key), kept.get(key)
            assert (want is None and got is None) or _same(got, want), (key, got, want)
    assert table.present() == {
        k: n for k in FIELDS if (n := sum(r.get(k) is not None for r in rows))
    }


def test_text_with_many_values_moves_to_one_buffer_and_reads_the_same():
    rows = [{"id": f"run-{i:05d}-é", "status": ("finished", "failed")[i % 2]} for i in range(3000)]
    table = ColumnTable(rows)
    assert table.columns["id"].kind == "t" and table.columns["status"].kind == "c"
    assert len(table.columns["id"].codes) == 0 and MAX_CODES < 3000
    views = table.views()
    checked = 0
    for row, view in zip(rows, views, strict=True):
        assert view["id"] == row["id"] and view["status"] == row["status"]
        checked += 1
    assert checked == 3000


def test_a_field_few_runs_have_costs_only_those_runs():
    rows = [{"id": str(i), **({"params.rare": i} if i % 1000 == 7 else {})} for i in range(5000)]
    table = ColumnTable(rows)
    rare = table.columns["params.rare"]
    assert rare.count == 5 and list(rare.row_numbers()) == [7, 1007, 2007, 3007, 4007]
    assert (
        table.views()[2007]["params.rare"] == 2007
        and table.views()[2008].get("params.rare") is None
    )
    assert table.columns["id"].rows is None  # every run has an id: no row list at all


def test_a_field_of_mixed_kinds_becomes_objects_once():
    rows = [{"params.lr": 1}, {"params.lr": 0.5}, *({"params.lr": f"x{i}"} for i in range(2000))]
    table = ColumnTable(rows)
    column = table.columns["params.lr"]
    assert column.kind == "o" and len(column.values) == 2002
    assert [v["params.lr"] for v in table.views()[:3]] == [1, 0.5, "x0"]
