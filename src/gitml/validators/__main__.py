"""Regenerate every schema's validator module: `python -m gitml.validators`."""

from __future__ import annotations

from gitml.validators.generate import write_all

for path in write_all():
    print(f"wrote {path.name}")
