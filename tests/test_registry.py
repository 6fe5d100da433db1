"""The model registry through the real CLI: every change a real commit, real sklearn models."""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from gitml.repo import Repo
from tests.helpers import GIT_ENV, commit_all, git, gitml

PREPARE = (
    "import gitml\n"
    "from sklearn.datasets import load_iris\n"
    "with gitml.start_run(name='prepare') as run:\n"
    "    frame = load_iris(as_frame=True).frame\n"
    "    frame['species'] = frame.pop('target')\n"
    "    frame.to_csv('iris.csv', index=False)\n"
    "    run.log_artifact('iris.csv')\n"
)
TRAIN = (
    "import pandas as pd, gitml\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "p = gitml.params({'C': 1.0})\n"
    "with gitml.start_run(params=p) as run:\n"
    "    run.log_input('iris.csv')\n"
    "    data = pd.read_csv('iris.csv')\n"
    "    X, y = data.drop(columns='species'), data['species']\n"
    "    model = LogisticRegression(C=p['C'], max_iter=300).fit(X, y)\n"
    "    run.log_metrics({'accuracy': model.score(X, y)})\n"
    "    run.log_model(model, 'model.pkl')\n"
)


def _run(root, *args):
    done = gitml(root, *args)
    assert done.returncode == 0, f"gitml {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def _trained_template(_template, tmp_path_factory):
    """Built once per module: two committed training runs (C=0.01, C=1.0) on prepared iris."""
    root = tmp_path_factory.mktemp("trained") / "project"
    shutil.copytree(_template, root, symlinks=True)
    saved = dict(os.environ)
    os.environ.update(GIT_ENV)
    os.environ["HOME"] = str(root.parent)
    try:
        (root / "prepare.py").write_text(PREPARE)
        (root / "train.py").write_text(TRAIN)
        subprocess.run([sys.executable, "prepare.py"], cwd=root, check=True)
        commit_all(root, "prepare iris")
        runs = []
        for c in ("0.01", "1.0"):
            _run(root, "run", "-p", f"C={c}", "--", "python", "train.py")
            commit_all(root, f"train C={c}")
            runs.append(tomllib.loads((root / "metrics.toml").read_text())["run"])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return root, runs


@pytest.fixture
def trained(_trained_template, tmp_path, monkeypatch):
    """A fresh copy of the trained project; the current directory is its root."""
    template, runs = _trained_template
    root = tmp_path / "project"
    shutil.copytree(template, root, symlinks=True)
    monkeypatch.chdir(root)
    return Repo(root), runs


def _registry(root):
    return tomllib.loads((root / ".gitml/models/iris.toml").read_text())


def test_register_promote_rollback_are_commits_with_authors(trained):
    project, (run1, run2) = trained
    root = project.root
    assert "registered iris v1: model.pkl" in _run(root, "model", "register", run1, "iris")
    out = _run(root, "model", "register", run2[:18], "iris", "-d", "stronger C")
    assert "registered iris v2" in out and "signature: 4 input columns" in out
    assert _run(root, "model", "promote", "iris", "1").strip() == "iris@production -> v1"
    assert _run(root, "model", "promote", "iris", "v2", "-m", "better").strip() == (
        "iris@production -> v2 (was v1)"
    )
    assert _registry(root)["aliases"] == {"production": 2}
    assert _run(root, "model", "rollback", "iris").strip() == (
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
    history = json.loads(_run(root, "model", "history", "iris", "-f", "json"))
    assert [h["message"] for h in history] == [line.split("|")[1] for line in log]
    assert all(h["author"] == "gitml test <test@gitml.invalid>" for h in history)

    # A plain `git revert` of the rollback is a roll-forward: production is v2 again.
    git(root, "revert", "--no-edit", "HEAD")
    shown = json.loads(_run(root, "model", "show", "iris@production", "-f", "json"))
    assert shown["version"] == 2 and shown["run"] == run2 and shown["description"] == "stronger C"


def test_version_records_run_metrics_and_signature_from_training_data(trained):
    project, (run1, _) = trained
    root = project.root
    _run(root, "model", "register", run1, "iris")
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
    _run(root, "model", "register", run1, "iris")
    _run(root, "model", "register", run2, "iris")
    accuracies = [v["metrics"]["accuracy"] for v in _registry(root)["versions"]]
    assert accuracies[1] > accuracies[0]
    _run(root, "model", "promote", "iris", "2")
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
    _run(root, "model", "promote", "iris", "1", "--to", "staging")
    assert gitml(root, "model", "promote", "iris", "2", "--to", "staging",
                 "--require-better").returncode == 0  # fmt: skip


def test_lineage_of_model_at_alias_walks_back_to_raw_data(trained):
    project, (_, run2) = trained
    root = project.root
    _run(root, "model", "register", run2, "iris")
    _run(root, "model", "promote", "iris", "latest")
    tree = _run(root, "lineage", "iris@production")
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
    _run(root, "model", "register", run1, "iris")
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
    _run(root, "run", "-p", "C=0.5", "--", "python", "train.py")
    run = tomllib.loads((root / "metrics.toml").read_text())["run"]
    done = gitml(root, "model", "register", run, "iris")
    assert done.returncode == 2
    assert f"{run} is not committed yet; `git add -A && git commit` it first" in done.stderr
    assert not (root / ".gitml/models/iris.toml").exists()


def test_pre_commit_refuses_a_hand_broken_registry_file(trained):
    project, (run1, _) = trained
    root = project.root
    _run(root, "model", "register", run1, "iris")
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
    from gitml.signature import check_frame

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
