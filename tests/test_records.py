"""The typed records say what schemas/ says: the same properties, the same required ones."""

import json
import typing
from pathlib import Path

import pytest

from gitml import records

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"

# TypedDict: (schema file, JSON pointer to the object schema)
CHECKED = {
    records.RunRecord: ("run", ""),
    records.Process: ("run", "/properties/process"),
    records.CodeState: ("run", "/properties/code"),
    records.Environment: ("run", "/properties/env"),
    records.Artifact: ("run", "/$defs/artifact"),
    records.ModelDoc: ("model", ""),
    records.VersionRecord: ("model", "/$defs/version"),
    records.Signature: ("model", "/$defs/signature"),
    records.InputColumn: ("model", "/$defs/signature/properties/inputs/items"),
    records.Output: ("model", "/$defs/signature/properties/output"),
    records.RegistryEvent: ("model", "/$defs/event"),
    records.Config: ("config", ""),
}


def _at(schema: dict, pointer: str) -> dict:
    for part in filter(None, pointer.split("/")):
        schema = schema[part]
    return schema


@pytest.mark.parametrize("typed", list(CHECKED), ids=lambda t: t.__name__)
def test_a_typed_record_has_its_schemas_properties(typed):
    name, pointer = CHECKED[typed]
    schema = _at(json.loads((SCHEMAS / f"{name}.schema.json").read_text()), pointer)
    assert schema.get("additionalProperties") is False, "an open schema cannot be checked"
    hints = typing.get_type_hints(typed)
    assert set(hints) == set(schema["properties"]), typed.__name__
    assert set(typed.__required_keys__) == set(schema.get("required", [])), typed.__name__


def test_every_closed_object_of_the_schemas_has_a_typed_record():
    """A new nested object in a schema needs its TypedDict (or this list says why not)."""
    open_on_purpose = {("config", "/properties/")}  # config sections stay tables of Any
    found = []
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        name = path.name.removesuffix(".schema.json")
        if name not in {"run", "model", "config"}:
            continue

        def walk(node, pointer, name=name):
            if isinstance(node, dict):
                if node.get("additionalProperties") is False and "properties" in node:
                    found.append((name, pointer))
                for key, value in node.items():
                    walk(value, f"{pointer}/{key}")

        walk(json.loads(path.read_text()), "")
    checked = set(CHECKED.values())
    missing = [
        (n, p) for n, p in found
        if (n, p) not in checked and not any(n == o and p.startswith(q) for o, q in open_on_purpose)
    ]  # fmt: skip
    assert len(found) >= len(CHECKED)
    assert not missing, missing
