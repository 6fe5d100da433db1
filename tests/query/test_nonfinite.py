"""NaN and infinity are values; a record that cannot be read is one warning, never a failure."""

import json
import math

import pandas as pd
import pytest

import gitml
from gitml.errors import UsageError
from tests.helpers import commit_all, git
from tests.helpers import gitml as gitml_cli

NAN, INF = float("nan"), float("inf")


def _ok(root, *args):
    done = gitml_cli(root, *args)
    assert done.returncode == 0, f"gitml {args}: {done.stdout}{done.stderr}"
    return done


def _log(name, loss, accuracy, lr):
    with gitml.start_run(name, params={"lr": lr}) as run:
        run.log_metric("loss", 0.5, step=0)
        run.log_metric("loss", loss, step=1)
        run.log_metric("accuracy", accuracy)
    return run.id


def test_nan_and_infinity_round_trip_through_every_query(project, tmp_path):
    root = project.root
    git(root, "checkout", "-q", "-b", "diverged")
    diverged = _log("diverged", NAN, -INF, INF)
    commit_all(root, "a diverged run")  # through the pre-commit and post-commit hooks
    git(root, "checkout", "-q", "-b", "fixed")
    fixed = _log("fixed", 0.25, 0.9, 0.01)
    commit_all(root, "a good run")

    rows = {r["id"]: r for r in json.loads(_ok(root, "runs", "--format", "json").stdout)}
    assert math.isnan(rows[diverged]["metrics"]["loss"])
    assert rows[diverged]["metrics"]["accuracy"] == -INF
    assert rows[diverged]["params"]["lr"] == INF
    table = _ok(root, "runs", "--columns", "name,metrics.loss,metrics.accuracy,params.lr").stdout
    line = next(x for x in table.splitlines() if x.startswith("diverged"))
    assert line.split() == ["diverged", "NaN", "-inf", "inf"]

    def where(expression):
        return [
            r["id"] for r in json.loads(_ok(root, "runs", "-w", expression, "-f", "json").stdout)
        ]

    assert where("metrics.loss < 1") == [fixed], "NaN compares false"
    assert where("metrics.loss >= 0") == [fixed]
    assert where("metrics.loss != 0.25") == [], "NaN is not even unequal"
    assert where("params.lr > 1000") == [diverged], "infinity compares as a number"
    for sort in ("metrics.loss", "-metrics.loss"):
        ordered = [r["id"] for r in json.loads(_ok(root, "runs", "-s", sort, "-f", "json").stdout)]
        assert ordered == [fixed, diverged], f"NaN sorts last for {sort}"
    ordered = [r["id"] for r in json.loads(_ok(root, "runs", "-s", "metrics.accuracy",
                                                 "-f", "json").stdout)]  # fmt: skip
    assert ordered == [diverged, fixed], "-inf sorts first ascending"

    diff = json.loads(_ok(root, "diff", "diverged", "fixed", "--format", "json").stdout)
    loss = next(m for m in diff["metrics"] if m["metric"] == "loss")
    assert loss["verdict"] == "better" and loss["change"] is None, loss
    text = _ok(root, "diff", "diverged", "fixed").stdout
    assert "NaN" in text and "nan%" not in text

    report = tmp_path / "report.html"
    _ok(root, "report", "-o", str(report))
    page = report.read_text()
    assert "NaN" in page and "-inf" in page

    _ok(root, "export", "parquet", str(tmp_path / "export"))
    runs = pd.read_parquet(tmp_path / "export" / "runs.parquet").set_index("run_id")
    assert math.isnan(runs.loc[diverged, "metrics.loss"])
    assert runs.loc[diverged, "params.lr"] == INF
    steps = pd.read_parquet(tmp_path / "export" / "steps")
    mine = steps[(steps["run_id"] == diverged) & (steps["name"] == "loss")].sort_values("step")
    assert mine["value"].iloc[0] == 0.5 and math.isnan(mine["value"].iloc[1])

    _ok(root, "show", diverged)
    assert _ok(root, "check").returncode == 0


def test_params_nested_too_deep_are_refused_at_log_time(project):
    deep: dict = {}
    inner = deep
    for _ in range(40):
        inner["k"] = {}
        inner = inner["k"]
    with gitml.start_run("deep") as run, pytest.raises(UsageError, match="nested more than"):
        run.log_params({"cfg": deep})
    with gitml.start_run("nan-twice", params={"lr": NAN}) as run:
        run.log_params({"lr": NAN})  # the same NaN again is no change


def test_a_corrupt_a_deep_and_a_huge_record_in_history_are_one_warning_each(project, tmp_path):
    root = project.root
    good = _log("good", 0.1, 0.8, 0.1)
    commit_all(root, "good run")
    hostile = {
        "20260101T000000Z-c0c0c0": b'schema_version = 1\nid = "20260101T000000Z-c0c0c0"\n[[[broken',
        "20260101T000000Z-dee9ee": b'schema_version = 1\nparams = { x = ' + b"[" * 5000
        + b"]" * 5000 + b" }\n",
        "20260101T000000Z-b19b19": b'schema_version = 1\nnote = "' + b"x" * (17 * 2**20) + b'"\n',
    }  # fmt: skip
    for run_id, text in hostile.items():
        folder = project.runs_dir / run_id
        folder.mkdir()
        (folder / "run.toml").write_bytes(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", "hostile records (past the hook)")
    bad_commit = git(root, "rev-parse", "HEAD").strip()
    git(root, "rm", "-q", "-r", *[f".gitml/runs/{r}" for r in hostile])
    git(root, "commit", "-q", "-m", "deleted again: still in history")

    for args in (["runs"], ["runs", "-f", "json"], ["runs", "-w", "metrics.loss > 0"],
                 ["report", "-o", str(tmp_path / "r.html")], ["show", good],
                 ["diff", bad_commit, "HEAD"]):  # fmt: skip
        done = gitml_cli(root, *args)
        assert done.returncode == 0, f"gitml {args}: {done.stderr}"
        assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    done = gitml_cli(root, "runs", "-f", "json")
    assert [r["id"] for r in json.loads(done.stdout)] == [good]
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == len(hostile), warnings
    for run_id in hostile:
        (line,) = [w for w in warnings if run_id in w]
        assert bad_commit[:12] in line and "run.toml" in line, line
    assert any("nested too deeply" in w for w in warnings)
    assert any("MiB limit" in w for w in warnings)
    assert any("invalid TOML" in w for w in warnings)


def test_a_misspelt_field_is_an_error_with_the_nearest_names(project):
    root = project.root
    _log("one", 0.5, 0.9, 0.1)
    mistakes = ((["-w", "metrics.acuracy > 0.9"], "--where", "metrics.accuracy"),
                (["-s", "-metrics.acurracy"], "--sort", "metrics.accuracy"),
                (["--columns", "id,params.rl"], "--columns", "params.lr"))  # fmt: skip
    for args, option, near in mistakes:
        done = gitml_cli(root, "runs", *args)
        assert done.returncode == 2, (args, done.stdout)
        (line,) = done.stderr.strip().splitlines()
        assert f"{option}: no run has the field" in line and near in line, line
    assert _ok(root, "runs", "-w", "metrics.accuracy > 0.5").stdout.count("one") == 1


def test_a_type_mismatch_in_where_is_an_error_naming_the_fix(project):
    root = project.root
    _log("one", 0.5, 0.9, 0.1)
    mistakes = (
        ("metrics.accuracy > '0.9'", "metrics.accuracy is a number; compare it with a number"),
        ("params.lr == '0.1'", "params.lr holds number but is compared with the text '0.1'"),
        ("status == 1", "status holds text but is compared with the number 1"),
    )
    for expression, said in mistakes:
        done = gitml_cli(root, "runs", "-w", expression)
        assert done.returncode == 2, (expression, done.stdout)
        (line,) = done.stderr.strip().splitlines()
        assert said in line, line
    assert _ok(root, "runs", "-w", "params.lr == 0.1").stdout.count("one") == 1
