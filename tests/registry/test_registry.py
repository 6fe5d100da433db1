"""The model registry through the real CLI: every change a real commit, real sklearn models."""

import json
import re
import subprocess
import tomllib

import pytest

from tests.helpers import commit_all, git, gitml, run_ok


def _registry(root):
    return tomllib.loads((root / ".gitml/models/iris.toml").read_text())


def test_register_promote_rollback_are_commits_with_authors(trained):
    project, (run1, run2) = trained
    root = project.root
    assert "registered iris v1: model.pkl" in run_ok(root, "model", "register", run1, "iris")
    out = run_ok(root, "model", "register", run2[:18], "iris", "-d", "stronger C")
    assert "registered iris v2" in out and "signature: 4 input columns" in out
    assert run_ok(root, "model", "promote", "iris", "1").strip() == "iris@production -> v1"
    assert run_ok(root, "model", "promote", "iris", "v2", "-m", "better").strip() == (
        "iris@production -> v2 (was v1)"
    )
    assert _registry(root)["aliases"] == {"production": 2}
    assert run_ok(root, "model", "rollback", "iris").strip() == (
        "iris@production -> v1 (rolled back from v2)"
    )
    assert _registry(root)["aliases"] == {"production": 1}
    assert git(root, "status", "--porcelain") == "", "every change is committed"

    log = git(root, "log", "--format=%an|%s", "-5").splitlines()
    assert log == [
        "gitml test|model iris: roll production back to v1 (from v2)",
        "gitml test|model iris: promote v2 to production (was v1): better",
        "gitml test|model iris: promote v1 to production",
        f"gitml test|model iris: register v2 from run {run2}",
        f"gitml test|model iris: register v1 from run {run1}",
    ]
    history = json.loads(run_ok(root, "model", "history", "iris", "-f", "json"))
    assert [h["message"] for h in history] == [line.split("|")[1] for line in log]
    assert all(h["author"] == "gitml test <test@gitml.invalid>" for h in history)

    # A plain `git revert` of the rollback is a roll-forward: production is v2 again.
    git(root, "revert", "--no-edit", "HEAD")
    shown = json.loads(run_ok(root, "model", "show", "iris@production", "-f", "json"))
    assert shown["version"] == 2 and shown["run"] == run2 and shown["description"] == "stronger C"


def test_version_records_run_metrics_and_signature_from_training_data(trained):
    project, (run1, _) = trained
    root = project.root
    run_ok(root, "model", "register", run1, "iris")
    (version,) = _registry(root)["versions"]
    record = tomllib.loads((project.runs_dir / run1 / "run.toml").read_text())
    assert version["md5"] == record["outputs"]["model.pkl"]["md5"]
    assert version["code_commit"] == record["code"]["commit"]
    assert version["metrics"] == record["metrics"]
    assert version["created_by"] == "gitml test <test@gitml.invalid>"
    signature = version["signature"]
    names = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
    assert [c["name"] for c in signature["inputs"]] == names
    assert {c["type"] for c in signature["inputs"]} == {"double"}
    assert signature["source"] == "iris.csv"
    assert signature["classes"] == [0, 1, 2] and signature["output"]["type"] == "long"


def test_require_better_gates_a_promotion(trained):
    project, (run1, run2) = trained
    root = project.root
    run_ok(root, "model", "register", run1, "iris")
    run_ok(root, "model", "register", run2, "iris")
    accuracies = [v["metrics"]["accuracy"] for v in _registry(root)["versions"]]
    assert accuracies[1] > accuracies[0]
    run_ok(root, "model", "promote", "iris", "2")
    head = git(root, "rev-parse", "HEAD")
    refused = gitml(
        root, "model", "promote", "iris", "1", "--require-better", "--metric", "accuracy"
    )
    assert refused.returncode == 1
    assert "iris: v1 is not better than v2 on accuracy" in refused.stderr
    assert git(root, "rev-parse", "HEAD") == head and _registry(root)["aliases"]["production"] == 2
    no_metric = gitml(root, "model", "promote", "iris", "1", "--require-better")
    assert no_metric.returncode == 2 and "--require-better needs a metric" in no_metric.stderr
    config = project.config_path.read_text() + '\n[registry]\nmetric = "accuracy"\n'
    project.config_path.write_text(config)
    commit_all(root, "gate on accuracy")
    run_ok(root, "model", "promote", "iris", "1", "--to", "staging")
    assert gitml(root, "model", "promote", "iris", "2", "--to", "staging",
                 "--require-better").returncode == 0  # fmt: skip


def test_lineage_of_model_at_alias_walks_back_to_raw_data(trained):
    project, (_, run2) = trained
    root = project.root
    run_ok(root, "model", "register", run2, "iris")
    run_ok(root, "model", "promote", "iris", "latest")
    tree = run_ok(root, "lineage", "iris@production")
    lines = tree.splitlines()
    assert lines[0].startswith("iris@production = iris v1: model.pkl (md5 ")
    assert f"produced by run {run2}" in lines[1]
    assert "input iris.csv" in tree and "'prepare'" in tree


def test_bad_input_is_one_clear_line_and_changes_nothing(trained):
    project, (run1, _) = trained
    root = project.root
    head = git(root, "rev-parse", "HEAD")
    cases = [
        (("model", "promote", "nope", "1"), "model 'nope': not registered"),
        (("model", "register", "zzz", "iris"), "run 'zzz': no run with this id or prefix"),
        (("model", "register", run1, "bad name"), "name: 'bad name': use letters"),
        (("model", "register", run1, "iris", "--path", "x.pkl"), "x.pkl: not an output of run"),
        (("lineage", "iris@production"), "model 'iris': not registered"),
    ]
    for args, message in cases:
        done = gitml(root, *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
    run_ok(root, "model", "register", run1, "iris")
    for args, message in [
        (("model", "show", "iris@9"), "iris@9: no such version (versions: v1)"),
        (("model", "show", "iris@staging"), "iris@staging: no such alias (aliases: none)"),
        (("model", "rollback", "iris"), "iris@production: no such alias"),
        (("model", "register", run1, "iris"), f"{run1}'s model.pkl is iris v1 already"),
        (("model", "promote", "iris", "1", "--to", "latest"), "--to: 'latest'"),
    ]:
        done = gitml(root, *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
    assert git(root, "rev-list", "--count", f"{head.strip()}..HEAD").strip() == "1"
    assert git(root, "status", "--porcelain") == ""


def test_an_uncommitted_run_cannot_be_registered(trained):
    project, _ = trained
    root = project.root
    run_ok(root, "run", "-p", "C=0.5", "--", "python", "train.py")
    run = tomllib.loads((root / "metrics.toml").read_text())["run"]
    done = gitml(root, "model", "register", run, "iris")
    assert done.returncode == 2
    assert f"{run} is not committed yet; `git add -A && git commit` it first" in done.stderr
    assert not (root / ".gitml/models/iris.toml").exists()


def test_pre_commit_refuses_a_hand_broken_registry_file(trained):
    project, (run1, _) = trained
    root = project.root
    run_ok(root, "model", "register", run1, "iris")
    path = root / ".gitml/models/iris.toml"
    path.write_text(path.read_text().replace("[aliases]", "[aliases]\nproduction = 7"))
    git(root, "add", "-A")
    done = subprocess.run(["git", "commit", "-qm", "hand edit"], cwd=root, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode != 0
    assert ".gitml/models/iris.toml: field aliases.production: v7 is not a version" in done.stderr


def test_check_frame_orders_columns_and_names_what_is_wrong():
    import pandas as pd

    from gitml.errors import UsageError
    from gitml.serving.signature import check_frame

    signature = {"inputs": [{"name": "a", "type": "double"}, {"name": "b", "type": "long"}]}
    frame = check_frame(signature, pd.DataFrame({"b": [1, 2], "a": [0.5, 1.5]}), where="input")
    assert list(frame.columns) == ["a", "b"]
    for bad, message in [
        (pd.DataFrame({"a": [1.0]}), "input: missing feature(s) b"),
        (pd.DataFrame({"a": [1.0], "b": [1], "c": [2]}), "input: unknown feature(s) c"),
        (pd.DataFrame({"a": ["x"], "b": [1]}), "feature 'a' must be a number (double), got string"),
    ]:  # fmt: skip
        with pytest.raises(UsageError, match=re.escape(message)):
            check_frame(signature, bad, where="input")


def test_a_misspelt_alias_is_refused_unless_new_alias(served):
    refused = gitml(served, "model", "promote", "iris", "1", "--to", "prodution")
    assert refused.returncode == 1
    assert "did you mean 'production'?" in refused.stderr and "--new-alias" in refused.stderr
    assert "prodution" not in (served / ".gitml/models/iris.toml").read_text()
    made = gitml(served, "model", "promote", "iris", "1", "--to", "prodution", "--new-alias")
    assert made.returncode == 0, made.stderr


def _snapshot(root):
    import hashlib

    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts[:1]
    }


def test_the_promotion_guard_writes_nothing_on_a_read_only_checkout(served):
    import shutil

    from gitml.check.guard import version_findings
    from gitml.registry import versions as registry
    from gitml.repo import Repo

    root = served
    # A run whose process died: the query path would close it as crashed; a check must not.
    doomed = "import gitml, os\nrun = gitml.start_run('doomed')\nos.kill(os.getpid(), 9)\n"
    subprocess.run(["python", "-c", doomed], cwd=root, check=False)
    # No cache folder gitml could write to: it is a file here.
    shutil.rmtree(root / ".gitml" / "cache")
    (root / ".gitml" / "cache").write_text("read-only stand-in\n")
    before = _snapshot(root)
    assert any(p.endswith("run.toml") and "running" in (root / p).read_text() for p in before)

    repo = Repo(root)
    doc = registry.load(repo, "iris")
    for version in doc["versions"]:
        assert version_findings(repo, doc, version) == []
    assert _snapshot(root) == before, "the guard wrote to the checkout"
