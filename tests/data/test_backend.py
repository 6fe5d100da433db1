import hashlib
import shutil

import pytest

import gitml
from gitml.data import ArtifactRef, cache_dir, cache_path
from gitml.data.checkout import restore, verified_object
from gitml.errors import ArtifactError
from tests.helpers import commit_all, dvc, git
from tests.helpers import gitml as gitml_cli


def _train(project):
    (project.root / "data").mkdir(exist_ok=True)
    (project.root / "data" / "train.csv").write_text("x,y\n1,2\n3,4\n")
    (project.root / "model.bin").write_bytes(b"\x00weights\x01")
    with gitml.start_run("train") as run:
        run.log_input("data/train.csv")
        run.log_artifact("model.bin")
    return run


def test_artifacts_get_dvc_pointers_that_real_dvc_accepts(project):
    _train(project)
    for pointer in ("data/train.csv.dvc", "model.bin.dvc"):
        assert (project.root / pointer).is_file(), pointer
    assert "/train.csv" in (project.root / "data" / ".gitignore").read_text()
    commit_all(project.root, "train")
    assert "up to date" in dvc(project.root, "status") or dvc(project.root, "status").strip() == ""
    assert git(project.root, "status", "--porcelain") == ""


def test_push_then_fresh_clone_dvc_pull_restores_model_and_data(project, tmp_path):
    _train(project)
    commit_all(project.root, "train")
    pushed = gitml_cli(project.root, "push")
    assert pushed.returncode == 0, pushed.stderr
    assert "2 object(s) referenced by 1 run(s); 2 uploaded" in pushed.stdout
    again = gitml_cli(project.root, "push")
    assert "0 uploaded" in again.stdout
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project.root), str(clone))
    assert not (clone / "model.bin").exists()
    # A teammate's clone: `gitml init` gives it this machine's default remote, uncommitted.
    assert gitml_cli(clone, "init").returncode == 0
    assert "remote" not in (clone / ".dvc" / "config").read_text()
    dvc(clone, "pull")
    assert (clone / "model.bin").read_bytes() == b"\x00weights\x01"
    assert (clone / "data" / "train.csv").read_text() == "x,y\n1,2\n3,4\n"


def test_push_names_run_and_path_of_missing_bytes(project):
    run = _train(project)
    commit_all(project.root, "train")
    shutil.rmtree(cache_dir(project.root))
    done = gitml_cli(project.root, "push")
    assert done.returncode == 2
    assert (
        f"run {run.id} model.bin" in done.stderr and f"run {run.id} data/train.csv" in done.stderr
    )
    assert len(done.stderr.strip().splitlines()) == 1


def test_restore_fetches_from_remote_after_cache_is_cleared(project, tmp_path):
    _train(project)
    assert gitml_cli(project.root, "push").returncode == 0
    shutil.rmtree(cache_dir(project.root))
    payload = b"\x00weights\x01"
    ref = ArtifactRef(md5=hashlib.md5(payload).hexdigest(), size=len(payload))
    restore(project.root, ref, tmp_path / "out" / "model.bin")
    assert (tmp_path / "out" / "model.bin").read_bytes() == payload


def test_corrupted_cache_object_is_named_never_used(project, tmp_path):
    _train(project)
    payload = b"\x00weights\x01"
    ref = ArtifactRef(md5=hashlib.md5(payload).hexdigest(), size=len(payload))
    obj = cache_path(project.root, ref.md5)
    obj.chmod(0o644)
    obj.write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match="DVC cache object is corrupted") as err:
        verified_object(project.root, ref, fetch=False)
    assert str(obj) in str(err.value)
    dest = tmp_path / "model.bin"
    dest.write_bytes(b"old")
    with pytest.raises(ArtifactError):
        restore(project.root, ref, dest, fetch=False)
    assert dest.read_bytes() == b"old", "a failed restore leaves the old file"


def test_missing_everywhere_is_a_clear_error(project):
    ref = ArtifactRef(md5="0" * 32, size=1)
    with pytest.raises(ArtifactError, match="is in neither the DVC cache nor the remote"):
        verified_object(project.root, ref)


def test_remote_add_and_push_to_it(project, tmp_path):
    store = tmp_path / "team-store"
    done = gitml_cli(project.root, "remote", "add", "team", str(store), "--default")
    assert done.returncode == 0, done.stderr
    listed = gitml_cli(project.root, "remote", "list").stdout
    assert f"team\t{store}\t(default)" in listed
    assert "team" in dvc(project.root, "remote", "list")
    _train(project)
    assert gitml_cli(project.root, "push").returncode == 0
    payload = b"\x00weights\x01"
    md5 = hashlib.md5(payload).hexdigest()
    assert (store / "files" / "md5" / md5[:2] / md5[2:]).read_bytes() == payload
    bad = gitml_cli(project.root, "remote", "add", "bad name!", "/x")
    assert bad.returncode == 2 and "remote name 'bad name!'" in bad.stderr


def test_gc_keeps_every_referenced_object_on_any_branch_or_tag(project):
    from gitml.data.add import add_to_cache

    root = project.root
    (root / "train.py").write_text(
        "import sys, gitml\n"
        "with gitml.start_run() as run:\n"
        "    run.log_input('raw.csv')\n"
        "    open('model.bin', 'w').write(sys.argv[1])\n"
        "    run.log_artifact('model.bin')\n"
    )
    (root / "raw.csv").write_text("in git, referenced only by run records\n")
    commit_all(root, "script and raw data in git")
    assert gitml_cli(root, "run", "--", "python", "train.py", "main-model").returncode == 0
    commit_all(root, "main run")
    git(root, "checkout", "-q", "-b", "feature")
    assert gitml_cli(root, "run", "--", "python", "train.py", "feature-model").returncode == 0
    commit_all(root, "feature run")
    git(root, "tag", "v-feature")
    git(root, "checkout", "-q", "main")
    git(root, "branch", "-D", "feature")  # only the tag holds the feature run now
    (root / "scratch.bin").write_bytes(b"orphan bytes")
    orphan = add_to_cache(root, root / "scratch.bin")
    (root / "scratch.bin").unlink()

    dry = gitml_cli(root, "gc", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.startswith("would remove 1 object(s)")
    assert cache_path(root, orphan.md5).is_file()
    done = gitml_cli(root, "gc")
    assert done.stdout.startswith("removed 1 object(s)"), done.stdout + done.stderr
    assert not cache_path(root, orphan.md5).exists()
    for payload in (b"main-model", b"feature-model", b"in git, referenced only by run records\n"):
        assert cache_path(root, hashlib.md5(payload).hexdigest()).is_file(), payload


def test_status_and_pull(project, tmp_path):
    _train(project)
    commit_all(project.root, "train")
    before = gitml_cli(project.root, "status")
    assert before.returncode == 1 and "2 in the cache, 0 in the remote" in before.stdout
    assert "not pushed: run" in before.stdout
    gitml_cli(project.root, "push")
    after = gitml_cli(project.root, "status")
    assert after.returncode == 0 and "2 in the cache, 2 in the remote" in after.stdout
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project.root), str(clone))
    pulled = gitml_cli(clone, "pull")
    assert pulled.returncode == 0, pulled.stderr
    assert (clone / "model.bin").read_bytes() == b"\x00weights\x01"
    shutil.rmtree(cache_dir(project.root))
    shutil.rmtree(project.root.parent / "remote")
    (project.root.parent / "remote").mkdir()
    lost = gitml_cli(project.root, "status")
    assert lost.returncode == 2 and "LOST (in neither): run" in lost.stdout


def test_pull_fails_naming_what_it_could_not_restore(project, tmp_path):
    _train(project)
    commit_all(project.root, "train, never pushed")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project.root), str(clone))
    pulled = gitml_cli(clone, "pull")
    assert pulled.returncode == 2, pulled.stdout
    setup, line = pulled.stderr.strip().splitlines()
    assert "set the default DVC remote 'local'" in setup and "config.local" in setup
    assert "2 file(s) the DVC pointers name are still missing" in line
    assert "data/train.csv" in line and "model.bin" in line and "gitml status" in line


def test_pull_from_an_unreachable_remote_fails_naming_the_files(project, tmp_path):
    _train(project)
    commit_all(project.root, "train")
    assert gitml_cli(project.root, "push").returncode == 0
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project.root), str(clone))
    gone = tmp_path / "unmounted" / "share"  # a team remote whose disk is not there
    assert gitml_cli(clone, "remote", "add", "team", str(gone), "--default").returncode == 0
    pulled = gitml_cli(clone, "pull")
    assert pulled.returncode == 2, pulled.stdout
    (line,) = pulled.stderr.strip().splitlines()
    assert "still missing" in line and "model.bin" in line and "is the DVC remote reachable" in line
