"""Where `gitml drift`'s two sides come from: the reference and the current data.

A reference is a data file, a run's input, or a registered model's training input, read
through the profile the run stored when there is one (so the raw data need not be fetched); the
current data is a file or what `gitml serve` logged (`requests`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml import git
from gitml.data import ArtifactRef
from gitml.data.checkout import verified_object
from gitml.errors import GitmlError, UsageError
from gitml.monitoring.monitor import read_requests
from gitml.monitoring.profile import FeatureProfile, profile_path, read_columns, read_profile
from gitml.query.api import resolve
from gitml.query.indexed import record_of
from gitml.records import Artifact
from gitml.registry import versions as registry
from gitml.registry.ref import Resolved
from gitml.repo import Repo

REQUESTS = "requests"


@dataclass
class Reference:
    """The reference side: profiles, or raw data, and the model when it names one."""

    label: str
    name: str
    profiles: dict[str, FeatureProfile] | None = None
    frame: Any = None
    features: list[str] | None = None
    model: Resolved | None = None  # the model version, for prediction drift
    source: tuple[str, Artifact] | None = None  # the profiled input: path, md5 and size


def resolve_reference(repo: Repo, spec: str | Resolved) -> Reference:
    """A data file, a run id, or ``name@alias`` (its run's training input and its model).

    A model version already resolved is used as it is: the reference, and the model that
    prediction drift loads, are that version even if its alias has moved since.
    """
    if isinstance(spec, Resolved):
        return _from_version(repo, spec)
    path = Path(spec)
    if path.suffix.lower() in (".csv", ".parquet", ".pq"):
        if not path.is_file():
            raise UsageError("--reference", f"{spec}: no such file")
        return Reference(label=spec, name=path.stem, frame=read_columns(path))
    if "@" in spec:
        return _from_version(repo, registry.resolve(repo, spec))
    return _from_run(repo, spec, None)


def _from_version(repo: Repo, resolved: Resolved) -> Reference:
    """A model version's training input, and that version (for prediction drift)."""
    version = resolved.version
    signature = version.get("signature")
    features = [c["name"] for c in signature["inputs"]] if signature else []
    ref = _from_run(repo, version["run"], features or None)
    ref.label = f"{resolved.ref} (v{resolved.number}, run {version['run']}, {ref.label})"
    ref.name = resolved.ref.name
    ref.model = resolved
    return ref


def _from_run(repo: Repo, run_ref: str, features: list[str] | None) -> Reference:
    """A run's profiled (or else first tabular) input that holds the features."""
    run = resolve(repo, run_ref)
    inputs = record_of(repo, run).get("inputs") or {}
    tabular = {p: r for p, r in inputs.items() if p.endswith((".csv", ".parquet", ".pq"))}
    if not tabular:
        raise UsageError("--reference", f"run {run.run_id} logged no CSV or Parquet input")
    for input_path, ref in tabular.items():
        if "profile" not in ref:
            continue
        file = profile_path(repo.run_dir(run.run_id), input_path)
        if file.is_file():
            profiles = read_profile(file)
        elif run.commit:
            profiles = _profile_at(repo, run.commit, file)
        else:
            continue
        if not features or set(features) <= set(profiles):
            label = f"profile of {input_path}"
            return Reference(label, run.run_id, profiles=profiles, features=features,
                             source=(input_path, ref))  # fmt: skip
    for input_path, ref in tabular.items():
        frame = _read_input(repo, input_path, ref)
        if not features or set(features) <= set(map(str, frame.columns)):
            return Reference(f"{input_path} from the DVC cache", run.run_id, frame=frame,
                             features=features)  # fmt: skip
    raise UsageError("--reference", f"run {run.run_id}: no input holds the model's features")


def _profile_at(repo: Repo, commit: str, file: Path) -> dict[str, FeatureProfile]:

    data = git.read_file_at(repo.root, commit, file.relative_to(repo.root).as_posix())
    with tempfile.NamedTemporaryFile(suffix=".parquet") as tmp:
        tmp.write(data)
        tmp.flush()
        return read_profile(Path(tmp.name))


def load_current(repo: Repo, spec: str, reference: Reference) -> tuple[str, Any]:
    """A data file, or `requests` / `requests:<name>`: what a served model was asked."""
    if spec == REQUESTS or spec.startswith(f"{REQUESTS}:"):
        name = spec.partition(":")[2] or reference.name
        frame = read_requests(repo, name)
        if frame.empty:
            raise UsageError("--current", f"{spec}: model {name!r} has no logged requests")
        columns = {c: c.removeprefix("input.") for c in frame.columns if c.startswith("input.")}
        keep = [*columns, *(["prediction"] if "prediction" in frame.columns else [])]
        return f"{len(frame)} requests served for {name}", frame[keep].rename(columns=columns)
    path = Path(spec)
    if not path.is_file():
        raise UsageError("--current", f"{spec}: no such file (or give requests:<model>)")
    frame = read_columns(path)
    if frame is None:
        raise UsageError("--current", f"{spec}: give a .csv or .parquet file, or requests")
    return spec, frame


def cached_source(repo: Repo, reference: Reference) -> Any:
    """The profiled training data itself, when the local DVC cache has it (never fetched)."""
    if reference.source is None:
        return None
    try:
        return _read_input(repo, *reference.source, fetch=False)
    except GitmlError:
        return None


def _read_input(repo: Repo, path: str, ref: Artifact, *, fetch: bool = True) -> Any:
    """A run's CSV or Parquet input, read from its verified DVC cache object."""
    obj = verified_object(repo.root, ArtifactRef(md5=ref["md5"], size=ref["size"]), fetch=fetch)
    return read_columns(obj, suffix=Path(path).suffix)
