"""The CI templates in examples/ci/, run locally, step by step, in a real repository."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import commit_all, git, gitml

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "ci"
TRAIN = (
    "import gitml\n"
    "p = gitml.params({'depth': 2})\n"
    "with gitml.start_run(params=p) as run:\n"
    "    run.log_metrics({'accuracy': 0.80 + 0.05 * p['depth'], 'loss': 1.0 / p['depth']})\n"
)
HOSTED_ONLY = ("pip install", "gh pr comment")  # the runner's own setup and GitHub's API


def _github_steps():
    workflow = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    assert workflow.get("on", workflow.get(True)) == "pull_request"  # YAML 1.1 reads on: as True
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}
    steps = workflow["jobs"]["review"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    assert steps[0]["with"]["fetch-depth"] == 0, "gitml reads runs from the whole history"
    return [s["run"] for s in steps if "run" in s]


def _gitlab_steps():
    job = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())["gitml-review"]
    assert job["variables"]["GIT_DEPTH"] == 0
    assert job["artifacts"]["paths"] == ["gitml-review/"]
    return job["script"]


@pytest.mark.parametrize("steps", [_github_steps, _gitlab_steps], ids=["github", "gitlab"])
def test_the_workflow_runs_in_order_on_a_pull_request(project, tmp_path, steps):
    root = project.root
    shutil.copytree(EXAMPLES, root / "examples" / "ci")
    (root / "train.py").write_text(TRAIN)
    commit_all(root, "script")
    assert gitml(root, "run", "--", "python", "train.py").returncode == 0
    commit_all(root, "baseline run")
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(root, "remote", "add", "origin", str(origin))
    git(root, "push", "-q", "origin", "main")
    git(root, "checkout", "-q", "-b", "deeper")
    (root / "train.py").write_text(TRAIN.replace("'depth': 2", "'depth': 3"))
    commit_all(root, "deeper model")

    commands = [re.sub(r"\$\{\{ github\.base_ref \}\}", "main", c) for c in steps()
                if not any(h in c for h in HOSTED_ONLY)]  # fmt: skip
    gitml_steps = [c.split()[:2] for c in commands if c.startswith("gitml")]
    assert gitml_steps == [["gitml", "init"], ["gitml", "pull"], ["gitml", "reproduce"],
                           ["gitml", "run"]]  # fmt: skip
    assert "examples/ci/review.sh" in commands[-1] and commands[-1].endswith("workspace")
    env = {**os.environ, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"}
    for command in commands:  # GitLab's own `git fetch origin main` runs too
        done = subprocess.run(["bash", "-c", command], cwd=root, env=env,
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
        if command.startswith("gitml reproduce"):
            assert "reproduced" in done.stdout
    comment = (root / "gitml-review" / "comment.md").read_text()
    assert "### gitml: `workspace` against `origin/main`" in comment
    assert "| accuracy | 0.9 | 0.95 | +0.05 | +5.56% | ▲ better |" in comment
    assert "<svg" in (root / "gitml-review" / "report.html").read_text()


def test_the_check_workflow_uploads_sarif_even_when_the_check_fails(project):
    from tests.test_check import EVIL_TRAIN

    workflow = yaml.safe_load((EXAMPLES / "gitml-check.yml").read_text())
    assert workflow["permissions"] == {"contents": "read", "security-events": "write"}
    steps = workflow["jobs"]["check"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0
    (check,) = [s for s in steps if s.get("id") == "check"]
    (upload,) = [s for s in steps if "upload-sarif" in s.get("uses", "")]
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    assert upload["if"].startswith("always()")
    output = check["run"].split("--output ")[1].split()[0]
    assert upload["with"]["sarif_file"] == output
    commands = [s["run"] for s in steps if "run" in s and "pip install" not in s["run"]]
    assert commands == ["gitml init", check["run"]]

    root = project.root
    (root / "train.py").write_text(EVIL_TRAIN)
    assert gitml(root, "run", "--", "python", "train.py").returncode == 0
    commit_all(root, "a model that runs a shell command when loaded")
    codes = []
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=root, capture_output=True, text=True,
                              check=False)  # fmt: skip
        codes.append(done.returncode)
    assert codes == [0, 1], "the check step fails the job"
    log = json.loads((root / output).read_text())
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "unsafe-pickle" and "posix.system" in result["message"]["text"]
    location = result["locations"][0]["physicalLocation"]
    run_file = location["artifactLocation"]["uri"]
    assert run_file.startswith(".gitml/runs/") or run_file == "model.pkl.dvc"
    # --all-history reads git blobs; the working tree holds the same version: the line is known
    line = (root / run_file).read_text().splitlines()[location["region"]["startLine"] - 1]
    assert "md5" in line
