"""DVC pipelines: what a `dvc repro` read and wrote, from `dvc.lock`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gitml.errors import FileFormatError


def lock_artifacts(root: Path) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(inputs, outputs) of every stage in `dvc.lock`, as `[inputs]`/`[outputs]` entries.

    Outputs are every stage's outs; inputs are the deps no stage produces (the raw data and
    code the pipeline started from), so intermediate files appear once, as outputs.
    """
    lock = root / "dvc.lock"
    if not lock.is_file():
        return {}, {}
    return parse_lock(lock.read_text(), str(lock))


def load_yaml(text: str, source: str) -> Any:
    """A DVC YAML file's data (safe loader: no tags that build objects); one error line."""
    from ruamel.yaml import YAML, YAMLError

    try:
        return YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise FileFormatError(source, f"invalid YAML: {' '.join(str(exc).split())}") from exc


def parse_lock(
    text: str, source: str
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """`lock_artifacts` of a `dvc.lock` file's text; ``source`` names it in errors."""
    return lock_data_artifacts(load_yaml(text, source), source)


def lock_data_artifacts(
    data: Any, source: str
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """`parse_lock` of an already loaded `dvc.lock`."""
    stages = (data or {}).get("stages", {}) if isinstance(data, dict) else None
    if not isinstance(stages, dict):
        raise FileFormatError(source, "field stages: expected a mapping of stage names")
    outs: dict[str, dict[str, Any]] = {}
    deps: dict[str, dict[str, Any]] = {}
    for stage in stages.values():
        if not isinstance(stage, dict):
            raise FileFormatError(source, "field stages: each stage is a mapping")
        for entry in stage.get("outs", []) or []:
            outs.update(_artifact(entry))
        for entry in stage.get("deps", []) or []:
            deps.update(_artifact(entry))
    inputs = {path: ref for path, ref in deps.items() if path not in outs}
    return inputs, outs


def _artifact(entry: Any) -> dict[str, dict[str, Any]]:
    md5 = entry.get("md5") if isinstance(entry, dict) else None
    if not isinstance(md5, str) or "path" not in entry:
        return {}
    ref: dict[str, Any] = {"md5": md5, "size": _count(entry.get("size", 0))}
    if "nfiles" in entry:
        ref["nfiles"] = _count(entry["nfiles"])
    return {str(entry["path"]): ref}


def _count(value: Any) -> int:
    """A size or file count from YAML: a non-negative integer, else 0 (DVC re-hashes it)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def lock_params(data: Any) -> dict[str, Any]:
    """The params a loaded `dvc.lock` says its stages ran with, as a nested mapping.

    ``params.yaml``'s keys come as they are (``train.C`` is ``{"train": {"C": ...}}``); another
    params file's keys sit under its name without the suffix (``config.yaml`` -> ``config``).
    """
    out: dict[str, Any] = {}
    stages = (data or {}).get("stages") if isinstance(data, dict) else None
    for stage in (stages or {}).values() if isinstance(stages, dict) else ():
        files = stage.get("params") if isinstance(stage, dict) else None
        for file, values in (files or {}).items() if isinstance(files, dict) else ():
            if not isinstance(values, dict):
                continue
            base = [] if file == "params.yaml" else [Path(str(file)).stem]
            for key, value in values.items():
                _put(out, [*base, *str(key).split(".")], value)
    return out


def _put(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        child = tree.setdefault(part, {})
        if not isinstance(child, dict):
            return  # a key that is both a value and a table: the first one kept
        tree = child
    tree.setdefault(path[-1], value)


def metrics_names(pipeline: Any) -> list[str]:
    """The metrics files a loaded `dvc.yaml` declares, at the top and in each stage."""
    return _declared(pipeline, "metrics")


def plots_names(pipeline: Any) -> list[str]:
    """The plots files and folders a loaded `dvc.yaml` declares, at the top and in each stage.

    A top-level plot given by id names its files as the keys of its `y` (and `x`) mapping.
    """
    return _declared(pipeline, "plots")


def _declared(pipeline: Any, section: str) -> list[str]:
    if not isinstance(pipeline, dict):
        return []
    entries = list(pipeline.get(section) or [])
    for stage in (pipeline.get("stages") or {}).values():
        if isinstance(stage, dict):
            entries += list(stage.get(section) or [])
    names: list[Any] = []
    for entry in entries:
        if not isinstance(entry, dict) or not entry:
            names.append(entry)
            continue
        key, value = next(iter(entry.items()))
        axes = [value.get(a) for a in ("y", "x")] if isinstance(value, dict) else []
        files = [f for axis in axes if isinstance(axis, dict) for f in axis]
        names += files or [key]
    return [n for n in dict.fromkeys(names) if isinstance(n, str) and not n.startswith("${")]


def declared_metrics(root: Path) -> list[Path]:
    """The metrics files the working tree's `dvc.yaml` declares, inside the repository only."""
    pipeline = root / "dvc.yaml"
    if not pipeline.is_file():
        return []
    inside = root.resolve()
    found = [(root / name).resolve() for name in
             metrics_names(load_yaml(pipeline.read_text(), str(pipeline)))]  # fmt: skip
    return [path for path in found if inside in path.parents]


def numeric_leaves(data: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers in a metrics document, nested keys joined with dots; booleans are not."""
    out: dict[str, float] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(numeric_leaves(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out
