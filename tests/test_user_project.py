"""A user's own project that knows nothing of gitml: the path issue 17's "done when" names.

A plain breast-cancer script, untracked when first run, reads a CSV with pandas and writes a
model with joblib and its score to metrics.json. `gitml run` must record its input and output,
`git add -A` must commit pointers and never model bytes, and lineage, register (no --path),
reproduce and a merge of two branches that each trained must all work.
"""

from __future__ import annotations

import subprocess

import pytest

from gitml import store
from tests.helpers import commit_all, git, gitml, run_ok

TRAIN = """\
import json, os
import joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

df = pd.read_csv("data/cancer.csv")
X, y = df.drop(columns="target"), df["target"]
split_seed = 0
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=split_seed)
C = 1.0
model = LogisticRegression(C=C, max_iter=5000).fit(X_train, y_train)
os.makedirs("models", exist_ok=True)
joblib.dump(model, "models/clf.pkl")
with open("metrics.json", "w") as f:
    json.dump({"accuracy": model.score(X_test, y_test)}, f)
"""


def _write_project(root):
    from sklearn.datasets import load_breast_cancer

    (root / "data").mkdir()
    load_breast_cancer(as_frame=True).frame.to_csv(root / "data" / "cancer.csv", index=False)
    (root / "fit.py").write_text(TRAIN)


def _committed_files(root) -> list[str]:
    return git(root, "ls-files").split()


def _no_pickles_in_git(root) -> None:
    for rev in git(root, "rev-list", "--all").split():
        for path in git(root, "ls-tree", "-r", "--name-only", rev).split():
            assert not path.endswith(".pkl"), f"{path} committed to git in {rev[:8]}"


@pytest.mark.slow
def test_a_plain_script_gets_lineage_registry_reproduction_and_merges(project):
    root = project.root
    _write_project(root)

    done = gitml(root, "run", "--", "python", "fit.py")
    assert done.returncode == 0, done.stderr
    assert "fit.py is not in git; captured in the run's code patch" in done.stderr
    assert "recorded 1 input (data/cancer.csv) and 1 output (models/clf.pkl)" in done.stderr
    (run_dir,) = project.runs_dir.iterdir()
    rec = store.read_toml(run_dir / "run.toml", kind="run")
    assert rec["code"]["dirty"] is True and "fit.py" in rec["code"]["untracked"]
    assert rec["outputs"]["models/clf.pkl"]["detected"] == "written"
    assert rec["inputs"]["data/cancer.csv"]["detected"] == "read"
    assert rec["metrics"]["accuracy"] > 0.9

    commit_all(root, "train a model")
    files = _committed_files(root)
    assert "models/clf.pkl.dvc" in files and "fit.py" in files
    assert "models/clf.pkl" not in files and "metrics.json" not in files
    _no_pickles_in_git(root)

    lineage = run_ok(root, "lineage", "models/clf.pkl")
    assert f"produced by run {rec['id']}" in lineage
    assert "input data/cancer.csv" in lineage

    registered = run_ok(root, "model", "register", rec["id"], "cancer")
    assert "registered cancer v1: models/clf.pkl" in registered

    # HEAD is now the registry's commit: reproduce stands for the runs of the tree it holds.
    done = gitml(root, "reproduce", "HEAD")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reproduced" in done.stdout
    assert "compared 1 metric(s), 0 step series and 1 output(s) by hash" in done.stdout

    # Two branches each train their own variant, on different lines of the script.
    base = git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
    for branch, old, new in (
        ("b1", "C = 1.0", "C = 0.5"),
        ("b2", "split_seed = 0", "split_seed = 3"),
    ):
        git(root, "checkout", "-q", "-b", branch, base)
        (root / "fit.py").write_text((root / "fit.py").read_text().replace(old, new))
        assert gitml(root, "run", "--", "python", "fit.py").returncode == 0
        commit_all(root, f"train {branch}")
    git(root, "checkout", "-q", "b1")
    merged = subprocess.run(
        ["git", "merge", "--no-edit", "b2"], cwd=root, capture_output=True, text=True, check=False
    )
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "CONFLICT" not in merged.stdout
    _no_pickles_in_git(root)
    assert len(list(project.runs_dir.iterdir())) == 3
    pointer = (root / "models" / "clf.pkl.dvc").read_text()
    newest = max(p.name for p in project.runs_dir.iterdir())
    assert f"gitml_run: {newest}" in pointer  # the newer run's model, as metrics.toml shows
    assert store.read_toml(root / "metrics.toml")["run"] == newest
