"""What `gitml ui` shows of the registry, its monitoring, and of `gitml check`.

Models, versions, aliases and their history; the check's findings. The drift and
live-performance summaries kept for each model are listed oldest first; a file that cannot be
read is named, and the rest are still shown.
"""

from __future__ import annotations

from typing import Any

from gitml import store
from gitml.check.core import check as run_check
from gitml.errors import GitmlError
from gitml.monitoring.monitor import MONITOR_DIR
from gitml.registry import versions as registry
from gitml.repo import Repo


def models(repo: Repo) -> list[dict[str, Any]]:
    """Every registered model: its versions, latest and aliases."""
    return [
        {"name": name, "versions": len(doc["versions"]), "aliases": dict(doc["aliases"]),
         "latest": max((v["version"] for v in doc["versions"]), default=None)}
        for name, doc in ((name, registry.load(repo, name)) for name in registry.names(repo))
    ]  # fmt: skip


def model_page(repo: Repo, name: str) -> dict[str, Any]:
    """One model: versions, aliases and their audit trail; drift and live performance reports."""
    doc = registry.load(repo, name)
    by_version: dict[int, list[str]] = {}
    for alias, number in doc["aliases"].items():
        by_version.setdefault(number, []).append(alias)
    newest_first = sorted(doc["versions"], key=lambda v: -v["version"])
    versions = [
        {**store.to_json_types(dict(v)), "aliases": sorted(by_version.get(v["version"], []))}
        for v in newest_first
    ]
    return {"name": name, "description": doc.get("description"), "versions": versions,
            "aliases": dict(doc["aliases"]),
            "events": [store.to_json_types(dict(e)) for e in reversed(doc["history"])],
            "commits": registry.history(repo, name), "reports": reports(repo, name)}  # fmt: skip


def reports(repo: Repo, name: str) -> dict[str, list[dict[str, Any]]]:
    """The drift and performance summaries kept for ``name``, oldest first; bad files skipped."""
    folder = repo.gitml_dir / MONITOR_DIR / name
    found: dict[str, list[dict[str, Any]]] = {"drift": [], "performance": [], "unreadable": []}
    for kind in ("drift", "performance"):
        for path in sorted(folder.glob(f"{kind}-*.toml")) if folder.is_dir() else []:
            try:
                summary = store.read_toml(path, kind=kind)
            except GitmlError as exc:
                found["unreadable"].append({"file": repo.relpath(path), "error": exc.message})
                continue
            found[kind].append({"file": repo.relpath(path), **store.to_json_types(summary)})
    return found


def check_page(repo: Repo, rev: str | None = None) -> dict[str, Any]:
    """`gitml check` of the working tree (or ``rev``), as `--format json` has it.

    Nothing is fetched: objects are looked for in the DVC cache and the remote as they are.
    """
    report = run_check(repo, rev=rev or None, fetch=False)
    return {"target": report.target, "failed": report.failed, "counts": report.counts,
            "findings": [f.to_json() for f in report.findings]}  # fmt: skip
