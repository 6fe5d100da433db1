"""Plain `dvc gc -w -c -f` (the real CLI) vs a registry version that only gitml names."""

import shutil
import subprocess
import sys

from gitml.data import cache_path
from gitml.registry import versions
from gitml.repo import Repo
from gitml.serving.loading import load
from tests.helpers import git, run_ok


def _remote_has(remote, md5):
    return any(remote.rglob(md5[2:]))


def test_dvc_gc_keeps_every_registered_version_loadable(trained):
    project, (run1, run2) = trained
    root = project.root
    run_ok(root, "model", "register", run1, "iris")
    run_ok(root, "model", "register", run2, "iris")
    doc = versions.load(project, "iris")
    md5s = [v["md5"] for v in doc["versions"]]
    assert len(set(md5s)) == 2
    keep = (root / ".gitml" / "keep.dvc").read_text()
    assert all(f"path: keep/{md5}" in keep for md5 in md5s)
    assert git(root, "status", "--porcelain") == ""  # committed with the registry, links ignored
    assert "keep.dvc" in git(root, "show", "--name-only", "--format=", "HEAD")
    # A remote of this test's own: `dvc gc -c` deletes from it.
    remote = root.parent / "remote"
    remote.mkdir()
    local = root / ".dvc" / "config.local"
    old = next(line.split("=", 1)[1].strip() for line in local.read_text().splitlines()
               if line.strip().startswith("url"))  # fmt: skip
    local.write_text(local.read_text().replace(old, str(remote)))
    run_ok(root, "push")
    assert all(_remote_has(remote, md5) for md5 in md5s), sorted(p.name for p in remote.rglob("*"))

    status = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=root,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert "keep" not in status.stdout, status.stdout  # the links make DVC see them in place

    # The workspace names only v2's model (its .dvc pointer): DVC alone would drop v1's bytes.
    done = subprocess.run([sys.executable, "-m", "dvc", "gc", "-w", "-c", "-f"], cwd=root,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for md5 in md5s:
        assert cache_path(root, md5).is_file(), f"dvc gc removed {md5} from the cache"
        assert _remote_has(remote, md5), f"dvc gc removed {md5} from the remote"

    # Loadable from the remote alone: a fresh cache, `gitml pull`, then each version.
    shutil.rmtree(root / ".dvc" / "cache")
    shutil.rmtree(root / ".gitml" / "keep")
    run_ok(root, "pull")
    for number in (1, 2):
        loaded = load(Repo(root), f"iris@{number}")
        assert loaded.number == number
        assert list(loaded.model.classes_) == [0, 1, 2]  # the iris classifier, unpickled
