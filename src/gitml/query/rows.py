"""A run record as one flat row: the shape queries, tables, CSV and DataFrames use."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

Row = dict[str, Any]
NAMESPACED = ("params", "metrics", "tags")


def flatten(rec: Mapping[str, Any]) -> Row:
    """Top-level fields plus ``params.x``, ``metrics.y``, ``tags.z``, ``code.*``, ``inputs.<path>``.

    ``rec`` has JSON types (datetimes as ISO strings). The ``commit`` a run landed in is not part
    of the record; the index adds it.
    """
    row: Row = {
        "id": rec.get("id"),
        "name": rec.get("name"),
        "status": rec.get("status"),
        "start_time": rec.get("start_time"),
        "end_time": rec.get("end_time"),
        "duration": _duration(rec.get("start_time"), rec.get("end_time")),
        "command": " ".join(rec.get("command", [])) or None,
        "error": rec.get("error"),
    }
    for ns in NAMESPACED:
        for key, value in rec.get(ns, {}).items():
            row[f"{ns}.{key}"] = value
    for key, value in rec.get("code", {}).items():
        row[f"code.{key}"] = value
    for ns in ("inputs", "outputs"):
        for path, ref in rec.get(ns, {}).items():
            row[f"{ns}.{path}"] = ref.get("md5")
    for key in ("python", "platform"):
        if key in rec.get("env", {}):
            row[f"env.{key}"] = rec["env"][key]
    return row


def _duration(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return None
