import json
import sys

from gitml import store
from gitml.data import cache_path
from tests.helpers import commit_all, dvc, git, gitml, run_ok


def test_gitml_run_dvc_repro_records_stage_deps_and_outs(project):
    root = project.root
    (root / "raw.txt").write_text("3\n1\n2\n")
    (root / "sort.py").write_text(
        "open('sorted.txt','w').write(''.join(sorted(open('raw.txt'))))\n"
    )
    (root / "count.py").write_text(
        "open('count.txt','w').write(str(len(open('sorted.txt').readlines())))\n"
    )
    dvc(
        root,
        "stage",
        "add",
        "-n",
        "sort",
        "-d",
        "sort.py",
        "-d",
        "raw.txt",
        "-o",
        "sorted.txt",
        "python sort.py",
    )
    dvc(
        root,
        "stage",
        "add",
        "-n",
        "count",
        "-d",
        "count.py",
        "-d",
        "sorted.txt",
        "-o",
        "count.txt",
        "python count.py",
    )
    commit_all(root, "pipeline")
    done = gitml(root, "run", "--name", "pipeline", "--", sys.executable, "-m", "dvc", "repro")
    assert done.returncode == 0, done.stderr
    (run_dir,) = list(project.runs_dir.iterdir())
    rec = store.read_toml(run_dir / "run.toml", kind="run")
    assert set(rec["inputs"]) == {"raw.txt", "sort.py", "count.py"}
    assert set(rec["outputs"]) == {"sorted.txt", "count.txt"}
    for ref in [*rec["inputs"].values(), *rec["outputs"].values()]:
        assert cache_path(root, ref["md5"]).is_file(), "every recorded file is restorable by hash"
    assert (root / "count.txt").read_text() == "3"


TRAIN = """\
import json, yaml
p = yaml.safe_load(open("params.yaml"))["train"]
open("model.txt", "w").write(f"C={p['C']}\\n")
json.dump({"acc": 0.5 + p["C"] / 10, "nested": {"auc": 0.9}}, open("eval/metrics.json", "w"))
"""
PIPELINE = """\
stages:
  train:
    cmd: python train.py
    deps: [train.py]
    params: [train.C, train.kernel]
    outs: [model.txt]
    metrics:
      - eval/metrics.json:
          cache: false
"""


def test_gitml_run_dvc_repro_records_the_params_it_ran_with_and_its_metrics(project):
    """The params come from dvc.lock, the metrics from the files dvc.yaml declares."""
    root = project.root
    (root / "eval").mkdir()
    (root / "train.py").write_text(TRAIN)
    (root / "dvc.yaml").write_text(PIPELINE)
    recorded = []
    for c in (0.1, 1.0):
        (root / "params.yaml").write_text(f"train:\n  C: {c}\n  kernel: rbf\nunused: 3\n")
        done = gitml(root, "run", "--", sys.executable, "-m", "dvc", "repro")
        assert done.returncode == 0, done.stdout + done.stderr
        commit_all(root, f"repro C={c}")
        latest = max(project.runs_dir.iterdir(), key=lambda d: d.name)
        recorded.append(store.read_toml(latest / "run.toml", kind="run"))
    for c, rec in zip((0.1, 1.0), recorded, strict=True):
        assert rec["params"] == {"train.C": c, "train.kernel": "rbf"}  # not the unused key
        assert rec["metrics"] == {"acc": 0.5 + c / 10, "nested.auc": 0.9}
        assert set(rec["outputs"]) >= {"model.txt"}
    # A mixed repository: each commit's dvc.lock is described by its gitml run, not read twice.
    listed = json.loads(run_ok(root, "runs", "--format", "json"))
    assert sorted(r["id"] for r in listed) == sorted(r["id"] for r in recorded)
    assert not any(r.get("tags", {}).get("dvc.source") for r in listed)
    (root / "notes.md").write_text("n\n")
    commit_all(root, "notes")
    git(root, "checkout", "-q", "HEAD~2", "--", "dvc.lock")  # a lock no gitml run describes
    commit_all(root, "dvc.lock as it was")
    listed = json.loads(run_ok(root, "runs", "--format", "json"))
    (read,) = [r for r in listed if r.get("tags", {}).get("dvc.source") == "commit"]
    assert read["params"]["train.C"] == 0.1 and read["name"] == "dvc"
