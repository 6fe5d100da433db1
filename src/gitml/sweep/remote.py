"""What a Dask worker runs for gitml: a trial, or a partition's predictions, from the remotes.

A worker needs nothing of the driver's but the git remote and the DVC remote. It keeps one
clone of the git remote in its local directory (fetching the ref the driver pushed), makes a
worktree slot per thread from it, gets data from the DVC remote into a cache of its own, and
pushes what a trial logged back to the DVC remote. The run folder itself goes back to the
driver as bytes in the task's result; the driver writes it into its repository and commits.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gitml import git
from gitml.data import cache_path
from gitml.data.transfer import fetch, push
from gitml.errors import GitmlError
from gitml.predict import predict_file
from gitml.repo import Repo
from gitml.sweep.trial import Request, StepHook, run_in_slot
from gitml.sweep.workspace import Slot, Snapshot, read_run_files
from gitml.tracking import record

_lock = threading.Lock()  # one git operation on the worker's clone at a time
VERDICT_SECONDS = 30.0  # how long a worker waits for the pruner's answer to a step


@dataclass(frozen=True)
class Source:
    """Where a worker gets the code and data: the remotes and the commit (with its patch)."""

    git_url: str
    ref: str
    commit: str
    dvc_remote: str
    patch: bytes | None = None


def run_trial(source: Source, req: Request, channel: str | None = None) -> dict[str, Any]:
    """Run one trial on this worker; returns its outcome and its run folder(s) as bytes.

    With a ``channel`` (a pruned sweep), each new step of the metric goes to the driver, whose
    pruner answers whether the trial stops (`asking`).
    """
    base = _base()
    slot = _slot(base, source)
    log = base / f"trial-{req.number}.log"
    with asking(channel) if channel else contextlib.nullcontext() as hook:
        outcome = run_in_slot(slot, req, hook, log, threading.Event())
    runs: dict[str, dict[str, bytes]] = {}
    for run_dir in slot.runs():
        rec = record.read(Repo(slot.path), run_dir.name)
        md5s = [ref["md5"] for ref in rec.get("outputs", {}).values()]
        report = push(slot.path, md5s)
        if report.missing:
            raise GitmlError(f"run {run_dir.name}: outputs missing from the worker's cache: "
                             f"{', '.join(report.missing)}")  # fmt: skip
        runs[run_dir.name] = read_run_files(run_dir)
        shutil.rmtree(run_dir)
    return {"outcome": asdict(outcome), "runs": runs}


@contextlib.contextmanager
def asking(channel: str) -> Iterator[StepHook]:
    """A pruning hook that asks the driver: a step goes out, the pruner's verdict comes back.

    Both travel through Dask queues on the scheduler (``<channel>-steps``, ``-verdicts``). A
    driver that does not answer within `VERDICT_SECONDS` lets the trial go on.
    """
    from distributed import Queue

    steps, verdicts = Queue(f"{channel}-steps"), Queue(f"{channel}-verdicts")

    def on_step(step: int, value: float) -> bool:
        steps.put([step, value])
        deadline = time.monotonic() + VERDICT_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            try:
                answered, stop = verdicts.get(timeout=left)
            except TimeoutError:
                break
            if answered == step:  # an older step's late verdict is dropped
                return bool(stop)
        return False

    try:
        yield on_step
    finally:
        steps.close()
        verdicts.close()


def predict_partition(source: Source, spec: str, md5: str, suffix: str, proba: bool) -> bytes:
    """Predict one partition (an object in the DVC remote); returns the predictions as Parquet."""
    base = _base()
    slot = _slot(base, source, data=False)
    fetch(slot.path, [md5])
    cached = cache_path(slot.path, md5)
    if not cached.is_file():
        raise GitmlError(f"partition {md5}: not in the DVC remote {source.dvc_remote}")
    work = Path(tempfile.mkdtemp(dir=base))
    try:
        part = work / f"part{suffix}"
        shutil.copyfile(cached, part)
        out = work / "out.parquet"
        predict_file(Repo(slot.path), spec, part, out, proba=proba, progress=False)
        return out.read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _slot(base: Path, source: Source, *, data: bool = True) -> Slot:
    code = Snapshot(source.commit, None, source.patch)
    with _lock:
        clone = base / "repo"
        if not (clone / ".git").exists():
            shutil.rmtree(clone, ignore_errors=True)
            git.run_git(base, "clone", "--quiet", "--no-checkout", source.git_url, str(clone))
        git.run_git(clone, "fetch", "--quiet", "origin", f"+{source.ref}:{source.ref}")
        slot = Slot(clone, base / f"slot-{threading.get_ident()}", code,
                    dvc_cache=base / "dvc-cache", dvc_remote=source.dvc_remote)  # fmt: skip
        slot.prepare(data=data)
    return slot


def _base() -> Path:
    """The worker's own folder for gitml (in its local directory)."""
    try:
        from distributed import get_worker

        folder = Path(get_worker().local_directory) / "gitml"
    except (ImportError, ValueError):  # not on a Dask worker: a test, or a thread pool
        folder = Path(tempfile.gettempdir()) / "gitml-worker"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
