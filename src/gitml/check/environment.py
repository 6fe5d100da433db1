"""A registered model's training environment against the serving one, by major.minor.

scikit-learn, numpy and pandas (`[check] env_packages`) change what an unpickled model does
between minor versions; the serving side is this Python's packages or a pip freeze file
(`[check] serving_env`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gitml.check.findings import Finding
from gitml.check.where import line_of
from gitml.errors import GitmlError
from gitml.records import VersionRecord
from gitml.repo import Repo

DEFAULT_ENV_PACKAGES = ("scikit-learn", "numpy", "pandas")


def serving_versions(repo: Repo) -> dict[str, str]:
    """The serving environment's versions of the compared packages.

    From `[check] serving_env` (a pip freeze file), else this Python's installed packages.
    """
    conf = repo.config.get("check", {})
    if conf.get("serving_env"):
        return read_freeze(repo.root / conf["serving_env"], f"[check] serving_env "
                                                              f"{conf['serving_env']}")  # fmt: skip

    from importlib import metadata

    versions: dict[str, str] = {}
    for name in conf.get("env_packages", DEFAULT_ENV_PACKAGES):
        try:
            versions[_norm(name)] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def read_freeze(path: Path, label: str) -> dict[str, str]:
    """``name==version`` pins of a pip freeze or requirements file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise GitmlError(f"{label}: cannot read it: {exc.strerror}") from exc
    pins = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        name, sep, version = line.partition("==")
        if sep and name and not line.startswith("-"):
            pins[_norm(name.split("[", 1)[0])] = version.split(";", 1)[0].strip()
    return pins


def _norm(name: str) -> str:

    return re.sub(r"[-_.]+", "-", name).lower().strip()


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split("+", 1)[0].split(".")[:2])


def version_env(
    repo: Repo,
    path: str,
    subject: str,
    version: VersionRecord,
    record: Mapping[str, Any] | None,
    *,
    against: tuple[dict[str, str], Iterable[str]],
) -> list[Finding]:
    """Findings for a version whose run's packages differ from ``against`` (serving, names)."""
    serving, packages = against
    recorded = (record.get("env", {}).get("packages") if record else None) or {}
    trained = {_norm(k): v for k, v in recorded.items()}
    if not trained:
        return [Finding(rule="environment-unknown", file=path, subject=subject,
                        message=f"{subject}: run {version.get('run')} recorded no package "
                                "versions; its environment cannot be compared")]  # fmt: skip
    found = []
    for package in packages:
        key = _norm(package)
        if key not in trained:
            continue  # the training code did not use it
        have = serving.get(key)
        if have is not None and _major_minor(have) == _major_minor(trained[key]):
            continue
        now = f"serving has {have}" if have else "serving does not have it"
        found.append(Finding(
            rule="environment-mismatch", file=path, subject=subject, detail=package,
            line=line_of(repo, path, f'run = "{version.get("run")}"'),
            message=f"{subject} was trained with {package} {trained[key]}, {now}: an unpickled "
                    f"model can change behaviour across versions; retrain, or serve with "
                    f"{package}=={'.'.join(_major_minor(trained[key]))}.*"))  # fmt: skip
    return found
