"""Lineage: from an artifact to the run that produced it, its code and its inputs, recursively.

The graph is derived from run records alone (every run lists its inputs and outputs by md5), so
it covers every branch's history and needs no extra bookkeeping: an input's producer is the run
whose outputs hold the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.data.add import file_md5, pointer_md5
from gitml.errors import GitmlError, RunNotFoundError
from gitml.query.api import resolve, row_lookup
from gitml.query.index_sql import BY_ID, PRODUCED, WROTE
from gitml.registry import versions as registry
from gitml.repo import Repo

if TYPE_CHECKING:
    from gitml.query.api import Rows

Row = dict[str, Any]


@dataclass
class Artifact:
    """A file version: path and md5, with the run that produced it (None for raw data)."""

    path: str
    md5: str | None
    producer: RunNode | None = None
    note: str = ""


@dataclass
class RunNode:
    """A run with its code and the artifacts it read."""

    row: Row
    inputs: list[Artifact] = field(default_factory=list)
    repeated: bool = False  # already shown higher in the tree
    deeper: bool = False  # below the depth asked for: its inputs were not looked up


def build(
    repo: Repo, target: str, *, runs_deep: int | None = None, fresh: bool = False
) -> Artifact | RunNode:
    """The lineage tree of ``target``: a path in the repository, or a run id or prefix.

    Runs are looked up in the index by id, by output md5 and by output path, so memory does not
    grow with the number of runs in the history. ``runs_deep`` stops after that many runs down
    any branch (a page shows a few levels; a chain of a thousand runs would be a thousand).
    ``fresh``: the index was just refreshed (see `query.api.indexed`).
    """
    depth = runs_deep if runs_deep is not None else -1  # negative: no limit
    with row_lookup(repo, fresh=fresh) as rows:
        seen: set[str] = set()
        if "@" in target and not (repo.root / target).exists():
            return _model_node(repo, target, rows, seen, depth)
        path = _as_repo_path(repo, target)
        if path is not None:
            md5 = current_md5(repo, path)
            made = rows(WROTE, path)
            if not made and md5 is None:
                raise GitmlError(f"{target}: no such file, and no run produced it")
            node = Artifact(path, md5)
            exact = _producers(rows, md5) if md5 else []
            if exact:
                node.producer = _run_node(exact[0], rows, seen, depth)
            elif made:
                latest = max(made, key=lambda r: r.get("start_time") or "")
                node.producer = _run_node(latest, rows, seen, depth)
                node.note = "changed since: the latest run that wrote this path made other bytes"
            return node
        try:
            run = resolve(repo, target, fresh=fresh)
        except RunNotFoundError:
            raise GitmlError(f"{target}: neither a file in the repository nor a run id") from None
        return _run_node(run.row or {}, rows, seen, depth)


def _model_node(repo: Repo, spec: str, rows: Rows, seen: set[str], depth: int) -> Artifact:
    """A registered model version (name@alias, name@3): its artifact and the run behind it."""
    resolved = registry.resolve(repo, spec)
    version = resolved.version
    label = f"{spec} = {resolved.ref.name} v{resolved.number}: {version['path']}"
    node = Artifact(label, version["md5"])
    found = rows(BY_ID, version["run"])
    if not found:
        node.note = f"run {version['run']} is not in this repository's history"
    else:
        node.producer = _run_node(found[0], rows, seen, depth)
    return node


def _producers(rows: Rows, md5: str) -> list[Row]:
    """The finished runs whose outputs hold these bytes, latest first."""
    made = [r for r in rows(PRODUCED, md5) if r.get("status") == "finished"]
    return sorted(made, key=lambda r: r.get("start_time") or "", reverse=True)


def _run_node(row: Row, rows: Rows, seen: set[str], depth: int) -> RunNode:
    node = RunNode(row)
    if row["id"] in seen:
        node.repeated = True
        return node
    if depth == 0:
        node.deeper = True
        return node
    seen.add(row["id"])
    for key, md5 in sorted(row.items()):
        if key.startswith("inputs.") and isinstance(md5, str):
            art = Artifact(key.partition(".")[2], md5)
            made = [r for r in _producers(rows, md5) if r["id"] != row["id"]]
            if made:
                art.producer = _run_node(made[0], rows, seen, depth - 1)
            node.inputs.append(art)
    return node


def _as_repo_path(repo: Repo, target: str) -> str | None:
    candidate = Path(target)
    absolute = candidate if candidate.is_absolute() else Path.cwd() / candidate
    try:
        rel = absolute.resolve().relative_to(repo.root).as_posix()
    except ValueError:
        return None
    pointer = Path(str(absolute) + ".dvc")
    return rel if absolute.exists() or pointer.exists() or "/" in target or "." in target else None


def current_md5(repo: Repo, path: str) -> str | None:
    """The md5 of ``path`` now: from its `.dvc` pointer if it has one, else by hashing it."""
    recorded = pointer_md5(repo.root / f"{path}.dvc")
    if recorded is not None:
        return recorded
    file = repo.root / path
    return file_md5(repo.root, file) if file.is_file() else None


# -- rendering -----------------------------------------------------------------------------------
def _run_label(row: Row) -> str:
    name = f" {row['name']!r}" if row.get("name") else ""
    when = (row.get("start_time") or "")[:16].replace("T", " ")
    return f"run {row['id']}{name} ({row.get('status')}, {when})"


def _code_label(row: Row) -> str:
    commit = (row.get("code.commit") or "no commit")[:8]
    branch = f" on {row['code.branch']}" if row.get("code.branch") else ""
    dirty = ", dirty: patch code.patch" if row.get("code.dirty") else ", clean"
    return f"code {commit}{branch}{dirty}"


def render_text(root: Artifact | RunNode) -> str:
    """A tree for the terminal."""
    lines: list[str] = []
    _text(root, "", "", lines)
    return "\n".join(lines) + "\n"


def _text(node: Artifact | RunNode, lead: str, child_lead: str, out: list[str]) -> None:
    if isinstance(node, Artifact):
        md5 = (node.md5 or "missing")[:8]
        note = f"  [{node.note}]" if node.note else ""
        out.append(f"{lead}{node.path} (md5 {md5}){note}")
        child = node.producer
        if child is None:
            out.append(f"{child_lead}└── raw data: no run produced these bytes")
        else:
            _text(child, f"{child_lead}└── produced by ", f"{child_lead}    ", out)
        return
    more = " (shown above)" if node.repeated else ""
    more = f" (deeper: `gitml lineage {node.row['id']}`)" if node.deeper else more
    out.append(lead + _run_label(node.row) + more)
    if node.repeated or node.deeper:
        return
    details = [_code_label(node.row)]
    if node.row.get("command"):
        details.append(f"command: {node.row['command']}")
    if not node.inputs:
        details.append("inputs: none recorded")
    items: list[Any] = details + node.inputs
    for i, item in enumerate(items):
        last = i == len(items) - 1
        branch, cont = ("└── ", "    ") if last else ("├── ", "│   ")
        if isinstance(item, str):
            out.append(f"{child_lead}{branch}{item}")
        else:
            _text(item, f"{child_lead}{branch}input ", child_lead + cont, out)


def to_dict(node: Artifact | RunNode) -> dict[str, Any]:
    """The tree as JSON-ready dicts."""
    if isinstance(node, Artifact):
        out: dict[str, Any] = {"artifact": node.path, "md5": node.md5}
        if node.note:
            out["note"] = node.note
        out["produced_by"] = to_dict(node.producer) if node.producer else None
        return out
    row = node.row
    result: dict[str, Any] = {
        "run": row["id"],
        "name": row.get("name"),
        "status": row.get("status"),
        "code": {"commit": row.get("code.commit"), "branch": row.get("code.branch"),
                 "dirty": row.get("code.dirty")},
        "commit": row.get("commit"),
        "command": row.get("command"),
    }  # fmt: skip
    if node.repeated:
        result["repeated"] = True
    elif node.deeper:
        result["deeper"] = True
    else:
        result["inputs"] = [to_dict(a) for a in node.inputs]
    return result


def edges(root: Artifact | RunNode) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Nodes (id -> label) and edges (from, to, label) for graph formats."""
    nodes: dict[str, str] = {}
    links: list[tuple[str, str, str]] = []

    def walk(node: Artifact | RunNode) -> str:
        if isinstance(node, Artifact):
            digest = hashlib.sha1(node.path.encode(), usedforsecurity=False).hexdigest()[:6]
            key = f"a_{(node.md5 or 'none')[:12]}_{digest}"
            nodes[key] = f"{node.path}\\nmd5 {(node.md5 or '?')[:8]}"
            if node.producer is not None:
                links.append((walk(node.producer), key, "produced"))
            return key
        row = node.row
        key = "r_" + row["id"].replace("-", "_")
        nodes[key] = f"run {row['id']}\\n{row.get('name') or ''}"
        commit = row.get("code.commit")
        if commit:
            ckey = f"c_{commit[:12]}"
            nodes[ckey] = f"commit {commit[:8]}" + (" + patch" if row.get("code.dirty") else "")
            links.append((ckey, key, "code"))
        if not node.repeated:  # (a deeper node has no inputs looked up)
            for art in node.inputs:
                links.append((walk(art), key, "input"))
        return key

    walk(root)
    return nodes, sorted(set(links))


def render_dot(root: Artifact | RunNode) -> str:
    """Graphviz DOT."""
    nodes, links = edges(root)
    lines = ["digraph lineage {", "  rankdir=LR;"]
    for key, label in nodes.items():
        shape = {"a": "note", "r": "box", "c": "ellipse"}[key[0]]
        lines.append(f'  {key} [label="{label}", shape={shape}];')
    lines += [f'  {a} -> {b} [label="{label}"];' for a, b, label in links]
    return "\n".join([*lines, "}"]) + "\n"


def render_mermaid(root: Artifact | RunNode) -> str:
    """Mermaid flowchart, for PR comments and Markdown."""
    nodes, links = edges(root)
    lines = ["flowchart LR"]
    for key, label in nodes.items():
        text = label.replace("\\n", "<br>").replace('"', "'")
        lines.append(f'  {key}["{text}"]' if key[0] != "c" else f'  {key}(["{text}"])')
    lines += [f"  {a} -->|{label}| {b}" for a, b, label in links]
    return "\n".join(lines) + "\n"


def render(root: Artifact | RunNode, fmt: str) -> str:
    """The tree in ``fmt``: text, json, dot or mermaid."""
    if fmt == "json":
        return json.dumps(to_dict(root), indent=2) + "\n"
    if fmt == "dot":
        return render_dot(root)
    if fmt == "mermaid":
        return render_mermaid(root)
    return render_text(root)
