"""`gitml predict` over a partitioned dataset: a folder of CSV or Parquet files, one task each.

Each partition ``<folder>/<path>.parquet`` becomes ``<output>/<path>.parquet``. Here, partitions
are predicted one after another by `predict.predict_file`. With ``--dask ADDRESS`` each is a
task on the cluster: the partitions are put in the DVC cache and pushed to the DVC remote, the
commit (with the registry) is pushed to the git remote under ``refs/gitml/predict/<token>``,
and a worker fetches its partition and the model by hash, checks and predicts it exactly as
here (`sweep.remote.predict_partition`), and sends the predictions back as Parquet bytes.
Each output file is written whole or not at all.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from gitml import git, store
from gitml.data.add import add_to_cache
from gitml.data.transfer import push
from gitml.errors import GitmlError, UsageError
from gitml.predict import SUFFIXES, predict_file
from gitml.repo import Repo
from gitml.sweep.dask_engine import connect, publish, unpublish
from gitml.sweep.remote import predict_partition
from gitml.sweep.workspace import Snapshot


@dataclass(frozen=True)
class PartsResult:
    """What a partitioned prediction did."""

    partitions: int
    rows: int
    seconds: float
    output: Path


def partitions(folder: Path) -> list[Path]:
    """The data files of a partitioned dataset, in path order (hive folders included)."""
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    if not found:
        raise UsageError("input", f"{folder}: no .csv or .parquet file in this folder")
    return found


def predict_folder(
    repo: Repo, spec: str, folder: Path, output: Path, *, proba: bool = False,
    dask_address: str | None = None, git_remote: str = "origin", allow_findings: bool = False,
) -> PartsResult:  # fmt: skip
    """Predict every partition of ``folder`` into ``output`` (a folder), here or on Dask."""
    if output.suffix.lower() in SUFFIXES or output.is_file():
        raise UsageError("--output", f"{output}: the input is a folder, so give a folder")
    parts = partitions(folder)
    started = time.perf_counter()
    targets = [output / p.relative_to(folder).with_suffix(".parquet") for p in parts]
    if dask_address is None:
        rows = sum(predict_file(repo, spec, part, target, proba=proba, progress=False,
                                allow_findings=allow_findings).rows
                   for part, target in zip(parts, targets, strict=True))  # fmt: skip
    else:
        rows = _on_dask(repo, spec, parts, targets, proba, dask_address, git_remote)
    return PartsResult(len(parts), rows, time.perf_counter() - started, output)


def _on_dask(  # noqa: PLR0917
    repo: Repo, spec: str, parts: list[Path], targets: list[Path], proba: bool, address: str,
    git_remote: str,
) -> int:  # fmt: skip
    import pyarrow.parquet as pq

    client = connect(address)
    ref = f"refs/gitml/predict/{secrets.token_hex(6)}"
    published = False
    try:
        md5s = [add_to_cache(repo.root, part).md5 for part in parts]
        report = push(repo.root, md5s)
        if report.missing:
            raise GitmlError(f"could not push partition {report.missing[0]} to the DVC remote")
        head = git.run_git(repo.root, "rev-parse", "HEAD").strip()
        source = publish(repo, Snapshot(head, None, None), ref, git_remote)
        published = True
        tasks = [client.submit(predict_partition, source, spec, md5, part.suffix.lower(), proba,
                               pure=False, key=f"gitml-predict-{ref[-12:]}-{i}")
                 for i, (part, md5) in enumerate(zip(parts, md5s, strict=True))]  # fmt: skip
        rows = 0
        for part, target, task in zip(parts, targets, tasks, strict=True):
            try:
                data = task.result()
            except GitmlError as exc:
                raise GitmlError(f"{part}: {exc}") from exc
            target.parent.mkdir(parents=True, exist_ok=True)
            store.atomic_write(target, data)
            rows += pq.ParquetFile(target).metadata.num_rows
        return rows
    finally:
        if published:
            unpublish(repo, ref, git_remote)
        client.close()
