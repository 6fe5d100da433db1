"""A plain DVC repository, built with the real `dvc` CLI, read as runs with no import step.

The pipeline has params in `params.yaml`, a metrics file `dvc.yaml` declares, a DVCLive
folder, a `dvc add`-ed dataset, tags over several commits and a `dvc exp run`. `gitml runs`,
`gitml diff <tag> <tag>` and `gitml lineage <out>` must agree, value for value, with
`dvc exp show --json`, `dvc params diff --json` and `dvc metrics diff --json`.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import commit_all, dvc, git, gitml

PREPARE = """\
import csv, os, random, yaml
from sklearn.datasets import load_iris
p = yaml.safe_load(open("params.yaml"))["prepare"]
rows = list(csv.reader(open("data/iris.csv")))
random.Random(p["seed"]).shuffle(rows)
cut = int(len(rows) * (1 - p["split"]))
os.makedirs("data/prepared", exist_ok=True)
for name, part in (("train", rows[:cut]), ("test", rows[cut:])):
    csv.writer(open(f"data/prepared/{name}.csv", "w", newline="")).writerows(part)
"""
TRAIN = """\
import csv, json, os, pickle, yaml
from dvclive import Live
from sklearn.tree import DecisionTreeClassifier
p = yaml.safe_load(open("params.yaml"))["train"]
def load(name):
    rows = [[float(v) for v in r] for r in csv.reader(open(f"data/prepared/{name}.csv"))]
    return [r[:-1] for r in rows], [int(r[-1]) for r in rows]
(x, y), (tx, ty) = load("train"), load("test")
with Live("eval/live") as live:
    for depth in range(1, p["max_depth"] + 1):
        model = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(x, y)
        live.log_metric("train/acc", model.score(x, y))
        live.next_step()
pickle.dump(model, open("model.pkl", "wb"))
os.makedirs("eval", exist_ok=True)
json.dump({"acc": model.score(tx, ty), "nested": {"depth": int(model.get_depth()),
           "leaves": int(model.get_n_leaves())}}, open("eval/metrics.json", "w"))
"""
PIPELINE = """\
stages:
  prepare:
    cmd: python src/prepare.py
    deps: [src/prepare.py, data/iris.csv]
    params: [prepare]
    outs: [data/prepared]
  train:
    cmd: python src/train.py
    deps: [src/train.py, data/prepared]
    params: [train.max_depth, train.criterion]
    outs: [model.pkl]
    metrics:
      - eval/metrics.json:
          cache: false
metrics:
  - eval/live/metrics.json
"""


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1, v2 (a param changed, reproduced), v3 (a README only), and the experiment `deep`."""
    from sklearn.datasets import load_iris

    root = tmp_path_factory.mktemp("dvc") / "repo"
    (root / "src").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    dvc(root, "init", "-q")
    commit_all(root, "dvc init")  # DVCLive wants a commit to measure from
    (root / "data").mkdir()
    iris = load_iris()
    pairs = zip(iris.data, iris.target, strict=True)
    lines = [",".join([*map(str, row), str(label)]) for row, label in pairs]
    (root / "data" / "iris.csv").write_text("\n".join(lines) + "\n")
    dvc(root, "add", "-q", "data/iris.csv")
    (root / "src" / "prepare.py").write_text(PREPARE)
    (root / "src" / "train.py").write_text(TRAIN)
    (root / "params.yaml").write_text(
        "prepare:\n  split: 0.3\n  seed: 4\ntrain:\n  max_depth: 2\n  criterion: gini\n"
    )
    (root / "dvc.yaml").write_text(PIPELINE)
    dvc(root, "repro", "-q")
    commit_all(root, "pipeline, depth 2")
    git(root, "tag", "v1")
    text = (root / "params.yaml").read_text().replace("max_depth: 2", "max_depth: 3")
    (root / "params.yaml").write_text(text.replace("split: 0.3", "split: 0.25"))
    dvc(root, "repro", "-q")
    commit_all(root, "depth 3, a smaller test split")
    git(root, "tag", "v2")
    (root / "README.md").write_text("iris\n")
    commit_all(root, "a README")
    git(root, "tag", "v3")
    dvc(root, "exp", "run", "-q", "-n", "deep", "-S", "train.max_depth=5")
    git(root, "checkout", "-q", "--", ".")  # the experiment stays in its ref; the workspace is v3
    dvc(root, "checkout", "-q")
    return root


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _same(mine: Any, theirs: Any) -> bool:
    if isinstance(theirs, float) and isinstance(mine, int | float):
        return math.isclose(mine, theirs, rel_tol=0, abs_tol=0)
    return bool(mine == theirs)


def _runs(root: Path) -> dict[str, dict[str, Any]]:
    done = gitml(root, "runs", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(done.stdout)  # one level of nesting: {"params": {"train.max_depth": 3}}
    flat = [
        {f"{k}.{n}" if isinstance(v, dict) else k: x
         for k, v in row.items() for n, x in (v.items() if isinstance(v, dict) else [(k, v)])}
        for row in rows
    ]  # fmt: skip
    return {row["tags.dvc.commit"]: row for row in flat}


def test_gitml_runs_agree_with_dvc_exp_show(dvc_repo: Path) -> None:
    shown = json.loads(dvc(dvc_repo, "exp", "show", "-A", "--json"))
    theirs: dict[str, dict[str, Any]] = {}
    for entry in shown:
        revs = [entry, *(r for exp in entry.get("experiments") or [] for r in exp["revs"])]
        for rev in revs:
            if rev["rev"] != "workspace" and rev.get("data"):
                theirs[rev["rev"]] = rev
    runs = _runs(dvc_repo)
    v1, v2, v3 = (git(dvc_repo, "rev-parse", tag).strip() for tag in ("v1", "v2", "v3"))
    assert v1 in runs and v2 in runs  # each commit that changed dvc.lock is a run
    assert v3 not in runs  # a README commit carries the pipeline's state forward: no new run
    deep = [commit for commit, row in runs.items() if row["name"] == "deep"]
    assert len(deep) == 1 and runs[deep[0]]["tags.dvc.source"] == "experiment"
    assert runs[deep[0]]["tags.dvc.baseline"] == v3
    compared = 0
    for commit, row in runs.items():
        rev = theirs[commit]["data"]
        for file, content in rev["params"].items():
            assert file == "params.yaml"
            for key, value in _flat(content["data"]).items():
                assert _same(row[f"params.{key}"], value), (commit, key)
                compared += 1
        for content in rev["metrics"].values():
            for key, value in _flat(content["data"]).items():
                if key != "step":  # DVCLive's position, not a metric
                    assert _same(row[f"metrics.{key}"], value), (commit, key)
                    compared += 1
        for path, out in rev["outs"].items():
            if not out["is_data_source"]:
                assert row[f"outputs.{path}"] == out["hash"], (commit, path)
                compared += 1
        for path, dep in rev["deps"].items():
            if path not in rev["outs"] or rev["outs"][path]["is_data_source"]:
                assert row[f"inputs.{path}"] == dep["hash"], (commit, path)
                compared += 1
    assert compared >= 3 * 12, compared


def test_gitml_diff_between_tags_agrees_with_dvc_params_and_metrics_diff(dvc_repo: Path) -> None:
    compared = 0
    for old, new in (("v1", "v2"), ("v1", "v3"), ("v2", "v3")):
        done = gitml(dvc_repo, "diff", old, new, "--format", "json")
        assert done.returncode == 0, done.stdout + done.stderr
        mine = json.loads(done.stdout)
        params = json.loads(dvc(dvc_repo, "params", "diff", old, new, "--all", "--json"))
        metrics = json.loads(dvc(dvc_repo, "metrics", "diff", old, new, "--all", "--json"))
        my_params = {p["param"]: p for p in mine["params"]}
        changed = {k for k, v in params.get("params.yaml", {}).items() if v["old"] != v["new"]}
        assert set(my_params) == changed, (old, new)
        for key, values in params.get("params.yaml", {}).items():
            if key in my_params:
                assert (my_params[key]["a"], my_params[key]["b"]) == (values["old"], values["new"])
                compared += 1
        my_metrics = {m["metric"]: m for m in mine["metrics"]}
        for values in metrics.values():
            for key, value in values.items():
                if key == "step":
                    continue
                assert _same(my_metrics[key]["a"], value["old"]), (old, new, key)
                assert _same(my_metrics[key]["b"], value["new"]), (old, new, key)
                compared += 1
    assert compared >= 8, compared


def test_gitml_lineage_of_an_out_agrees_with_dvc(dvc_repo: Path) -> None:
    shown = json.loads(dvc(dvc_repo, "exp", "show", "--json"))
    head = next(e for e in shown if e["rev"] != "workspace")
    deep = head["experiments"][0]["revs"][0]
    dvc(dvc_repo, "exp", "apply", deep["rev"])  # the workspace now holds `deep`'s model
    done = gitml(dvc_repo, "lineage", "model.pkl", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    tree = json.loads(done.stdout)
    assert tree["md5"] == deep["data"]["outs"]["model.pkl"]["hash"]
    run = tree["produced_by"]
    assert run["name"] == "deep"
    inputs = {node["artifact"]: node["md5"] for node in run["inputs"]}
    assert inputs["data/iris.csv"] == deep["data"]["deps"]["data/iris.csv"]["hash"]
    assert inputs["src/train.py"] == deep["data"]["deps"]["src/train.py"]["hash"]
    git(dvc_repo, "checkout", "-q", "--", ".")
    dvc(dvc_repo, "checkout", "-q")


def test_a_plain_dvc_repository_is_read_without_writing_to_it(dvc_repo: Path) -> None:
    copy = dvc_repo.parent / "readonly"
    shutil.copytree(dvc_repo, copy)
    assert gitml(copy, "runs").returncode == 0
    assert not (copy / ".gitml").exists()
    assert git(copy, "status", "--porcelain", "--untracked-files=all") == ""
    done = gitml(copy, "run", "--", "python", "-c", "pass")
    assert done.returncode == 2 and "gitml init" in done.stderr


def test_a_yaml_alias_bomb_in_the_history_is_one_warning(dvc_repo: Path) -> None:
    copy = dvc_repo.parent / "bomb"
    shutil.copytree(dvc_repo, copy)
    git(copy, "checkout", "-q", "-f", "main")
    lines = ["l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    (copy / "params.yaml").write_text("\n".join(lines) + "\n")  # 10^9 values, expanded
    (copy / "dvc.lock").write_text((copy / "dvc.lock").read_text() + "# touched\n")
    bad = commit_all(copy, "an alias bomb")
    started = time.monotonic()
    done = gitml(copy, "runs", "--format", "json")
    assert time.monotonic() - started < 30
    assert done.returncode == 0, done.stderr
    assert f"{bad[:12]}:params.yaml: over 200,000 values" in done.stderr
    assert len(json.loads(done.stdout)) == 3  # v1, v2 and the experiment, still listed
