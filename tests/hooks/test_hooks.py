import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gitml.data import cache_dir
from gitml.git import hooks_dir
from tests.helpers import commit_all, git, gitml

TRAIN = (
    "import sys, gitml\n"
    "with gitml.start_run() as run:\n"
    "    open('model.bin', 'w').write(sys.argv[1])\n"
    "    run.log_artifact('model.bin')\n"
)


def _commit(root, message):
    git(root, "add", "-A")
    return subprocess.run(["git", "commit", "-q", "-m", message], cwd=root, capture_output=True,
                          text=True, check=False)  # fmt: skip


def test_install_keeps_a_foreign_hook_and_still_runs_it(project):
    root = project.root
    assert gitml(root, "hooks", "uninstall").returncode == 0
    folder = hooks_dir(root)
    foreign = folder / "pre-commit"
    foreign.write_text("#!/bin/sh\necho ran > foreign-ran.txt\n")
    foreign.chmod(0o755)
    done = gitml(root, "hooks", "install")
    assert "kept your pre-commit hook as pre-commit.legacy" in done.stdout
    assert (folder / "pre-commit.legacy").read_text().startswith("#!/bin/sh\necho ran")
    (root / "notes.txt").write_text("x\n")
    assert _commit(root, "notes").returncode == 0
    assert (root / "foreign-ran.txt").read_text() == "ran\n", "the foreign hook still runs"
    assert "nothing changed" in gitml(root, "hooks", "install").stdout
    gitml(root, "hooks", "uninstall")
    assert foreign.read_text().startswith("#!/bin/sh\necho ran"), "uninstall restores it"
    assert not (folder / "pre-push").exists()


def test_commit_with_schema_broken_run_is_refused_naming_file_and_field(project):
    root = project.root
    run_dir = project.runs_dir / "20260101T000000Z-abcdef"
    run_dir.mkdir(parents=True)
    (run_dir / "run.toml").write_text(
        'schema_version = 1\nid = "20260101T000000Z-abcdef"\nstatus = "done"\n'
        "start_time = 2026-01-01T00:00:00Z\n[params]\n[metrics]\n[tags]\n"
    )
    done = _commit(root, "broken")
    assert done.returncode != 0
    assert (
        "gitml pre-commit: .gitml/runs/20260101T000000Z-abcdef/run.toml: field status: "
        "'done' is not one of" in done.stderr
    )
    assert git(root, "log", "--format=%s").splitlines()[0] != "broken"


def test_large_file_staged_into_git_is_refused(project):
    root = project.root
    (root / "big.csv").write_bytes(b"0" * (11 * 2**20))
    done = _commit(root, "big")
    assert done.returncode != 0
    assert (
        "big.csv: 11.0 MB staged straight into git" in done.stderr
        and "dvc add big.csv" in done.stderr
    )


def test_commit_of_a_run_refreshes_and_stages_metrics_toml(project):
    root = project.root
    (root / "train.py").write_text(TRAIN)
    git(root, "add", "train.py")
    assert gitml(root, "run", "--", "python", "train.py", "v1").returncode == 0
    (root / "metrics.toml").unlink()
    assert _commit(root, "run").returncode == 0
    assert "metrics.toml" in git(root, "show", "--name-only", "--format=", "HEAD")


def test_a_commit_of_named_paths_leaves_the_summary_staged_as_committed(project):
    """`git commit -- PATHS` commits a temporary index: what pre-commit staged there (the
    summary) would be committed, yet missing from the real index, and the next commit would
    delete it. post-commit puts the committed summary into the real index."""
    root = project.root
    (root / "train.py").write_text(TRAIN)
    git(root, "add", "train.py")
    assert gitml(root, "run", "--", "python", "train.py", "v1").returncode == 0
    (root / "metrics.toml").unlink()
    (root / "notes.txt").write_text("not in this commit\n")
    git(root, "add", "notes.txt", ".gitml/runs")
    done = subprocess.run(["git", "commit", "-q", "-m", "run", "--", ".gitml/runs", "train.py"],
                          cwd=root, capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "metrics.toml" in git(root, "show", "--name-only", "--format=", "HEAD")
    status = git(root, "status", "--porcelain", "--untracked-files=no").splitlines()
    assert status == ["A  notes.txt"], "the summary is staged as committed; notes.txt untouched"


def test_plain_commit_takes_the_fast_path(project):
    (project.root / "README.txt").write_text("docs\n")
    git(project.root, "add", "README.txt")
    code = (
        "import sys\nfrom gitml.hooks.run import run_hook\ncode = run_hook('pre-commit', [])\n"
        "heavy = [m for m in ('pandas', 'pyarrow', 'pygit2', 'dvc', 'sklearn', 'jsonschema') "
        "if m in sys.modules]\nprint(code, heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=project.root, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.stdout.strip() == "0 []", done.stderr


def test_a_commit_of_no_gitml_or_dvc_file_starts_no_python(project):
    """The pre-commit shim decides in shell; Python (here: missing) only runs for our files."""
    root = project.root
    for name in ("pre-commit", "post-commit"):
        hook = root / ".git" / "hooks" / name
        text = hook.read_text()
        hook.write_text(text.replace(sys.executable, "/nonexistent/python"))
    env = {"PATH": "/usr/bin:/bin"}  # and no `gitml` on the PATH either
    (root / "README.txt").write_text("docs\n")
    (root / "-n.txt").write_text("a path that looks like an option\n")
    git(root, "add", "README.txt", "--", "-n.txt")
    done = subprocess.run(["git", "commit", "-q", "-m", "docs"], cwd=root, capture_output=True,
                          text=True, check=False, env={**os.environ, **env})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "needs gitml" not in done.stderr
    outside = {**os.environ, **env}
    for staged in ("big.bin", "model.pkl.dvc", "dvc.lock"):  # each one needs the full check
        path = root / staged
        path.write_bytes(b"0" * (11 * 2**20) if staged == "big.bin" else b"outs: []\n")
        git(root, "add", staged)
        done = subprocess.run(["git", "commit", "-q", "-m", staged], cwd=root, env=outside,
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 1 and "the pre-commit hook needs gitml" in done.stderr, staged
        git(root, "reset", "-q", "HEAD", "--", staged)
        path.unlink()


@pytest.fixture
def origin(project, tmp_path):
    """A bare git remote for the project, and the training script committed."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(project.root, "remote", "add", "origin", str(bare))
    (project.root / "train.py").write_text(TRAIN)
    commit_all(project.root, "train script")
    return bare


def _train_and_commit(root, model):
    assert gitml(root, "run", "--", "python", "train.py", model).returncode == 0
    return commit_all(root, model)


def _push(root):
    return subprocess.run(["git", "push", "-q", "origin", "main"], cwd=root, capture_output=True,
                          text=True, check=False)  # fmt: skip


def test_push_uploads_artifacts_and_checkout_of_old_commit_restores_model(
    project, origin, tmp_path
):
    root = project.root
    v1 = _train_and_commit(root, "model-v1")
    _train_and_commit(root, "model-v2")
    pushed = _push(root)
    assert pushed.returncode == 0, pushed.stderr
    assert "uploaded 2 object(s) to the DVC remote" in pushed.stderr

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    assert gitml(clone, "init").returncode == 0  # installs the hooks in the clone
    git(clone, "checkout", "-q", v1)
    assert (clone / "model.bin").read_text() == "model-v1"
    git(clone, "checkout", "-q", "main")
    assert (clone / "model.bin").read_text() == "model-v2"


def test_push_with_missing_artifact_is_refused(project, origin):
    _train_and_commit(project.root, "lost")
    shutil.rmtree(cache_dir(project.root))
    pushed = _push(project.root)
    assert pushed.returncode != 0
    assert "push refused" in pushed.stderr and "model.bin" in pushed.stderr
    assert git(origin, "branch") == "", "nothing reached the git remote"


PRE_COMMIT_CONFIG = """\
default_install_hook_types: [pre-commit, post-checkout]
repos:
  - repo: local
    hooks:
      - id: gitml-pre-commit
        name: gitml checks
        entry: {python} -m gitml.hooks pre-commit
        language: system
        pass_filenames: false
        always_run: true
        stages: [pre-commit]
      - id: gitml-post-checkout
        name: gitml restore
        entry: {python} -m gitml.hooks post-checkout
        language: system
        pass_filenames: false
        always_run: true
        stages: [post-checkout]
"""


def test_checks_run_through_the_pre_commit_framework(project):
    """The real pre-commit tool runs gitml's checks (it will not install beside core.hooksPath)."""
    root = project.root
    manifest = Path(__file__).resolve().parents[2] / ".pre-commit-hooks.yaml"
    check = subprocess.run([sys.executable, "-m", "pre_commit", "validate-manifest", str(manifest)],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert gitml(root, "hooks", "uninstall").returncode == 0
    (root / ".pre-commit-config.yaml").write_text(PRE_COMMIT_CONFIG.format(python=sys.executable))
    commit_all(root, "pre-commit config")
    installed = subprocess.run([sys.executable, "-m", "pre_commit", "install"], cwd=root,
                               capture_output=True, text=True, check=False)  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "pre-commit installed" in installed.stdout and "post-checkout" in installed.stdout

    run_dir = project.runs_dir / "20260101T000000Z-abcdef"
    run_dir.mkdir(parents=True)
    (run_dir / "run.toml").write_text('schema_version = 1\nid = "20260101T000000Z-abcdef"\n')
    refused = _commit(root, "broken through pre-commit")
    assert refused.returncode != 0
    assert (
        "run.toml: field status: 'status' is a required property" in refused.stdout + refused.stderr
    )
    git(root, "rm", "-q", "-r", "--cached", ".gitml/runs")
    shutil.rmtree(run_dir)
    (root / "ok.txt").write_text("fine\n")
    assert _commit(root, "clean commit").returncode == 0


def test_commits_gitml_makes_through_pygit2_run_the_hooks(project):
    from gitml import git as gitml_git
    from gitml.errors import GitError

    root = project.root
    folder = hooks_dir(root)
    signoff = folder / "commit-msg"  # a hook of the user's own, which gitml never installs
    signoff.write_text('#!/bin/sh\necho "Signed-off-by: hook" >> "$1"\n')
    signoff.chmod(0o755)
    (root / "train.py").write_text(TRAIN)
    done = subprocess.run([sys.executable, "train.py", "v1"], cwd=root, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run_id,) = [p.name for p in project.runs_dir.iterdir()]
    before = git(root, "rev-parse", "HEAD").strip()

    commit = gitml_git.commit(root, [".gitml/runs", "train.py", "model.bin.dvc"], "train v1")
    assert git(root, "rev-parse", "HEAD").strip() == commit != before
    assert git(root, "log", "-1", "--format=%B").strip() == "train v1\nSigned-off-by: hook"
    files = git(root, "show", "--name-only", "--format=", commit).split()
    assert "metrics.toml" in files, "pre-commit refreshed and staged the summary"
    assert f".gitml/runs/{run_id}/run.toml" in files
    runs = json.loads(gitml(root, "runs", "--format", "json").stdout)
    assert [r["commit"] for r in runs] == [commit], "post-commit recorded where the run landed"

    record = project.runs_dir / run_id / "run.toml"
    record.write_text(record.read_text().replace('status = "finished"', 'status = "done"'))
    with pytest.raises(
        GitError, match=r"pre-commit hook refused the commit: .*run\.toml: field status"
    ):
        gitml_git.commit(root, [".gitml/runs"], "broken")
    assert git(root, "rev-parse", "HEAD").strip() == commit, "nothing was committed"
