"""Where a trial runs: a git worktree of the sweep's code snapshot, one per parallel slot.

Trials of one script write the same files (``model.pkl``, ``metrics.json``), so two cannot share
a folder; DVC's queue has the same answer (a temporary workspace per experiment). A slot is a
detached worktree at the sweep's commit with the sweep's patch applied (uncommitted edits and new
code files, as `git.code_state` records them for a run), sharing the repository's DVC cache
through ``.dvc/config.local``, with the DVC-tracked files checked out from that cache. Between two
trials the slot is reset to the same snapshot; files git ignores (the DVC-tracked data) stay.

A finished trial's run folder is moved into the repository's `.gitml/runs/`: staged in
`.gitml/cache/` and renamed, so it appears whole. Slots live in `.gitml/cache/sweeps/<id>/` (git
ignores it; DVC skips a folder with its own `.dvc/` as a sub-repository), so a run left behind
by a killed driver is found again by `gitml sweep --resume`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gitml import git, logs, store
from gitml.artifacts.sync import checkout_workspace
from gitml.data import cache_dir
from gitml.errors import GitmlError
from gitml.repo import OWN_PATHS, Repo

log = logs.get(__name__)
PATCH = "code.patch"


@dataclass(frozen=True)
class Snapshot:
    """The code every trial of a sweep runs: a commit, and a patch over it (or none)."""

    commit: str
    branch: str | None
    patch: bytes | None


def snapshot(repo: Repo) -> Snapshot:
    """The working tree's code now, as a run would record it."""
    state = git.code_state(repo.root, exclude=(*OWN_PATHS, repo.tracking_setting("summary_file")))
    if state.commit is None:
        raise GitmlError(
            f"{repo.root}: the repository has no commit yet; commit the training code first "
            "(every trial runs a snapshot of it)"
        )
    return Snapshot(state.commit, state.branch, state.patch)


def slots_dir(repo: Repo, sweep_id: str) -> Path:
    """The folder of a sweep's slots."""
    return repo.cache_dir / "sweeps" / sweep_id


class Slot:
    """One worktree that runs one trial at a time.

    ``root`` is the repository the worktree is made from (this one, or a worker's clone of the
    git remote); ``dvc_cache`` is the DVC cache the slot uses, and ``dvc_remote`` (a worker's)
    the URL its data comes from and its outputs go to.
    """

    def __init__(
        self, root: Path, path: Path, code: Snapshot, *, dvc_cache: Path,
        dvc_remote: str | None = None,
    ) -> None:  # fmt: skip
        self.root, self.path, self.code = root, path, code
        self.dvc_cache, self.dvc_remote = dvc_cache, dvc_remote

    @classmethod
    def local(cls, repo: Repo, sweep_id: str, index: int, code: Snapshot) -> Slot:
        """Slot ``index`` of a sweep run on this machine, sharing the repository's DVC cache."""
        path = slots_dir(repo, sweep_id) / f"slot-{index}"
        return cls(repo.root, path, code, dvc_cache=cache_dir(repo.root))

    def prepare(self, *, data: bool = True) -> None:
        """Make the worktree (or reset a left one) at the sweep's code, data checked out."""
        if (self.path / ".git").exists():
            self.reset()
        else:
            if self.path.exists():
                shutil.rmtree(self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            git.run_git(self.root, "worktree", "prune")
            git.add_worktree(self.root, self.path, self.code.commit)
            self._apply_patch()
        self._share_config()
        if data:
            self._checkout_data()

    def reset(self) -> None:
        """Back to the snapshot: tracked files restored, new files removed, ignored ones kept."""
        git.run_git(self.path, "reset", "--hard", "--quiet", self.code.commit)
        git.run_git(self.path, "clean", "-fdq", "-e", ".gitml/")
        self._apply_patch()

    def _apply_patch(self) -> None:
        if not self.code.patch:
            return
        patch = self.path.parent / f"{self.path.name}.patch"
        patch.write_bytes(self.code.patch)
        try:
            git.apply_patch(self.path, patch)
        except GitmlError as exc:
            where = self.path
            raise GitmlError(f"the sweep's code patch does not apply in {where}: {exc}") from exc
        finally:
            patch.unlink(missing_ok=True)

    def _share_config(self) -> None:
        """Copy the repository's gitml and DVC config in, and point DVC at the slot's cache."""
        for rel in (".gitml/config.toml", ".dvc/config"):
            source, dest = self.root / rel, self.path / rel
            if source.is_file():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest)
        (self.path / ".dvc").mkdir(exist_ok=True)
        # Sharing the DVC cache: inputs are not copied twice, and what a trial logs is in the
        # cache when it ends. A worker's slot also names the remote its data comes from.
        text = f"[cache]\n    dir = {self.dvc_cache}\n"
        if self.dvc_remote:
            text += (f"[core]\n    remote = gitml-sweep\n"
                     f"['remote \"gitml-sweep\"']\n    url = {self.dvc_remote}\n")  # fmt: skip
        (self.path / ".dvc" / "config.local").write_text(text, encoding="utf-8")

    def _checkout_data(self) -> None:
        try:
            checkout_workspace(self.path)
        except GitmlError as exc:
            raise GitmlError(f"cannot check the DVC-tracked data out for a trial: {exc}") from exc

    def runs(self) -> list[Path]:
        """The run folders made in this slot, not those its commit has (one a trial)."""
        listed = git.run_git(self.path, "ls-files", "-z", "--others", "--", ".gitml/runs")
        names = {PurePosixPath(p).parts[2] for p in listed.split("\0") if p.count("/") >= 3}
        return [self.path / ".gitml" / "runs" / name for name in sorted(names)]

    def remove(self) -> None:
        """Remove the worktree (at the end of a sweep)."""
        git.remove_worktree(self.root, self.path)


def harvest(repo: Repo, run_dir: Path, *, move: bool = False) -> Path:
    """Move a trial's run folder (named by its run id) into the repository's runs, whole.

    ``move`` renames ``run_dir`` itself (already staged in `.gitml/cache/harvest/`); otherwise
    it is copied there first (a slot may be on another file system) and removed after.
    """
    dest = repo.run_dir(run_dir.name)
    if dest.exists():
        raise GitmlError(f"{repo.relpath(dest)}: a run of this id exists already")
    staging = run_dir if move else _staging(repo, run_dir.name)
    if not move:
        shutil.copytree(run_dir, staging, symlinks=True)
    for path in staging.rglob("*"):
        if path.is_symlink():  # a run folder holds files only: never follow a link later
            path.unlink()
    repo.runs_dir.mkdir(parents=True, exist_ok=True)
    staging.rename(dest)
    if not move:
        shutil.rmtree(run_dir, ignore_errors=True)
    return dest


def _staging(repo: Repo, run_id: str) -> Path:
    """An empty `.gitml/cache/harvest/<run-id>` (a leftover of a crash is cleared)."""
    staging = repo.cache_dir / "harvest" / run_id
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    return staging


RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$")
FILE_NAME = re.compile(r"^[\w][\w.\-]{0,200}$")


def read_run_files(run_dir: Path) -> dict[str, bytes]:
    """A run folder's files, name -> bytes (what a worker sends back); links are left out."""
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir())
            if p.is_file() and not p.is_symlink() and not p.name.endswith(".lock")}  # fmt: skip


def harvest_files(repo: Repo, run_id: str, files: dict[str, bytes]) -> Path:
    """Write a run folder a worker sent (flat: name -> bytes) into the repository's runs, whole.

    The names come from another machine: only a run id and plain file names are accepted, so
    nothing is written outside `.gitml/runs/<run-id>/`.
    """
    if not RUN_ID.match(run_id):
        raise GitmlError(f"a worker sent a run named {run_id!r}, which is not a run id")
    bad = [name for name in files if not FILE_NAME.match(name)]
    if bad or "run.toml" not in files:
        raise GitmlError(f"run {run_id}: a worker sent {bad[0] if bad else 'no run.toml'!r}")
    source = f"run {run_id} from a worker: run.toml"
    doc = store.parse_toml(files["run.toml"], source=source)
    store.validate("run", doc, source=source)
    if doc["id"] != run_id:
        raise GitmlError(f"{source}: id {doc['id']!r} is not the run's")
    staging = _staging(repo, run_id)
    staging.mkdir()
    for name, data in files.items():
        (staging / name).write_bytes(data)
    return harvest(repo, staging, move=True)


def remove_all(repo: Repo, sweep_id: str) -> None:
    """Remove every slot of a sweep, and the folder."""
    folder = slots_dir(repo, sweep_id)
    for slot in sorted(folder.glob("slot-*")) if folder.is_dir() else []:
        git.remove_worktree(repo.root, slot)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        git.run_git(repo.root, "worktree", "prune")
    except (GitmlError, subprocess.SubprocessError) as exc:
        log.warning("git worktree prune failed: %s", exc)
