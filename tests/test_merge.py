"""The merge driver, through real `git merge` on branches of a real project."""

import subprocess
import sys
import tomllib

import pytest

from gitml import store
from gitml.merge import MergeConflict, merge3, merge_registry
from tests.helpers import commit_all, git

TRAIN = (
    "import sys, gitml\n"
    "with gitml.start_run(params={'lr': float(sys.argv[1])}) as run:\n"
    "    run.log_metric('accuracy', float(sys.argv[1]))\n"
)


def _train_on_branch(root, branch, lr):
    git(root, "checkout", "-q", "-b", branch, "main")
    done = subprocess.run([sys.executable, "train.py", lr], cwd=root, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    commit_all(root, f"train {branch}")
    return tomllib.loads((root / "metrics.toml").read_text())["run"]


def test_two_branches_that_each_add_runs_merge_cleanly(project):
    root = project.root
    (root / "train.py").write_text(TRAIN)
    commit_all(root, "training script")
    run_a = _train_on_branch(root, "feature-a", "0.5")
    run_b = _train_on_branch(root, "feature-b", "0.7")
    git(root, "checkout", "-q", "main")
    git(root, "merge", "-q", "--no-ff", "--no-edit", "feature-a")
    merged = subprocess.run(["git", "merge", "--no-ff", "--no-edit", "feature-b"], cwd=root,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert git(root, "status", "--porcelain") == ""
    assert (root / ".gitml" / "runs" / run_a / "run.toml").exists()
    assert (root / ".gitml" / "runs" / run_b / "run.toml").exists()
    summary = tomllib.loads((root / "metrics.toml").read_text())
    assert summary["run"] == max(run_a, run_b), "metrics.toml shows the newer run"
    assert summary["metrics"]["accuracy"] == pytest.approx(0.7 if run_b > run_a else 0.5)
    assert "<<<<<<<" not in (root / "metrics.toml").read_text()


def _rid(tag):
    """A valid run id made from a short tag such as 'r1'."""
    return "20261101T000000Z-" + tag.encode().hex()[:6].ljust(6, "0")


def _version(number, run, md5):
    return {"version": number, "run": _rid(run), "md5": md5, "path": "model.pkl", "size": 10,
            "created_at": "2026-11-01T00:00:00Z"}  # fmt: skip


def _event(at, action, version, alias=None):
    event = {"at": at, "action": action, "version": version, "by": "test"}
    return {**event, "alias": alias} if alias else event


BASE = {
    "schema_version": 1,
    "name": "wine",
    "versions": [_version(1, "r1", "a" * 32)],
    "aliases": {"production": 1},
    "history": [_event("2026-11-01T00:00:00Z", "register", 1)],
}


def _registry_branch(root, branch, change):
    git(root, "checkout", "-q", "-b", branch, "main")
    doc = tomllib.loads((root / ".gitml/models/wine.toml").read_text())
    change(doc)
    store.write_toml(root / ".gitml/models/wine.toml", doc)
    commit_all(root, f"registry on {branch}")


def _registry_project(project):
    root = project.root
    (root / ".gitml/models").mkdir(parents=True)
    store.write_toml(root / ".gitml/models/wine.toml", BASE)
    commit_all(root, "register wine v1")
    return root


def _merge(root, first, second):
    """On main, merge ``first`` (which must succeed), then ``second``; its result and the file."""
    git(root, "checkout", "-q", "main")
    git(root, "merge", "-q", "--no-edit", first)
    done = subprocess.run(["git", "merge", "--no-edit", second], cwd=root, capture_output=True,
                          text=True, check=False)  # fmt: skip
    text = (root / ".gitml/models/wine.toml").read_text()
    return done, (tomllib.loads(text) if done.returncode == 0 else text)


def test_registry_versions_added_on_two_branches_are_renumbered_not_conflicted(project):
    root = _registry_project(project)

    def add(run, md5, at):
        def change(doc):
            doc["versions"].append(_version(2, run, md5))
            doc["history"].append(_event(at, "register", 2))

        return change

    _registry_branch(root, "a", add("r2", "b" * 32, "2026-11-02T00:00:00Z"))
    _registry_branch(root, "b", add("r3", "c" * 32, "2026-11-03T00:00:00Z"))
    done, doc = _merge(root, "a", "b")
    assert done.returncode == 0, done.stderr
    runs = [(v["version"], v["run"]) for v in doc["versions"]]
    assert runs == [(1, _rid("r1")), (2, _rid("r2")), (3, _rid("r3"))]
    assert [e["version"] for e in doc["history"]] == [1, 2, 3]
    assert doc["aliases"] == {"production": 1}


def test_registry_merge_of_a_promotion_and_a_new_version_is_clean(project):
    root = _registry_project(project)

    def promote(doc):
        doc["versions"].append(_version(2, "r2", "b" * 32))
        doc["aliases"]["production"] = 2
        doc["history"] += [_event("2026-11-02T00:00:00Z", "register", 2),
                           _event("2026-11-02T01:00:00Z", "promote", 2, "production")]  # fmt: skip

    def register(doc):
        doc["versions"].append(_version(2, "r3", "c" * 32))
        doc["aliases"]["staging"] = 2
        doc["history"].append(_event("2026-11-03T00:00:00Z", "register", 2))

    _registry_branch(root, "promote", promote)
    _registry_branch(root, "register", register)
    done, doc = _merge(root, "promote", "register")
    assert done.returncode == 0, done.stderr
    runs = [(v["version"], v["run"]) for v in doc["versions"]]
    assert runs == [(1, _rid("r1")), (2, _rid("r2")), (3, _rid("r3"))]
    assert doc["aliases"] == {"production": 2, "staging": 3}, "their v2 became v3 everywhere"
    assert [(e["action"], e["version"]) for e in doc["history"]] == [
        ("register", 1), ("register", 2), ("promote", 2), ("register", 3)]  # fmt: skip


def test_both_branches_moving_production_apart_conflicts_with_markers(project):
    root = _registry_project(project)

    def to(run, md5):
        def change(doc):
            doc["versions"].append(_version(2, run, md5))
            doc["aliases"]["production"] = 2

        return change

    _registry_branch(root, "x", to("rx", "d" * 32))
    _registry_branch(root, "y", to("ry", "e" * 32))
    done, text = _merge(root, "x", "y")
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "model 'wine': both branches moved 'production'" in said
    assert "this branch to v2 and the other to v3" in said, "their v2 is renumbered before"
    assert "<<<<<<< ours" in text
    assert "wine.toml" in git(root, "diff", "--name-only", "--diff-filter=U")


def test_same_version_registered_on_both_sides_is_kept_once():
    theirs = {**BASE, "versions": [*BASE["versions"], _version(2, "r2", "b" * 32)]}
    merged = merge_registry(BASE, theirs, theirs)
    assert merged["versions"] == theirs["versions"]
    ours = {**BASE, "versions": [*BASE["versions"], _version(2, "r2", "b" * 32)],
            "description": "ours"}  # fmt: skip
    merged = merge_registry(BASE, ours, theirs)
    assert [v["version"] for v in merged["versions"]] == [1, 2]
    assert merged["description"] == "ours"


def test_merge3_takes_each_side_s_change_and_names_a_true_conflict():
    base = {"a": 1, "b": {"c": 1, "d": 1}}
    ours = {"a": 2, "b": {"c": 1, "d": 1}}
    theirs = {"a": 1, "b": {"c": 1, "d": 5}, "e": 1}
    assert merge3(base, ours, theirs) == {"a": 2, "b": {"c": 1, "d": 5}, "e": 1}
    with pytest.raises(MergeConflict, match=r"b\.d: this branch has 2, the other has 5"):
        merge3(base, {"b": {"d": 2}}, {"b": {"d": 5}})
    assert merge3(base, {"b": {"c": 1, "d": 1}}, theirs) == {"b": {"c": 1, "d": 5}, "e": 1}


def test_metrics_toml_merge_keeps_the_better_run_by_the_registry_metric():
    from gitml.merge import merge_summary
    from gitml.repo import SummaryRule

    base = {"run": "20261101T000000Z-000000", "metrics": {"accuracy": 0.5}}
    good = {"run": "20261102T000000Z-aaaaaa", "metrics": {"accuracy": 0.9}}
    newer_worse = {"run": "20261103T000000Z-bbbbbb", "metrics": {"accuracy": 0.7}}
    assert merge_summary(base, good, newer_worse) == newer_worse  # no rule: the newer
    assert merge_summary(base, good, newer_worse, SummaryRule("accuracy", "maximize")) == good
    assert merge_summary(base, newer_worse, good, SummaryRule("accuracy", "maximize")) == good
    assert (
        merge_summary(base, good, newer_worse, SummaryRule("accuracy", "minimize")) == newer_worse
    )
