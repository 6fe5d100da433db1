import shutil
import sys
import textwrap
from pathlib import Path

from gitml.data import cache_dir
from tests.helpers import commit_all, git, gitml

TRAIN = textwrap.dedent("""
    import gitml
    with gitml.start_run("mean") as run:
        run.log_input("data.csv")
        values = [float(v) for v in open("data.csv").read().split()]
        run.log_metric("mean", sum(values) / len(values))
        open("model.txt", "w").write(f"{sum(values):.6f}\\n")
        run.log_artifact("model.txt")
""")
RANDOM = textwrap.dedent("""
    import os, gitml
    with gitml.start_run("noisy") as run:
        run.log_metric("score", int.from_bytes(os.urandom(4), "big") / 2**32)
""")


def _train(project, data, message):
    (project.root / "data.csv").write_text(data)
    done = gitml(project.root, "run", "--", "python", "train.py")
    assert done.returncode == 0, done.stderr
    return commit_all(project.root, message)


def test_reproduce_first_commit_from_remote_while_tree_holds_v2(project):
    (project.root / "train.py").write_text(TRAIN)
    commit_all(project.root, "train script")
    first = _train(project, "1\n2\n3\n", "train on v1")
    _train(project, "10\n20\n30\n", "train on v2")
    assert gitml(project.root, "push").returncode == 0
    shutil.rmtree(cache_dir(project.root))  # the remote is now the only source

    done = gitml(project.root, "reproduce", first)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert lines[0][-1] == "reproduced"
    assert ["metric", "mean", "2", "2", "ok"] in lines
    assert lines[3][:2] == ["output", "model.txt"] and lines[3][-1] == "ok"
    assert (project.root / "data.csv").read_text() == "10\n20\n30\n", (
        "the working tree is untouched"
    )
    assert git(project.root, "worktree", "list").count("\n") == 1, "the worktree is removed"


def test_non_deterministic_run_differs_with_exit_1(project):
    (project.root / "train.py").write_text(RANDOM)
    commit_all(project.root, "random")
    done = gitml(project.root, "run", "--", "python", "train.py")
    assert done.returncode == 0
    commit = commit_all(project.root, "noisy run")
    again = gitml(project.root, "reproduce", commit)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "DIFFERS" in again.stdout and "differs" in again.stdout
    _check_verdict_is_recorded(project)


def test_missing_data_everywhere_cannot_run_exit_2(project):
    (project.root / "train.py").write_text(TRAIN)
    commit_all(project.root, "train script")
    first = _train(project, "1\n2\n", "v1")
    shutil.rmtree(cache_dir(project.root))  # never pushed: the bytes are gone
    done = gitml(project.root, "reproduce", first)
    assert done.returncode == 2
    assert "could not run" in done.stdout and "input data.csv" in done.stdout
    assert "neither the DVC cache nor the remote" in done.stdout


def test_dirty_run_is_reproduced_with_its_patch_and_kept(project):
    (project.root / "train.py").write_text(TRAIN)
    commit_all(project.root, "train script")
    (project.root / "train.py").write_text(
        TRAIN.replace('"mean"', '"mean-dirty"').replace("sum(values) / len(values)", "max(values)")
    )
    (project.root / "data.csv").write_text("4\n9\n")
    assert gitml(project.root, "run", "--", "python", "train.py").returncode == 0
    commit = commit_all(project.root, "dirty run committed afterwards")
    done = gitml(project.root, "reproduce", commit, "--keep")
    assert done.returncode == 0, done.stdout + done.stderr
    kept = done.stdout.split("worktree kept at ")[1].strip()
    assert "max(values)" in (Path(kept) / "train.py").read_text(), "the patch was applied"
    assert ["metric", "mean-dirty", "9", "9", "ok"] in [
        line.split() for line in done.stdout.splitlines()
    ]
    git(project.root, "worktree", "remove", "--force", kept)


def test_unknown_ref_is_one_line_error(project):
    done = gitml(project.root, "reproduce", "no-such-thing")
    assert done.returncode == 2
    message = "'no-such-thing': neither a run id nor a commit; see `gitml runs` or `git log`"
    assert done.stderr.strip() == f"gitml: error: {message}"


def test_a_run_that_recorded_nothing_is_not_reproduced(project, tmp_path):
    (project.root / "quiet.py").write_text("print('trained, logged nothing')\n")
    commit_all(project.root, "a script that logs nothing")
    done = gitml(project.root, "run", "--", sys.executable, "quiet.py")
    assert done.returncode == 0, done.stderr
    commit_all(project.root, "its run")
    run_id = next(project.runs_dir.iterdir()).name
    done = gitml(project.root, "reproduce", run_id)
    assert done.returncode == 2, done.stdout
    assert "could not run" in done.stdout and "nothing to compare" in done.stdout


def _check_verdict_is_recorded(project):
    """Each `gitml reproduce` leaves the run's verdict in a file `gitml check` validates."""
    (verdict,) = (project.root / ".gitml" / "reproductions").iterdir()
    text = verdict.read_text()
    assert f'run = "{verdict.stem}"' in text and 'verdict = "differs"' in text
    assert "differ = [" in text and "compared = " in text
    assert gitml(project.root, "check").returncode == 0
    verdict.write_text(text.replace('verdict = "differs"', 'verdict = "maybe"'))
    refused = gitml(project.root, "check")  # a finding: exit 1, the file and field named
    assert refused.returncode == 1
    finding = refused.stdout.splitlines()[0]
    assert f".gitml/reproductions/{verdict.name}" in finding and "verdict" in finding, finding
