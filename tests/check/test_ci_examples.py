"""The CI templates in examples/ci/: validated, hardened, and run step by step in a real repo."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import commit_all, git, gitml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ci"
WORKFLOWS = ("github-actions.yml", "gitml-check.yml")
TRAIN = (
    "import gitml\n"
    "p = gitml.params({'depth': 2})\n"
    "with gitml.start_run(params=p) as run:\n"
    "    run.log_metrics({'accuracy': 0.80 + 0.05 * p['depth'], 'loss': 1.0 / p['depth']})\n"
)
UNSTABLE = TRAIN.replace("0.80 +", "__import__('random').random() / 100 + 0.80 +")
CONTEXT = {  # what GitHub fills ${{ ... }} with, here
    "github.base_ref": "main", "github.event.pull_request.number": "7",
    "github.repository": "org/repo", "github.token": "", "github.ref": "refs/pull/7/merge",
}  # fmt: skip
PINNED = "gitml @ git+https://github.com/org/gitml@" + "0123456789abcdef" * 2 + "01234567"


def _load(name):
    return yaml.safe_load((EXAMPLES / name).read_text())


@pytest.mark.parametrize(("name", "schema"), [("github-actions.yml", "vendor.github-workflows"),
                                              ("gitml-check.yml", "vendor.github-workflows"),
                                              ("gitlab-ci.yml", "vendor.gitlab-ci")])  # fmt: skip
def test_the_templates_validate_against_the_vendored_schemas(name, schema):
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema,
               str(EXAMPLES / name)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", WORKFLOWS)
def test_github_workflows_are_hardened(name):
    workflow = _load(name)
    (job,) = workflow["jobs"].values()
    assert job["timeout-minutes"] <= 60 and "concurrency" in workflow
    assert workflow["concurrency"]["cancel-in-progress"] is True
    for step in job["steps"]:
        if "uses" in step:
            assert re.fullmatch(r"[\w./-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
        # Untrusted values (a branch name, a PR title) reach the shell only through env:.
        assert "${{" not in step.get("run", ""), step["run"]
    assert job["steps"][0]["with"]["fetch-depth"] == 0
    for step in job["steps"]:
        run = step.get("run", "")
        if run.startswith(("gitml pull", "gitml reproduce", "gitml check")):
            assert step["env"]["AWS_SECRET_ACCESS_KEY"].startswith("${{ secrets."), step
        if "upload-" in step.get("uses", "") or "comment" in step.get("name", "").lower():
            assert step["if"].startswith("always()"), step
    _check_install_guard(next(s["run"] for s in job["steps"] if "pip install" in s.get("run", "")),
                         workflow["env"]["GITML_PACKAGE"])  # fmt: skip


def test_gitlab_job_is_hardened():
    job = _load("gitlab-ci.yml")["gitml-review"]
    assert job["timeout"] and job["interruptible"] is True and "resource_group" in job
    assert job["variables"]["GIT_DEPTH"] == 0
    assert job["artifacts"] == {"when": "always", "paths": ["gitml-review/"]}
    guard = next(line for line in job["script"] if "GITML_PACKAGE" in line and "[[" in line)
    _check_install_guard(guard, job["variables"]["GITML_PACKAGE"])


def _check_install_guard(script, placeholder):
    """The install refuses an unpinned package and accepts a commit-pinned one."""
    guard = script.split("python -m pip install")[0].rstrip().rstrip("\\").strip()
    for value, code in ((placeholder, 1), ("gitml", 1), ("gitml==0.1.0", 1), (PINNED, 0),
                        ("dist/gitml-0.1.0-py3-none-any.whl", 0)):  # fmt: skip
        done = subprocess.run(["bash", "-c", guard], env={**os.environ, "GITML_PACKAGE": value},
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == code, (value, done.stdout, done.stderr)


def test_the_comment_is_found_by_its_marker_and_updated():
    steps = _load("github-actions.yml")["jobs"]["review"]["steps"]
    (comment,) = [s for s in steps if s.get("name") == "Post or update the PR comment"]
    assert "<!-- gitml-review -->" in comment["run"] and "-X PATCH" in comment["run"]
    assert "--edit-last" not in comment["run"], "edit-last could overwrite another bot's comment"
    assert "<!-- gitml-review -->" in (EXAMPLES / "review.sh").read_text()


def _pull_request(project, tmp_path, base_train):
    root = project.root
    shutil.copytree(EXAMPLES, root / "examples" / "ci")
    (root / "train.py").write_text(base_train)
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
    return root


def _expand(value):
    value = str(value)
    for key, filled in CONTEXT.items():
        value = value.replace("${{ " + key + " }}", filled)
    return re.sub(r"\$\{\{ secrets\.\w+ \}\}", "", value)


def _run_github_job(root, workflow):
    """Each step as GitHub would: stop at a failure, except steps that run always."""
    (job,) = workflow["jobs"].values()
    failed, ran, outcomes = False, [], {}
    for step in job["steps"]:
        run = step.get("run")
        if run is None or "pip install" in run or "gh api" in run:
            continue  # the runner's setup, GitHub's API
        condition = str(step.get("if", ""))
        if failed and "always()" not in condition and "!cancelled()" not in condition:
            continue
        env = {**os.environ, **{k: _expand(v) for k, v in workflow.get("env", {}).items()}}
        for key, value in step.get("env", {}).items():
            expr = re.fullmatch(r"\$\{\{ steps\.(\w+)\.outcome \}\}", str(value))
            env[key] = outcomes.get(expr.group(1), "") if expr else _expand(value)
        done = subprocess.run(["bash", "-c", run], cwd=root, env=env, capture_output=True,
                              text=True, check=False)  # fmt: skip
        if "id" in step:
            outcomes[step["id"]] = "success" if done.returncode == 0 else "failure"
        failed = failed or done.returncode != 0
        ran.append((run.split()[:2], done.returncode, done.stdout + done.stderr))
    return failed, ran


@pytest.mark.parametrize("base", ["reproducible", "unstable"])
def test_the_github_review_runs_on_a_pull_request(project, tmp_path, base):
    root = _pull_request(project, tmp_path, TRAIN if base == "reproducible" else UNSTABLE)
    failed, ran = _run_github_job(root, _load("github-actions.yml"))
    assert [r[0][:2] for r in ran] == [["gitml", "init"], ["gitml", "pull"],
                                       ["gitml", "reproduce"], ["gitml", "run"],
                                       ["bash", "examples/ci/review.sh"]]  # fmt: skip
    codes = {" ".join(r[0]): r[1] for r in ran}
    assert codes["gitml reproduce"] == (0 if base == "reproducible" else 1), ran
    assert failed == (base == "unstable"), "a base that differs fails the job"
    comment = (root / "gitml-review" / "comment.md").read_text()
    assert "### gitml: `workspace` against `origin/main`" in comment
    assert "<svg" in (root / "gitml-review" / "report.html").read_text()
    if base == "reproducible":
        assert "| accuracy | 0.9 | 0.95 | +0.05 | +5.56% | ▲ better |" in comment
    else:  # the comment and report are still written, and say the base did not reproduce
        assert "did not reproduce" in comment


def test_the_gitlab_job_runs_on_a_merge_request(project, tmp_path):
    root = _pull_request(project, tmp_path, TRAIN)
    job = _load("gitlab-ci.yml")["gitml-review"]
    lines = [line for line in job["script"] if "pip install" not in line and "[[" not in line]
    env = {**os.environ, **job["variables"], "GIT_DEPTH": "0",
           "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"}  # fmt: skip
    script = "set -eo pipefail\n" + "\n".join(lines)  # as GitLab runs a job's script
    done = subprocess.run(["bash", "-c", script], cwd=root, env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reproduced" in done.stdout
    comment = (root / "gitml-review" / "comment.md").read_text()
    assert "| accuracy | 0.9 | 0.95 | +0.05 | +5.56% | ▲ better |" in comment


def test_the_check_workflow_uploads_sarif_even_when_the_check_fails(project):
    from tests.check.test_check import EVIL_TRAIN

    workflow = _load("gitml-check.yml")
    assert workflow["permissions"] == {"contents": "read", "security-events": "write"}
    steps = workflow["jobs"]["check"]["steps"]
    (check,) = [s for s in steps if s.get("id") == "check"]
    (upload,) = [s for s in steps if "upload-sarif" in s.get("uses", "")]
    output = check["run"].split("--output ")[1].split()[0]
    assert upload["with"]["sarif_file"] == output

    root = project.root
    (root / "train.py").write_text(EVIL_TRAIN)
    assert gitml(root, "run", "--", "python", "train.py").returncode == 0
    commit_all(root, "a model that runs a shell command when loaded")
    failed, ran = _run_github_job(root, workflow)
    assert [(r[0], r[1]) for r in ran] == [(["gitml", "init"], 0), (["gitml", "check"], 1)]
    assert failed, "the check step fails the job"
    log = json.loads((root / output).read_text())
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "unsafe-pickle" and "posix.system" in result["message"]["text"]
    location = result["locations"][0]["physicalLocation"]
    run_file = location["artifactLocation"]["uri"]
    assert run_file.startswith(".gitml/runs/") or run_file == "model.pkl.dvc"
    # --all-history reads git blobs; the working tree holds the same version: the line is known
    line = (root / run_file).read_text().splitlines()[location["region"]["startLine"] - 1]
    assert "md5" in line


def test_a_shallow_clone_is_told_to_fetch_the_history(project, tmp_path):
    root = _pull_request(project, tmp_path, TRAIN)
    git(root, "push", "-q", "origin", "deeper")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", "-b", "deeper",
        (tmp_path / "origin.git").as_uri(), str(shallow))  # fmt: skip
    for args in (["check", "--all-history"], ["reproduce", "HEAD"], ["diff", "HEAD~0", "HEAD"]):
        done = gitml(shallow, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "this clone is shallow" in done.stderr and "fetch-depth: 0" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    listed = gitml(shallow, "runs")
    assert listed.returncode == 0 and "this clone is shallow" in listed.stderr
