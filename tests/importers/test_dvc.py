"""`gitml import dvc`: experiments made by the real `dvc exp run` with DVCLive, compared."""

import subprocess
import sys

import dvc.api

import gitml
from gitml.export import steps_frame
from tests.helpers import commit_all, git
from tests.helpers import gitml as gitml_cli

TRAIN = """\
import json, os
import yaml
from dvclive import Live

p = yaml.safe_load(open("params.yaml"))
os.makedirs("eval", exist_ok=True)
with Live() as live, open("eval/val_loss.csv", "w") as val:
    val.write("step,val_loss\\n")
    for epoch in range(p["epochs"]):
        live.log_metric("loss", 1.0 / (epoch + 1) + p["lr"])
        live.log_metric("eval/acc", 0.5 + epoch * 0.1 - p["lr"])
        val.write(f"{epoch},{2.0 / (epoch + 1)}\\n")
        live.next_step()
roc = {"train": [{"fpr": 0.0, "tpr": 0.0}, {"fpr": 1.0, "tpr": 1.0}]}
json.dump(roc, open("eval/roc.json", "w"))
"""
PIPELINE = """\
stages:
  train:
    cmd: python train.py
    deps: [train.py]
    params: [lr, epochs]
    outs:
      - dvclive/plots:
          cache: false
      - eval:
          cache: false
    metrics:
      - dvclive/metrics.json:
          cache: false
plots:
  - eval/val_loss.csv:
      x: step
  - ROC:
      x: fpr
      y:
        eval/roc.json: tpr
"""


def test_dvc_experiments_and_dvclive_become_runs(project):
    root = project.root
    (root / "train.py").write_text(TRAIN)
    (root / "params.yaml").write_text("lr: 0.1\nepochs: 4\n")
    (root / "dvc.yaml").write_text(PIPELINE)
    commit_all(root, "a DVC pipeline with DVCLive")
    for name, lr, epochs in (("fast", 0.01, 6), ("slow", 0.05, 3)):
        done = subprocess.run([sys.executable, "-m", "dvc", "exp", "run", "-q", "-n", name,
                               "-S", f"lr={lr}", "-S", f"epochs={epochs}"],
                              cwd=root, capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    baseline = git(root, "rev-parse", "HEAD").strip()

    done = gitml_cli(root, "import", "dvc", "--dvclive", "dvclive")
    assert done.returncode == 0, done.stdout + done.stderr
    # DVCLive's two series, and dvc.yaml's val_loss plot (a ROC curve is not steps)
    assert done.stdout.startswith("imported 3 runs (0 already there) from 3 experiments: "
                                  f"{3 * (6 + 3) + 2 * 3} metric steps")  # fmt: skip

    shown = {r["Experiment"]: r for r in dvc.api.exp_show(repo=str(root)) if r["Experiment"]}
    ours = gitml.runs().set_index("name")
    for name in ("fast", "slow"):
        theirs, mine = shown[name], ours.loc[name]
        assert mine["metrics.loss"] == theirs["loss"]
        assert mine["metrics.eval.acc"] == theirs["eval.acc"]
        assert mine["params.lr"] == theirs.get("params.yaml:lr", theirs.get("lr"))
        assert mine["params.epochs"] == theirs.get("params.yaml:epochs", theirs.get("epochs"))
        assert mine["code.commit"] == baseline
        assert mine["tags.dvc.baseline"] == baseline and mine["tags.dvc.experiment"] == name
    steps = steps_frame(project)
    fast = ours.loc["fast", "run_id"]
    loss = steps[(steps["run_id"] == fast) & (steps["name"] == "loss")]
    assert loss["step"].tolist() == list(range(6))
    assert abs(loss["value"].iloc[-1] - (1 / 6 + 0.01)) < 1e-12
    val = steps[(steps["run_id"] == fast) & (steps["name"] == "val_loss")]
    assert val["step"].tolist() == list(range(6)) and val["value"].iloc[-1] == 2.0 / 6
    assert not steps["name"].isin(["roc", "roc.json", "tpr"]).any()
    assert ours.loc["dvclive", "tags.dvclive.folder"] == "dvclive"

    again = gitml_cli(root, "import", "dvc", "--dvclive", "dvclive")
    assert again.stdout.startswith("imported 0 runs (3 already there)")


def test_an_unreadable_file_of_an_experiment_is_a_warning_naming_it(caplog):
    from gitml.importers.dvc import _yaml

    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"l{i}: &l{i} [{', '.join(['*' + ('a' if i == 0 else f'l{i - 1}')] * 10)}]\n"
        for i in range(7)
    )
    cases = {"0123456789ab:params.yaml": "a: [1,\n", "0123456789ab:eval/metrics.json": bomb}
    for source, text in cases.items():
        caplog.clear()
        with caplog.at_level("WARNING"):
            assert _yaml(text, source) is None
        assert len(caplog.records) == 1 and source in caplog.records[0].getMessage(), source
    assert _yaml("lr: 0.1\n", "params.yaml") == {"lr": 0.1}
