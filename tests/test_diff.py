import json
import os
import statistics
import subprocess
import sys

from gitml import store
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


SEEDED = (
    "import sys, gitml\n"
    "given = dict(a.split('=') for a in sys.argv[1:])\n"
    "for seed, noise in enumerate([0.01, -0.012, 0.004, -0.003]):  # one process, four seeds\n"
    "    p = {'depth': int(given.get('depth', 2)), 'seed': seed,\n"
    "         'tweak': int(given.get('tweak', 0))}\n"
    "    with gitml.start_run(params=p) as run:\n"
    "        run.log_metrics({'accuracy': 0.80 + 0.05 * p['depth'] + 0.003 * p['tweak'] + noise})\n"
)


def _seeds(project, message, *params):
    done = subprocess.run([sys.executable, "train.py", *params], cwd=project.root,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return commit_all(project.root, message)


def test_diff_of_seed_repeats_shows_mean_std_and_whether_the_change_beats_the_noise(project):
    (project.root / "train.py").write_text(SEEDED)
    commit_all(project.root, "script")
    _seeds(project, "baseline: 4 seeds")
    git(project.root, "checkout", "-q", "-b", "deeper")
    _seeds(project, "deeper", "depth=3")
    git(project.root, "checkout", "-q", "-b", "tweak", "main")
    _seeds(project, "tweak", "tweak=1")

    deeper = json.loads(gitml(project.root, "diff", "main", "deeper", "-f", "json").stdout)
    (acc,) = deeper["metrics"]
    assert len(deeper["a"]["repeats"]) == 4 and len(deeper["b"]["repeats"]) == 4
    assert acc["a_noise"]["n"] == 4 and abs(acc["a_noise"]["mean"] - 0.89975) < 1e-9
    assert abs(acc["a_noise"]["std"] - statistics.stdev([0.01, -0.012, 0.004, -0.003])) < 1e-9
    assert abs(acc["change"] - 0.05) < 1e-9
    assert acc["verdict"] == "better" and acc["p_value"] < 1e-3

    tweak = json.loads(gitml(project.root, "diff", "main", "tweak", "-f", "json").stdout)
    (acc,) = tweak["metrics"]
    assert abs(acc["change"] - 0.003) < 1e-9
    assert acc["verdict"] == "noise" and acc["p_value"] > 0.5, "0.003 against a 0.0095 std"

    md = gitml(project.root, "diff", "main", "tweak", "--md").stdout
    assert "| accuracy | 0.89975 ± 0.0095 (n=4) | 0.90275 ± 0.0095 (n=4) | +0.003 |" in md
    assert "≈ within noise (p=0.67)" in md


def test_welch_p_value_matches_scipy_stats():
    from scipy import stats

    from gitml.diff import welch_p_value

    a, b = [0.91, 0.93, 0.90, 0.92], [0.95, 0.94, 0.97]
    assert abs(welch_p_value(a, b) - stats.ttest_ind(a, b, equal_var=False).pvalue) < 1e-12
    assert abs(welch_p_value([0.95], a) - stats.ttest_1samp(a, 0.95).pvalue) < 1e-12
    assert welch_p_value([1.0, 1.0], [1.0, 1.0]) == 1.0
    assert welch_p_value([1.0, 1.0], [2.0, 2.0]) == 0.0


def test_the_ci_example_writes_the_pr_comment_and_the_report(project, tmp_path):
    import subprocess
    from pathlib import Path

    import yaml

    examples = Path(__file__).resolve().parents[1] / "examples" / "ci"
    workflow = yaml.safe_load((examples / "github-actions.yml").read_text())
    steps = " ".join(str(s.get("run", "")) for s in workflow["jobs"]["review"]["steps"])
    assert "bash examples/ci/review.sh" in steps and "gh api" in steps
    (project.root / "train.py").write_text(TRAIN)
    commit_all(project.root, "script")
    _train(project, 2, "baseline")
    git(project.root, "checkout", "-q", "-b", "feature")
    _train(project, 3, "deeper")
    out = tmp_path / "review"
    done = subprocess.run(["bash", str(examples / "review.sh"), "main", "feature"],
                          cwd=project.root, env={**os.environ, "GITML_REVIEW_DIR": str(out)},
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    comment = (out / "comment.md").read_text()
    assert "### gitml: `feature` against `main`" in comment
    assert "| accuracy | 0.9 | 0.95 | +0.05 | +5.56% | ▲ better |" in comment
    assert "<svg" in (out / "report.html").read_text()
    assert (out / "plots" / "final-accuracy.png").stat().st_size > 10_000

    fresh = subprocess.run(["bash", str(examples / "review.sh"), "HEAD~3"], cwd=project.root,
                           env={**os.environ, "GITML_REVIEW_DIR": str(tmp_path / "first")},
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr
    assert (
        "No comparison: gitml: error: HEAD~3: has no metrics.toml"
        in (tmp_path / "first" / "comment.md").read_text()
    )


LOG_NAMED = (
    "import sys, gitml\n"
    "with gitml.start_run(sys.argv[1]) as run:\n"
    "    run.log_metric('accuracy', float(sys.argv[2]))\n"
)


def _named_runs(root, *runs):
    for name, accuracy in runs:
        done = gitml(root, "run", "--", sys.executable, "log_named.py", name, str(accuracy))
        assert done.returncode == 0, done.stderr


def test_diff_of_commits_with_several_runs_pairs_them_by_name(project):
    root = project.root
    (root / "log_named.py").write_text(LOG_NAMED)
    config = root / ".gitml" / "config.toml"
    text = config.read_text().replace("[tracking]\n", '[tracking]\nsummary_run = "tuned"\n', 1)
    config.write_text(text)
    commit_all(root, "script")
    _named_runs(root, ("baseline", 0.8), ("tuned", 0.85))
    commit_all(root, "first runs")
    _named_runs(root, ("baseline", 0.82), ("tuned", 0.9), ("debug", 0.1))
    commit_all(root, "second runs")
    summary = store.read_toml(root / "metrics.toml")
    assert summary["name"] == "tuned" and summary["metrics"]["accuracy"] == 0.9  # not "debug"

    done = gitml(root, "diff", "HEAD~1", "HEAD")
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("comparing run ") and "(tuned)" in first and first.count("tuned") == 2
    assert "HEAD also holds: baseline, debug" in done.stdout
    assert "0.85" in done.stdout and "0.9" in done.stdout

    base = gitml(root, "diff", "HEAD~1", "HEAD", "--run", "baseline")
    assert base.returncode == 0 and "0.8 " in base.stdout and "0.82" in base.stdout
    assert base.stdout.splitlines()[0].count("(baseline) [--run]") == 2

    missing = gitml(root, "diff", "HEAD~1", "HEAD", "--run", "nope")
    assert missing.returncode == 2
    (line,) = missing.stderr.strip().splitlines()
    assert "--run nope: HEAD~1 holds no finished run of that name; it holds baseline, tuned" in line


def test_a_throwaway_run_does_not_move_metrics_toml_past_a_better_one(project):
    root = project.root
    (root / "log_named.py").write_text(LOG_NAMED)
    config = root / ".gitml" / "config.toml"
    config.write_text(config.read_text() + '\n[registry]\nmetric = "accuracy"\n')
    commit_all(root, "script")
    _named_runs(root, ("good", 0.9), ("throwaway", 0.1))
    assert store.read_toml(root / "metrics.toml")["name"] == "good"
    _named_runs(root, ("better", 0.95))
    assert store.read_toml(root / "metrics.toml")["name"] == "better"
