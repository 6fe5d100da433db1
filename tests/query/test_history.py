import json
import os

import pytest

import gitml
from gitml.query.index import RunIndex
from tests.helpers import commit_all, git
from tests.helpers import gitml as gitml_cli


def _run(project, name, accuracy, **params):
    with gitml.start_run(name, params=params) as run:
        run.log_metric("accuracy", accuracy)
    return run.id


def _ids(out):
    return [r["id"] for r in json.loads(out)]


def test_query_spans_branches_without_checking_out(project):
    root = project.root
    on_main = _run(project, "main-1", 0.80, depth=2)
    commit_all(root, "main run")
    git(root, "checkout", "-q", "-b", "feature")
    on_feature = [_run(project, "feat-1", 0.95, depth=8), _run(project, "feat-2", 0.90, depth=6)]
    commit_all(root, "feature runs")
    git(root, "checkout", "-q", "main")
    assert not (project.run_dir(on_feature[0]) / "run.toml").exists(), (
        "feature runs are not in main's tree"
    )
    head_before = git(root, "rev-parse", "HEAD")
    uncommitted = _run(project, "wip", 0.5, depth=1)
    status_before = git(root, "status", "--porcelain")

    done = gitml_cli(root, "runs", "--sort", "-metrics.accuracy", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert _ids(done.stdout) == [on_feature[0], on_feature[1], on_main, uncommitted]
    rows = {r["id"]: r for r in json.loads(done.stdout)}
    assert rows[uncommitted]["commit"] is None
    assert rows[on_main]["commit"] == git(root, "rev-parse", "HEAD").strip()
    assert git(root, "rev-parse", "HEAD") == head_before
    assert git(root, "status", "--porcelain") == status_before, "a query changes no file"

    where = gitml_cli(root, "runs", "--where", "metrics.accuracy > 0.85 and params.depth >= 8",
                      "--format", "json")  # fmt: skip
    assert _ids(where.stdout) == [on_feature[0]]


def test_dataframe_api(project):
    root = project.root
    ids = [_run(project, f"r{i}", 0.1 * i, depth=i) for i in range(1, 4)]
    commit_all(root, "runs")
    frame = gitml.runs("metrics.accuracy > 0.15", sort="-metrics.accuracy")
    assert list(frame["id"]) == [ids[2], ids[1]]
    assert list(frame["params.depth"]) == [3, 2]
    assert str(frame["start_time"].dtype).startswith("datetime64")
    assert gitml.runs(limit=1).shape[0] == 1
    assert gitml.get_run(ids[0][:-2])["name"] == "r1"


def test_index_reads_only_what_changed(project):
    from gitml.hook_install import uninstall

    root = project.root
    uninstall(root)  # the post-commit hook would index each commit itself
    _run(project, "a", 0.1)
    commit_all(root, "a")
    index = RunIndex(project)
    assert index.refresh_history() >= 1
    assert index.refresh_history() == 0, "nothing moved: nothing is walked"
    _run(project, "b", 0.2)
    commit_all(root, "b")
    assert index.refresh_history() == 1, "only the new commit is read"
    index.close()


def test_rewritten_history_drops_runs(project):
    root = project.root
    keep = _run(project, "keep", 0.1)
    commit_all(root, "keep")
    drop = _run(project, "drop", 0.2)
    commit_all(root, "drop")
    assert set(_ids(gitml_cli(root, "runs", "-f", "json").stdout)) == {keep, drop}
    git(root, "reset", "-q", "--hard", "HEAD~1")
    assert _ids(gitml_cli(root, "runs", "-f", "json").stdout) == [keep]


def test_newest_committed_version_of_a_run_wins(project):
    root = project.root
    run = gitml.start_run("slow")
    run.log_metric("loss", 1.0)
    commit_all(root, "run started")
    run.log_metric("loss", 0.5)
    run.end()
    commit_all(root, "run finished")
    git(root, "checkout", "-q", "HEAD~1")  # detached at the older version
    git(root, "checkout", "-q", "main")
    (row,) = json.loads(gitml_cli(root, "runs", "-f", "json").stdout)
    assert row["status"] == "finished" and row["metrics"]["loss"] == 0.5


def test_broken_record_in_history_is_a_warning_not_a_failure(project):
    root = project.root
    good = _run(project, "good", 0.1)
    bad_dir = project.runs_dir / "20260101T000000Z-000000"
    bad_dir.mkdir()
    (bad_dir / "run.toml").write_text(
        'schema_version = 1\nid = "20260101T000000Z-000000"\nstatus = "weird"\n'
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", "with a broken run (past the pre-commit hook)")
    done = gitml_cli(root, "runs", "-f", "json")
    assert done.returncode == 0
    assert _ids(done.stdout) == [good]
    assert "skipping run 20260101T000000Z-000000" in done.stderr
    assert "field" in done.stderr and "run.toml" in done.stderr


def test_deleted_index_is_rebuilt(project):
    root = project.root
    rid = _run(project, "a", 0.1)
    commit_all(root, "a")
    gitml_cli(root, "runs")
    (project.cache_dir / "index.sqlite").write_bytes(b"garbage" * 100)
    assert _ids(gitml_cli(root, "runs", "-f", "json").stdout) == [rid]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--where", "metrics.acc >"],
            "gitml: error: --where 'metrics.acc >': the expression ends too early",
        ),
        (["--sort", "bogus"], "gitml: error: --sort 'bogus': unknown field 'bogus'"),
        (["--limit", "-1"], "gitml runs: error: Invalid value for '--limit' / '-l'"),
        (["--format", "xml"], "gitml runs: error: Invalid value for '--format' / '-f'"),
    ],
    ids=["where", "sort", "limit", "format"],
)
def test_bad_query_arguments(project, args, message):
    done = gitml_cli(project.root, "runs", *args)
    assert done.returncode == 2
    assert done.stderr.startswith(message)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_show_prefix_and_ambiguity(project):
    a = _run(project, "a", 0.1)
    with gitml.start_run("b") as run:
        for i in range(4):
            run.log_metric("loss", 1 / (i + 1))
    shown = gitml_cli(project.root, "show", run.id[:-1])
    assert shown.returncode == 0, shown.stderr
    assert f'id = "{run.id}"' in shown.stdout and "loss" in shown.stdout
    assert "4" in shown.stdout.split("# step metrics")[1]
    amb = gitml_cli(project.root, "show", os.path.commonprefix([a, run.id]))  # noqa: RUF071
    assert amb.returncode == 2 and "matches 2 runs" in amb.stderr
    missing = gitml_cli(project.root, "show", "nope")
    assert missing.returncode == 2 and "no run with this id or prefix" in missing.stderr


def test_table_shows_params_that_differ(project):
    _run(project, "a", 0.1, depth=2, seed=0)
    _run(project, "b", 0.2, depth=3, seed=0)
    out = gitml_cli(project.root, "runs").stdout
    header = out.splitlines()[0].split()
    assert header == [
        "id",
        "name",
        "status",
        "start_time",
        "commit",
        "metrics.accuracy",
        "params.depth",
    ]
    csv = gitml_cli(project.root, "runs", "-f", "csv", "-c", "name,params.seed").stdout
    assert csv.splitlines() == ["name,params.seed", "b,0", "a,0"]


def test_git_log_shows_parquet_metrics_as_a_summary(project):
    with gitml.start_run("curve") as run:
        for i in range(50):
            run.log_metric("loss", 1 / (i + 1))
    commit_all(project.root, "curve")
    log = git(project.root, "log", "-p", "-1", "--", ".gitml/runs")
    assert "Binary files" not in log
    summary = [line for line in log.splitlines() if line.startswith("+loss")]
    assert summary and summary[0].split()[1:4] == ["50", "0", "49"]
    rows = gitml_cli(project.root, "textconv", "--rows", str(run.dir / "metrics.parquet")).stdout
    assert rows.splitlines()[0] == "name\tstep\tvalue" and len(rows.splitlines()) == 51
