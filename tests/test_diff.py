import json

from tests.helpers import commit_all, git, gitml

TRAIN = (
    "import gitml\n"
    "p = gitml.params({'depth': 2})\n"
    "with gitml.start_run(params=p) as run:\n"
    "    run.log_metrics({'accuracy': 0.80 + 0.05 * p['depth'], 'loss': 1.0 / p['depth']})\n"
)


def _train(project, depth, message):
    done = gitml(project.root, "run", "-p", f"depth={depth}", "--", "python", "train.py")
    assert done.returncode == 0, done.stderr
    return commit_all(project.root, message)


def test_diff_main_feature_md_for_a_branch_that_improved_accuracy(project):
    (project.root / "train.py").write_text(TRAIN)
    commit_all(project.root, "script")
    _train(project, 2, "baseline")
    git(project.root, "checkout", "-q", "-b", "feature")
    _train(project, 3, "deeper")
    done = gitml(project.root, "diff", "main", "feature", "--md")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "| metric | main | feature | change | relative |  |"
    assert "| accuracy | 0.9 | 0.95 | +0.05 | +5.56% | ▲ better |" in lines
    assert "| loss | 0.5 | 0.333333 | -0.166667 | -33.33% | ▲ better |" in lines
    assert "| depth | 2 | 3 |" in lines
    data = json.loads(gitml(project.root, "diff", "main", "feature", "-f", "json").stdout)
    (acc,) = [m for m in data["metrics"] if m["metric"] == "accuracy"]
    assert acc["verdict"] == "better" and abs(acc["change"] - 0.05) < 1e-12
    worse = json.loads(gitml(project.root, "diff", "feature", "main", "-f", "json").stdout)
    assert [m["verdict"] for m in worse["metrics"]] == ["worse", "worse"]


def test_configured_goal_wins_and_unknown_ref_is_an_error(project):
    (project.root / "train.py").write_text(TRAIN)
    config = project.config_path.read_text() + '\n[metrics.accuracy]\ngoal = "minimize"\n'
    project.config_path.write_text(config)
    commit_all(project.root, "script")
    _train(project, 2, "a")
    _train(project, 3, "b")
    data = json.loads(gitml(project.root, "diff", "HEAD~1", "HEAD", "-f", "json").stdout)
    (acc,) = [m for m in data["metrics"] if m["metric"] == "accuracy"]
    assert acc["verdict"] == "worse"
    bad = gitml(project.root, "diff", "nope", "HEAD")
    assert bad.returncode == 2 and "no run with this id or prefix" in bad.stderr
