"""`gitml ui --export DIR`: the UI's pages as a static site, its answers written as JSON files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from gitml import explore, explore_models, explore_table, git
from gitml.errors import UsageError
from gitml.http.ui import STATIC, TYPES
from gitml.repo import Repo

EXPORT_MARK = ".gitml-ui-export"


def export(repo: Repo, dest: Path, *, buckets: int = 1000) -> dict[str, int]:
    """The same pages as a static site in ``dest`` (a CI artifact, GitHub Pages): JSON snapshots.

    Every run's row and page, each step metric cut to ``buckets`` per run, the history of each
    metric along HEAD, and the registry. The page reads these files instead of the server;
    filtering with `--where` and a band of repeats need `gitml ui` itself.
    """
    if dest.exists() and any(dest.iterdir()) and not (dest / EXPORT_MARK).is_file():
        raise UsageError("--export", f"{dest} is not empty and was not written by gitml ui")
    table = explore_table.RunTable(repo)
    rows = table.rows()
    counts = {"runs": 0, "series": 0, "models": 0}
    api = dest / "api"
    _write_json(api / "fields.json", table.fields())
    _write_json(
        api / "rows.json", [{k: explore_table.to_json(v) for k, v in r.items()} for r in rows]
    )
    for row in rows:
        run_id = row["id"]
        _write_json(api / "run" / f"{run_id}.json", explore.run_page(table, run_id))
        for name in explore.metric_names(table, run_id):
            drawn = explore.series(table, run_id, name, buckets=buckets)
            _write_json(api / "series" / run_id / f"{_safe(name)}.json", drawn.as_json())
            counts["series"] += 1
        counts["runs"] += 1
    has_history = git.resolve_commit(repo.root, "HEAD") is not None  # none before a first commit
    for metric in (f for f in table.fields() if f.startswith("metrics.") and has_history):
        _write_json(api / "history" / f"{_safe(metric)}.json",
                    explore.history(table, "HEAD", metric))  # fmt: skip
    models = explore_models.models(repo)
    _write_json(api / "models.json", models)
    for model in models:
        _write_json(
            api / "model" / f"{model['name']}.json", explore_models.model_page(repo, model["name"])
        )
        counts["models"] += 1
    _write_json(api / "check.json", explore_models.check_page(repo))
    (dest / "static").mkdir(parents=True, exist_ok=True)
    for path in STATIC.iterdir():
        if path.suffix in TYPES and path.name != "index.html":
            (dest / "static" / path.name).write_bytes(path.read_bytes())
    page = (STATIC / "index.html").read_text()
    page = page.replace('<script src="/static/', '<script src="static/').replace(
        'href="/static/', 'href="static/')  # fmt: skip
    page = page.replace(
        "<script src=", "<script>window.GITML_EXPORT = true;</script>\n<script src=", 1
    )
    (dest / "index.html").write_text(page)
    (dest / EXPORT_MARK).write_text(
        "written by `gitml ui --export`; rewritten by the next export\n"
    )
    return counts


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(value), default=str, allow_nan=False))


def _finite(value: Any) -> Any:
    """NaN and infinities as null, as the server's JSON answers have them (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _safe(name: str) -> str:
    """A metric name as a file name: characters other than letters, digits, . - _ escaped."""
    return "".join(c if c.isalnum() or c in "._-" else f"~{ord(c):x}~" for c in name)
