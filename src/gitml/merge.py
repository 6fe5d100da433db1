"""The git merge driver for gitml's shared files: `metrics.toml` and the model registry.

Runs are one immutable folder each, so they never conflict. The two files that every branch
touches are merged by meaning instead of by line:

- `metrics.toml` summarises a run: when both branches added runs, the better one by the
  `[registry] metric` wins, else the newer one (the rule `gitml run` follows when writing it).
- a `.dvc` pointer to a run's output (`gitml run` names the run in it): the newer run wins.
- a registry file (`.gitml/models/<name>.toml`) merges versions (a version both branches added
  under the same number is renumbered), history (union, in time order) and aliases (three-way).
  Only a true disagreement fails: both branches moved the same alias to different versions.

Anything else is merged key by key, three-way; a key changed differently on both sides conflicts.
On a conflict the file gets git's usual markers and the driver says what disagrees.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gitml import store
from gitml.data.pipeline import load_yaml
from gitml.errors import GitmlError
from gitml.git import merge_file
from gitml.repo import Repo, SummaryRule
from gitml.repo import summary_rule as rule_of

MISSING: Any = object()


class MergeConflict(GitmlError):
    """Both branches changed the same thing in different ways."""

    exit_code = 1


def merge3(base: Any, ours: Any, theirs: Any, where: str = "") -> Any:
    """Three-way merge of TOML values; MISSING stands for an absent key."""
    if ours == theirs:
        return ours
    if ours == base:
        return theirs
    if theirs == base:
        return ours
    if isinstance(ours, dict) and isinstance(theirs, dict):
        base = base if isinstance(base, dict) else {}
        merged = {}
        for key in [*ours, *(k for k in theirs if k not in ours)]:
            value = merge3(
                base.get(key, MISSING),
                ours.get(key, MISSING),
                theirs.get(key, MISSING),
                f"{where}.{key}" if where else key,
            )
            if value is not MISSING:
                merged[key] = value
        return merged
    raise MergeConflict(
        f"{where or 'the file'}: this branch has {_show(ours)}, the other has {_show(theirs)}"
    )


def merge_summary(
    base: dict[str, Any],
    ours: dict[str, Any],
    theirs: dict[str, Any],
    rule: SummaryRule | None = None,
) -> Any:
    """metrics.toml: both branches added runs, so show the better (by ``rule``) or newer run."""
    mine, other, before = ours.get("run"), theirs.get("run"), base.get("run")
    if mine and other and mine != other and before not in (mine, other):
        if rule is not None:
            a = ours.get("metrics", {}).get(rule.metric)
            b = theirs.get("metrics", {}).get(rule.metric)
            if isinstance(a, int | float) and isinstance(b, int | float) and a != b:
                return ours if rule.prefers(a, b) else theirs
        return ours if str(mine) > str(other) else theirs
    return merge3(base, ours, theirs)


def summary_rule() -> SummaryRule | None:
    """The project's rule for metrics.toml, read from the repository git runs the driver in."""
    try:
        return rule_of(Repo.find())
    except GitmlError:
        return None


def merge_registry(base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any]) -> Any:
    """A registry file: union of versions and history, three-way aliases."""
    name = ours.get("name") or theirs.get("name") or "the model"
    versions, renumber = _merge_versions(name, base, ours, theirs)

    def mapped(value: Any) -> Any:
        return renumber.get(value, value) if isinstance(value, int) else value

    their_aliases = {alias: mapped(v) for alias, v in theirs.get("aliases", {}).items()}
    history = [dict(event) for event in ours.get("history", [])]
    for event in theirs.get("history", []):
        if event in base.get("history", []):
            continue
        renamed = {k: mapped(v) if k in {"version", "previous"} else v for k, v in event.items()}
        if renamed not in history:
            history.append(renamed)
    history.sort(key=lambda event: str(event.get("at", "")))
    shared = ("versions", "aliases", "history")
    rest = merge3(_without(base, *shared), _without(ours, *shared), _without(theirs, *shared))
    return {
        **rest,
        "versions": [versions[n] for n in sorted(versions)],
        "aliases": _merge_aliases(
            name, base.get("aliases", {}), ours.get("aliases", {}), their_aliases
        ),
        "history": history,
    }


def _merge_versions(
    name: str, base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any]
) -> tuple[dict[int, Any], dict[int, int]]:
    """Versions by number; one the other side added under a taken number gets the next free."""
    base_versions = {v["version"]: v for v in base.get("versions", [])}
    versions = {v["version"]: dict(v) for v in ours.get("versions", [])}
    renumber: dict[int, int] = {}
    for version in theirs.get("versions", []):
        number = version["version"]
        if number in base_versions:  # changed (or not) on their side: merge the entry
            mine = versions.get(number, MISSING)
            merged = merge3(base_versions[number], mine, version, f"{name} v{number}")
            if merged is MISSING:
                versions.pop(number, None)
            else:
                versions[number] = merged
            continue
        same = next((n for n, v in versions.items() if _same_artifact(v, version)), None)
        if same is None:
            same = max([*versions, *base_versions, 0]) + 1
            versions[same] = {**version, "version": same}
        renumber[number] = same
    for number in set(base_versions) - {v["version"] for v in theirs.get("versions", [])}:
        if number in versions and versions[number] == base_versions[number]:
            del versions[number]  # they removed it and we did not touch it
    return versions, renumber


def _merge_aliases(
    name: str, base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any]
) -> dict[str, Any]:
    """Three-way per alias; both sides moving one alias to different versions is a conflict."""
    aliases = {}
    for alias in dict.fromkeys([*ours, *theirs]):
        mine, other = ours.get(alias, MISSING), theirs.get(alias, MISSING)
        before = base.get(alias, MISSING)
        if mine != other and before not in (mine, other):
            raise MergeConflict(
                f"model '{name}': both branches moved '{alias}', this branch to "
                f"{_version(mine)} and the other to {_version(other)}; keep one, then "
                f"`gitml model promote {name} <version> --to {alias}`"
            )
        value = other if mine == before else mine
        if value is not MISSING:
            aliases[alias] = value
    return aliases


def merge_files(base: Path, ours: Path, theirs: Path) -> dict[str, Any]:
    """Merge three versions of a gitml TOML file; the kind is told by its content."""
    docs = _load(base), _load(ours), _load(theirs)
    if any("versions" in doc or "aliases" in doc for doc in docs):
        return merge_registry(*docs)
    if any("run" in doc and "metrics" in doc for doc in docs):
        return merge_summary(*docs, summary_rule())
    return merge3(*docs)


def pointer_run(data: bytes, source: str) -> str | None:
    """The run a `.dvc` pointer written by `gitml run` names under `meta.gitml_run`, if any."""
    doc = load_yaml(data.decode(errors="replace"), source) if data.strip() else None
    meta = doc.get("meta") if isinstance(doc, dict) else None
    run = meta.get("gitml_run") if isinstance(meta, dict) else None
    return run if isinstance(run, str) else None


def merge_pointer(base: Path, ours: Path, theirs: Path, shown_as: str) -> bytes:
    """A `.dvc` pointer both branches changed: a run's output keeps the newer run's pointer.

    That is the rule metrics.toml follows too. A pointer that is not a run's output (data the
    team `dvc add`-ed) is a real disagreement.
    """
    sides = ours.read_bytes(), theirs.read_bytes()
    if sides[0] == sides[1] or sides[1] == _read(base):
        return sides[0]
    if sides[0] == _read(base):
        return sides[1]
    runs = pointer_run(sides[0], shown_as), pointer_run(sides[1], shown_as)
    if runs[0] is None or runs[1] is None:
        raise MergeConflict(
            f"{shown_as}: both branches changed this DVC pointer; keep one, then `dvc checkout`"
        )
    return sides[0] if runs[0] > runs[1] else sides[1]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def run_driver(base: Path, ours: Path, theirs: Path, shown_as: str) -> None:
    """What git runs for `merge=gitml`: write the merged file over ``ours`` or raise."""
    if shown_as.endswith(".dvc"):
        try:
            pointer = merge_pointer(base, ours, theirs, shown_as)
        except GitmlError as exc:
            _write_markers(base, ours, theirs)
            raise MergeConflict(str(exc) if isinstance(exc, MergeConflict) else
                                f"{shown_as}: cannot merge ({exc})") from None  # fmt: skip
        store.atomic_write(ours, pointer)
        return
    try:
        merged = merge_files(base, ours, theirs)
    except GitmlError as exc:  # a real disagreement, or a file that is not valid TOML
        _write_markers(base, ours, theirs)
        said = str(exc) if isinstance(exc, MergeConflict) else f"cannot merge by meaning ({exc})"
        raise MergeConflict(f"{shown_as}: {said}") from None
    store.write_toml(ours, merged)


def _write_markers(base: Path, ours: Path, theirs: Path) -> None:
    """Leave git's usual line-based result, with conflict markers, for the user to resolve."""
    merge_file(ours, base, theirs)


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return {}
    return store.parse_toml(text, source=path.name) if text.strip() else {}


def _same_artifact(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.get("md5") == b.get("md5") and a.get("run") == b.get("run")


def _without(doc: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in keys}


def _version(value: Any) -> str:
    return "no version (removed)" if value is MISSING else f"v{value}"


def _show(value: Any) -> str:
    return "nothing (removed)" if value is MISSING else repr(value)
