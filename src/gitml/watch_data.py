"""The data `gitml watch` trains on: the champion's training data plus labelled new files.

The champion is the version the watched alias names; its training data is its run's tabular
input, read from the working tree or restored by hash; each labelled file is appended to it
(and put back if retraining fails), and a holdout split off to compare champion and challenger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml import store
from gitml.data import ArtifactRef
from gitml.data.checkout import restore
from gitml.errors import UsageError
from gitml.monitoring.profile import read_table
from gitml.query.api import resolve
from gitml.query.indexed import record_of
from gitml.records import RunRecord
from gitml.registry.ref import Resolved
from gitml.repo import Repo

SUFFIXES = (".csv", ".parquet", ".pq")


def read_frame(file: Path) -> Any:
    """A labelled CSV/Parquet file as a DataFrame; a one-line error when it cannot be read."""
    try:
        frame = read_table(file)
    except Exception as exc:
        raise UsageError(str(file), f"cannot read it: {exc}") from exc
    if frame is None or frame.empty:
        raise UsageError(str(file), "no rows (or not a .csv/.parquet file)")
    return frame


def split_holdout(frame: Any, holdout: float) -> tuple[Any, Any]:
    """(train, holdout) rows, the holdout a ``holdout`` share, split the same way every time."""
    if not 0 < holdout < 1:
        raise UsageError("holdout", f"{holdout}: give a share between 0 and 1")
    shuffled = frame.sample(frac=1.0, random_state=0)
    cut = round(len(frame) * (1 - holdout))
    if cut < 1 or cut >= len(frame):
        raise UsageError("holdout", f"{len(frame)} rows cannot be split {1 - holdout:.0%}/"
                                    f"{holdout:.0%}")  # fmt: skip
    return shuffled.iloc[:cut], shuffled.iloc[cut:]


def target_column(frame: Any, features: list[str]) -> str:
    """The one column of ``frame`` that is not a feature: the label."""
    rest = [c for c in frame.columns if c not in features]
    if len(rest) != 1:
        raise UsageError("target", f"cannot tell the label column among {rest}; set "
                                   "[watch] target in .gitml/config.toml")  # fmt: skip
    return str(rest[0])


@dataclass(frozen=True)
class Champion:
    """The version the watched alias names, its run's record and training input."""

    resolved: Resolved  # read once per step: the alias may move while the step runs
    record: RunRecord
    data_path: str

    @property
    def version(self) -> Mapping[str, Any]:
        """The champion's registry version."""
        return self.resolved.version


def find_champion(repo: Repo, resolved: Resolved) -> Champion:
    """The version the watched alias named, with its run and its tabular training input."""
    version = resolved.version
    record = record_of(repo, resolve(repo, version["run"]))
    if not record.get("command"):
        raise UsageError("run", f"{record['id']}: no recorded command to retrain with")
    tabular = [p for p in (record.get("inputs") or {}) if p.endswith(SUFFIXES)]
    if not tabular:
        raise UsageError("run", f"{record['id']}: logged no CSV or Parquet training input")
    return Champion(resolved, record, tabular[0])


def training_data(repo: Repo, champion: Champion) -> Any:
    """The champion's training input, put back from the DVC cache if the tree lacks it."""
    path = store.safe_target(repo.root, champion.data_path)
    if not path.is_file():
        ref = champion.record["inputs"][champion.data_path]
        restore(repo.root, ArtifactRef(md5=ref["md5"], size=ref["size"]), path)
    return read_table(path)


def labelled_rows(columns: list[str], named: list[tuple[str, Any]]) -> Any:
    """The files' rows in the training data's columns; each file must have them all, filled."""
    import pandas as pd

    frames = []
    for name, frame in named:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise UsageError(name, f"lacks training column(s) {', '.join(missing)}")
        empty = int(frame[columns].isna().any(axis=1).sum())
        if empty:
            raise UsageError(name, f"{empty} rows have empty values; fill or drop them")
        frames.append(frame[columns])
    return pd.concat(frames, ignore_index=True)


def append_training_data(
    repo: Repo, champion: Champion, data: Any, rows: Any
) -> Callable[[], None]:
    """Append ``rows`` to the champion's training input; returns what puts it back."""
    import pandas as pd

    path = store.safe_target(repo.root, champion.data_path)
    ref = champion.record["inputs"][champion.data_path]
    combined = pd.concat([data, rows], ignore_index=True)
    tmp = path.with_name(f".{path.name}.gitml-watch.tmp")
    if path.suffix == ".csv":
        combined.to_csv(tmp, index=False)
    else:
        combined.to_parquet(tmp, index=False)
    tmp.replace(path)
    return lambda: restore(repo.root, ArtifactRef(md5=ref["md5"], size=ref["size"]), path)
