"""Regenerate every schema's validator module: `python -m gitml.validators`."""

from __future__ import annotations

from pathlib import Path

from gitml.store import SCHEMA_FILES
from gitml.validators import module_name, source

for kind in SCHEMA_FILES:
    path = Path(__file__).parent / f"{module_name(kind).rsplit('.', 1)[1]}.py"
    path.write_text(source(kind))
    print(f"wrote {path.name}")
