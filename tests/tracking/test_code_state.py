import hashlib
import shutil

import gitml
from tests.helpers import commit_all, git


def test_clean_tree_has_no_patch(project):
    with gitml.start_run() as run:
        pass
    code = run.record["code"]
    assert code["dirty"] is False and "patch" not in code
    assert code["commit"] == git(project.root, "rev-parse", "HEAD").strip()


def test_gitml_own_files_do_not_make_the_tree_dirty(project):
    with gitml.start_run() as first:
        first.log_metric("m", 1)
    # The first run left .gitml/runs/... and metrics.toml uncommitted.
    with gitml.start_run() as second:
        pass
    assert first.id != second.id
    assert second.record["code"]["dirty"] is False


def test_dirty_patch_round_trip_rebuilds_the_exact_code(project, tmp_path):
    root = project.root
    (root / "lib.py").write_text("A = 1\n")
    (root / "blob.bin").write_bytes(bytes(range(256)))
    (root / "old.txt").write_text("to be deleted\n")
    commit_all(root, "more code")
    (root / "train.py").write_text("print('training v2')\nimport lib\n")  # unstaged change
    (root / "blob.bin").write_bytes(bytes(reversed(range(256))))  # binary change
    (root / "new_module.py").write_text("B = 2\n")
    git(root, "add", "new_module.py")  # staged new file
    (root / "old.txt").unlink()  # deletion
    (root / "untracked.py").write_text("print('a new script, not committed yet')\n")
    (root / "table.csv").write_text("a,b\n1,2\n")  # text data: an input by hash, not code
    (root / "weights.bin").write_bytes(b"\0" * 64)  # binary: never patched
    (root / ".gitignore").write_text("/ignored.py\n")
    (root / "ignored.py").write_text("print('ignored')\n")

    with gitml.start_run() as run:
        pass
    code = run.record["code"]
    assert code["dirty"] is True
    patch = (run.dir / "code.patch").read_bytes()
    assert hashlib.sha256(patch).hexdigest() == code["patch_sha256"]
    assert b".gitml" not in patch
    assert code["untracked"] == [".gitignore", "untracked.py"]
    for left_out in (b"table.csv", b"weights.bin", b"ignored.py"):
        assert b"+++ b/" + left_out not in patch, left_out

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(root), str(clone))
    git(clone, "checkout", "-q", code["commit"])
    git(clone, "apply", "--binary", str(run.dir / "code.patch"))
    for name in ("train.py", "blob.bin", "new_module.py", "lib.py", "untracked.py"):
        assert (clone / name).read_bytes() == (root / name).read_bytes(), name
    assert not (clone / "old.txt").exists()


def test_run_in_repository_without_commits(tmp_path, monkeypatch):
    from gitml.project import init_project

    root = tmp_path / "fresh"
    init_project(root, create_git=True, remote_dir=tmp_path / "remote")
    (root / "train.py").write_text("x = 1\n")
    git(root, "add", "train.py")
    monkeypatch.chdir(root)
    with gitml.start_run() as run:
        pass
    code = run.record["code"]
    assert "commit" not in code and code["branch"] == "main" and code["dirty"] is True
    assert b"train.py" in (run.dir / "code.patch").read_bytes()
    shutil.rmtree(root)


def test_the_git_status_fast_path_agrees_with_the_snapshot(project, monkeypatch):
    """A clean tree is answered by `git status` alone; the snapshot says the same, every state."""
    from gitml.git import state

    root = project.root
    exclude = (".gitml/", "metrics.toml")
    checked = 0
    for setup in ("branch", "detached", "own files only", "a staged edit", "a new script"):
        if setup == "detached":
            git(root, "checkout", "-q", "--detach")
        elif setup == "own files only":
            (root / "metrics.toml").write_text("accuracy = 1\n")
        elif setup == "a staged edit":
            (root / "train.py").write_text("print('edited')\n")
            git(root, "add", "train.py")
        elif setup == "a new script":
            git(root, "reset", "-q", "--hard")
            (root / "new.py").write_text("print('new')\n")
        fast = state._clean_state(root, exclude)
        monkeypatch.setattr(state, "_clean_state", lambda *a: None)
        slow = state.code_state(root, exclude=exclude)
        monkeypatch.undo()
        if setup in ("a staged edit", "a new script"):
            assert fast is None and slow.dirty, setup
        else:
            assert fast == slow and fast.commit is not None, setup
            assert fast.branch == (None if setup != "branch" else slow.branch), setup
        checked += 1
    assert checked == 5
