"""What `gitml serve`'s HTTP API accepts and describes: request bodies and the OpenAPI spec.

Bodies: ``{"records": [...]}`` for ``/predict``; MLflow's ``dataframe_split``,
``dataframe_records``, ``instances`` and ``inputs`` JSON, and CSV, for ``/invocations``. The spec
carries each model's record schema, so clients can be generated from it. Like `gitml.http.app`,
this module does not use postponed annotations.
"""

import html
import io
import json
from typing import Any

from gitml.serving.loading import InputError, InputSchema, LoadedModel
from gitml.store import to_json_types

SPLIT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What is wrong, naming the field at fault."},
        "detail": {"type": "array", "items": {"type": "object"}},
        "error_code": {
            "type": "string",
            "description": "as MLflow: BAD_REQUEST; REQUEST_LIMIT_EXCEEDED with a 413",
        },
        "message": {"type": "string", "description": "/invocations, as MLflow: the error"},
    },
}


def parse_body(inputs: InputSchema, endpoint: str, body: bytes, content_type: str) -> Any:
    """The request body as a validated frame, by route and content type."""
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    if endpoint == "invocations" and media == "text/csv":
        return inputs.frame(csv_records(body), "csv")
    if media not in ("application/json", ""):
        raise InputError(
            f"content-type: {media!r}; send application/json"
            + (" or text/csv" if endpoint == "invocations" else ""),
            status=415,
        )
    import orjson

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"body: not valid JSON ({exc})", status=400) from exc
    if not isinstance(data, dict):
        raise InputError("body: give a JSON object")
    if endpoint == "predict":
        unknown = sorted(set(data) - {"records"})
        if unknown or "records" not in data:
            problem = f"unknown key {unknown[0]!r}" if unknown else "missing key 'records'"
            raise InputError(f'body: {problem}; send {{"records": [{{feature: value}}, ...]}}')
        return inputs.frame(data["records"], "records")
    return _mlflow_body(inputs, data)


def _mlflow_body(inputs: InputSchema, data: dict[str, Any]) -> Any:
    """One of MLflow's scoring bodies (``dataframe_split``, ..., ``inputs``) as a frame."""
    keys = [k for k in SPLIT_KEYS if k in data]
    extra = sorted(set(data) - {*SPLIT_KEYS, "params"})
    if len(keys) != 1 or extra:
        raise InputError(
            f"body: give exactly one of {', '.join(SPLIT_KEYS)}"
            + (f" (unknown key {extra[0]!r})" if extra else "")
        )
    if data.get("params"):
        raise InputError("params: this model takes no inference params")
    key = keys[0]
    value = data[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or set(value) - {"columns", "data", "index"}:
            raise InputError("dataframe_split: give an object with columns, data (and index)")
        if not isinstance(value.get("index", []), list):
            raise InputError("dataframe_split.index: give a list, one label per row")
        value = inputs.rows_to_records(value.get("columns"), value.get("data"), key)
    elif isinstance(value, list) and value and all(isinstance(r, list) for r in value):
        if inputs.signature:  # as MLflow enforces a signature of named columns
            raise InputError(
                f"{key}: rows without column names; this model's signature names "
                "its columns: send records or dataframe_split"
            )
        value = inputs.rows_to_records(inputs.columns, value, key)
    elif key in ("inputs", "instances") and isinstance(value, dict):
        value = columns_to_records(value, key)
    return inputs.frame(value, key, ignore_extra=True)


def columns_to_records(columns: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """MLflow's ``{"inputs": {"feature": [values...], ...}}``: one list per column, as records.

    Scalars instead of lists are one row, as MLflow reads them.
    """
    if not columns:
        raise InputError(f"{where}: give at least one column")
    if not any(isinstance(v, list) for v in columns.values()):
        return [dict(columns)]
    lengths = {name: len(v) for name, v in columns.items() if isinstance(v, list)}
    scalar = sorted(set(columns) - set(lengths))
    if scalar:
        raise InputError(f"{where}.{scalar[0]}: give a list of values, as the other columns have")
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name}: {n}" for name, n in lengths.items())
        raise InputError(f"{where}: columns of different lengths ({shown})")
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def csv_records(body: bytes) -> list[dict[str, Any]]:
    """A CSV body as records, one per row (a header row names the columns)."""
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"csv: cannot parse the body ({exc})", status=400) from exc
    records: list[dict[str, Any]] = frame.to_dict("records")
    return records


def metadata_of(current: LoadedModel) -> dict[str, Any]:
    """What `GET /metadata` says about the model being served."""
    version = current.version
    keys = ("run", "path", "md5", "size", "format", "code_commit", "commit", "created_at",
            "created_by", "description", "metrics", "params", "signature")  # fmt: skip

    fields = dict(version.items())
    meta = {k: to_json_types(fields[k]) for k in keys if k in fields}
    return {
        "name": current.name,
        "spec": current.spec,
        "version": current.number,
        **meta,
        "loaded_at": current.loaded_at,
    }


def openapi_spec(app: Any, state: Any) -> dict[str, Any]:
    """FastAPI's spec plus the request bodies, typed by the served version's signature."""
    if app.openapi_schema:
        return dict(app.openapi_schema)
    from fastapi.openapi.utils import get_openapi

    spec = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    record = {"$ref": "#/components/schemas/Record"}
    records = {"type": "array", "items": record, "minItems": 1}
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Record"] = state.current.inputs.record_json_schema()
    # /invocations drops the fields the signature does not name, as MLflow's server does
    schemas["InvocationRecord"] = {**schemas["Record"], "additionalProperties": True}
    lenient = {"type": "array", "items": {"$ref": "#/components/schemas/InvocationRecord"},
               "minItems": 1}  # fmt: skip
    predict_body = {
        "type": "object",
        "required": ["records"],
        "additionalProperties": False,
        "properties": {"records": records},
    }
    split = split_schema(state.current.inputs)
    invocation_bodies = [
        {"type": "object", "required": [key], "additionalProperties": False,
         "properties": {key: schema}}
        for key, schema in (("dataframe_split", split), ("dataframe_records", lenient),
                            ("instances", lenient), ("inputs", lenient))
    ]  # fmt: skip
    paths = spec["paths"]
    paths["/predict"]["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": predict_body}},
    }
    paths["/invocations"]["post"]["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {"schema": {"oneOf": invocation_bodies}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
    paths["/predict"]["post"]["responses"]["200"]["content"] = {
        "application/json": {"schema": _PREDICT_RESPONSE}
    }
    invocations = {"type": "object", "required": ["predictions"],
                   "properties": {"predictions": {"type": "array"}}}  # fmt: skip
    paths["/invocations"]["post"]["responses"]["200"]["content"] = {
        "application/json": {"schema": invocations}
    }
    app.openapi_schema = spec
    return spec


def split_schema(inputs: InputSchema) -> dict[str, Any]:
    """``dataframe_split`` as documented: the signature's columns, rows typed by position."""
    row: dict[str, Any] = {"type": "array"}
    if inputs.columns:
        types = inputs.record_json_schema()["properties"]
        row.update(
            prefixItems=[types[c] for c in inputs.columns],
            minItems=len(inputs.columns),
            maxItems=len(inputs.columns),
        )
    columns: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
    if inputs.columns:
        columns = {"const": inputs.columns}
    return {
        "type": "object",
        "required": ["columns", "data"],
        "properties": {
            "columns": columns,
            "data": {"type": "array", "items": row, "minItems": 1},
            "index": {"type": "array"},
        },
    }


_PREDICT_RESPONSE = {
    "type": "object",
    "required": ["predictions", "model", "request_id"],
    "properties": {
        "predictions": {"type": "array", "description": "One per record, in order."},
        "probabilities": {"type": "array", "items": {"type": "array"}},
        "classes": {"type": "array"},
        "model": {
            "type": "object",
            "required": ["name", "version"],
            "properties": {"name": {"type": "string"}, "version": {"type": "integer"}},
        },
        "request_id": {"type": "string"},
    },
}


def docs_page(spec: dict[str, Any]) -> str:
    """The routes of the OpenAPI spec as one HTML page that needs nothing from the internet.

    FastAPI's own /docs loads Swagger UI from a CDN, so it is blank on a machine offline (and
    a page of the server that runs someone else's JavaScript).
    """
    info = spec.get("info", {})
    parts = [f"<!doctype html><meta charset=utf-8><title>{html.escape(info.get('title', ''))}"
             "</title><style>body{font:14px system-ui;margin:2em;max-width:60em}"
             "pre{background:#f6f8fa;padding:.6em;overflow:auto}h2{font-size:1.1em}</style>",
             f"<h1>{html.escape(info.get('title', ''))}</h1>",
             f"<p>{html.escape(info.get('description', ''))} The spec: "
             "<a href=/openapi.json>/openapi.json</a>.</p>"]  # fmt: skip
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(f"<h2>{method.upper()} {html.escape(path)}</h2>"
                         f"<p>{html.escape(op.get('summary', ''))}</p>")  # fmt: skip
            body = op.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                shown = json.dumps(content.get("schema", {}), indent=2)
                parts.append(f"<p>Body ({html.escape(media)}):</p><pre>{html.escape(shown)}</pre>")
            codes = ", ".join(html.escape(str(c)) for c in op.get("responses", {}))
            parts.append(f"<p>Answers: {codes}</p>")
    return "\n".join(parts)
