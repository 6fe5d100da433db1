"""Trials (and batch predictions) on a Dask cluster: `gitml sweep --dask tcp://host:8786`.

Dask distributed was chosen over Ray by evidence (docs/guide/sweeps.md has the figures): its
wheels are 2.5 MB against Ray's 79 MB, it is pure Python, a cluster is two commands (`dask
scheduler`, `dask worker ADDRESS`), and `dask-jobqueue` starts the same workers as Slurm, PBS
or SGE jobs. It is imported only here, only when a cluster is named.

The driver publishes what workers need to the remotes, and nothing else: the code commit is
pushed to the git remote under ``refs/gitml/<kind>/<id>`` (gitml's pre-push hook uploads the
data it references), the working tree's DVC-tracked data is pushed to the DVC remote, and each
task carries the two URLs, the commit and the uncommitted patch. A trial's run folder comes back
as bytes in the task's result; its outputs are in the DVC remote, and the driver fetches them
into its cache before committing the sweep.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gitml import git, logs
from gitml.data.add import pointer_md5
from gitml.data.init import list_remotes
from gitml.data.transfer import fetch, push
from gitml.errors import GitmlError, UsageError
from gitml.repo import Repo
from gitml.sweep.remote import Source, run_trial
from gitml.sweep.study import Spec
from gitml.sweep.trial import Outcome, Request, StepHook, tag_trial
from gitml.sweep.workspace import Snapshot, harvest_files
from gitml.tracking import record

log = logs.get(__name__)
ANSWER_POLL_SECONDS = 0.5  # how often the driver looks at a pruned trial's task


def connect(address: str) -> Any:
    """A Dask client of the scheduler at ``address`` (one line if it cannot be reached)."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise UsageError("--dask", "Dask is not installed: pip install 'gitml[dask]'") from exc
    try:  # waits as long as Dask's distributed.comm.timeouts.connect says (30 s)
        return Client(address, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageError("--dask", f"no Dask scheduler answers at {address}: {exc}") from exc


def publish(repo: Repo, code: Snapshot, ref: str, git_remote: str) -> Source:
    """Push the code and data workers need; returns where they will find them."""
    try:
        git_url = git.run_git(repo.root, "remote", "get-url", git_remote).strip()
    except GitmlError as exc:
        raise UsageError("--git-remote", f"{git_remote!r} is not a git remote of this "
                         "repository; workers clone the code from it") from exc  # fmt: skip
    dvc_url = default_dvc_remote(repo)
    md5s = [m for p in _pointers(repo) if (m := pointer_md5(repo.root / p))]
    report = push(repo.root, md5s)
    if report.missing:
        raise GitmlError(f"data the workers need is in no cache nor remote: {report.missing[0]}")
    git.run_git(repo.root, "push", "--quiet", git_remote, f"+{code.commit}:{ref}")
    return Source(git_url, ref, code.commit, dvc_url, code.patch)


def unpublish(repo: Repo, ref: str, git_remote: str) -> None:
    """Delete the ref `publish` pushed (its commit stays wherever a branch has it)."""
    try:
        git.run_git(repo.root, "push", "--quiet", git_remote, f":{ref}")
    except GitmlError as exc:
        log.warning("could not delete %s on %s: %s", ref, git_remote, exc)


def default_dvc_remote(repo: Repo) -> str:
    """The URL of the DVC default remote, absolute (workers run elsewhere)."""
    remotes, default = list_remotes(repo.root)
    if not default or default not in remotes:
        raise UsageError("DVC remote", "no default DVC remote; workers get data and send models "
                         "through it: `gitml remote add NAME URL --default`")  # fmt: skip
    url = remotes[default]
    if "://" not in url and not Path(url).is_absolute():
        url = str((repo.root / ".dvc" / url).resolve())
    return url


def _pointers(repo: Repo) -> list[str]:
    listed = git.run_git(repo.root, "ls-files", "-z", "--", "*.dvc")
    return [p for p in listed.split("\0") if p and not p.startswith(".dvc/")]


class DaskEngine:
    """Runs a sweep's trials as tasks on a Dask cluster (see the module docstring)."""

    def __init__(self, repo: Repo, spec: Spec, address: str, *, jobs: int | None = None,
                 git_remote: str = "origin") -> None:  # fmt: skip
        self.repo, self.spec, self.address, self.git_remote = repo, spec, address, git_remote
        self.jobs = jobs or 0
        self.ref = f"refs/gitml/sweeps/{spec.id}"
        self._futures: list[Any] = []

    def connect(self) -> None:
        """Reach the scheduler (before the sweep writes anything: a bad address is exit 2)."""
        self.client = connect(self.address)

    def start(self) -> None:
        """Connect, publish the code and data, and size the pool to the cluster's threads."""
        if not hasattr(self, "client"):
            self.connect()
        self.source = publish(self.repo, self.spec.code, self.ref, self.git_remote)
        threads = sum(self.client.nthreads().values())
        if threads == 0:
            raise GitmlError(f"the Dask scheduler at {self.address} has no workers")
        self.jobs = self.jobs or threads
        self._pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="gitml-dask")

    def submit(self, req: Request, on_step: StepHook | None) -> Future[Outcome]:
        """Send one trial to the cluster; the future ends once its run is in the repository."""
        return self._pool.submit(self._run, req, on_step)

    def _run(self, req: Request, on_step: StepHook | None) -> Outcome:
        key = f"gitml-trial-{self.spec.id}-{req.number}"
        channel = f"gitml-prune-{self.spec.id}-{req.number}" if on_step else None
        task = self.client.submit(run_trial, self.source, req, channel, pure=False, key=key)
        self._futures.append(task)
        if channel and on_step:
            self._answer(task, channel, on_step)
        result = task.result()
        outcome = Outcome(**result["outcome"])
        for run_id, files in result["runs"].items():
            harvest_files(self.repo, run_id, files)
            rec = record.read(self.repo, run_id)
            fetch(self.repo.root, [ref["md5"] for ref in rec.get("outputs", {}).values()])
            tag_trial(self.repo, run_id, outcome if run_id == outcome.run_id else Outcome("fail"),
                      self.spec.code.branch)  # fmt: skip
        return outcome

    def _answer(self, task: Any, channel: str, on_step: StepHook) -> None:
        """Feed a trial's steps, as its worker sends them, to the pruner; send back its verdicts."""
        from distributed import Queue

        steps = Queue(f"{channel}-steps", client=self.client)
        verdicts = Queue(f"{channel}-verdicts", client=self.client)
        try:
            while not task.done():
                try:
                    step, value = steps.get(timeout=ANSWER_POLL_SECONDS)
                except TimeoutError:
                    continue
                verdicts.put([step, bool(on_step(int(step), float(value)))])
        finally:
            steps.close()
            verdicts.close()

    def close(self, *, abort: bool = False) -> None:
        """Wait for (or with ``abort``, cancel) the tasks; delete the pushed ref; disconnect."""
        if not hasattr(self, "client"):
            return
        if abort:
            for task in self._futures:
                task.cancel()
        if hasattr(self, "_pool"):
            self._pool.shutdown(wait=True)
        if hasattr(self, "source"):
            unpublish(self.repo, self.ref, self.git_remote)
        self.client.close()
