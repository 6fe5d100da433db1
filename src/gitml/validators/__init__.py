"""Each schema's fastjsonschema validator, generated ahead of time (`python -m gitml.validators`).

Compiling a JSON Schema to Python costs ~30 ms per schema in every process that validates a
file: more than half of what `gitml run` adds to a short command. The generated modules here are
imported instead; each names the sha256 of the schema it was made from, and `store` compiles at
run time whenever that does not match the schema beside it (an edited schema never goes
unchecked). A test regenerates them all and fails if any differs (`validators.generate`).

This package imports nothing of gitml: `store` hands it the schema's bytes.
"""

from __future__ import annotations

import hashlib
import importlib
from typing import Any


def module_name(kind: str) -> str:
    """``metrics-summary`` -> ``gitml.validators.compiled.metrics_summary``."""
    return f"{__name__}.compiled.{kind.replace('-', '_')}"


def generated(kind: str, schema: bytes) -> Any:
    """The generated ``validate`` for ``kind``, or None when missing or made from another schema."""
    try:
        module = importlib.import_module(module_name(kind))
    except ImportError:
        return None
    if getattr(module, "SCHEMA_SHA256", None) != hashlib.sha256(schema).hexdigest():
        return None
    return module.validate
