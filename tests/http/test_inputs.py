"""Request validation and typing against a signature, without a server: the mixed-type paths."""

import datetime as dt

import pytest

from gitml.serving.loading import InputError, InputSchema

SIGNATURE = {
    "inputs": [
        {"name": "age", "type": "long"},
        {"name": "income", "type": "double"},
        {"name": "member", "type": "boolean"},
        {"name": "city", "type": "string"},
        {"name": "seen", "type": "datetime"},
    ]
}
RECORD = {"age": 41, "income": 5200.5, "member": True, "city": "Lyon",
          "seen": "2026-11-01T10:00:00+00:00"}  # fmt: skip


class Fitted:
    feature_names_in_ = tuple(c["name"] for c in SIGNATURE["inputs"])


def test_mixed_types_come_out_with_the_signature_dtypes():
    schema = InputSchema(SIGNATURE, Fitted())
    frame = schema.frame([RECORD, {**RECORD, "age": 7, "member": False}], "records")
    assert tuple(frame.columns) == Fitted.feature_names_in_
    assert [str(t) for t in frame.dtypes[:3]] == ["int64", "float64", "bool"]
    assert frame["city"].tolist() == ["Lyon", "Lyon"]
    assert frame["seen"].iloc[0] == dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC)
    assert frame["age"].tolist() == [41, 7]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"age": 41.5}, "records[0].age: Input should be a valid integer"),
        ({"income": "5200"}, "records[0].income: Input should be a valid number"),
        ({"member": "yes"}, "records[0].member: Input should be a valid boolean"),
        ({"city": 3}, "records[0].city: Input should be a valid string"),
        ({"seen": "yesterday"}, "records[0].seen: Input should be a valid datetime"),
        ({"income": float("inf")}, "records[0].income: Input should be a finite number"),
    ],
    ids=["float for long", "text for double", "text for boolean", "number for string",
         "bad datetime", "infinity"],
)  # fmt: skip
def test_each_type_refuses_what_it_is_not(change, message):
    with pytest.raises(InputError) as refused:
        InputSchema(SIGNATURE, Fitted()).frame([{**RECORD, **change}], "records")
    assert refused.value.message.startswith(message)
    assert refused.value.status == 422


def test_no_signature_takes_records_as_they_come():
    frame = InputSchema(None, object()).frame([{"a": 1, "b": "x"}], "records")
    assert frame.to_dict("records") == [{"a": 1, "b": "x"}]
