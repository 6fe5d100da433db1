import json
import sys
import textwrap

import pytest

from gitml import store
from tests.helpers import gitml

ECHO_PARAMS = textwrap.dedent("""
    import json, os
    import gitml
    p = gitml.params({"lr": 0.5, "depth": 1})
    env = {k: v for k, v in os.environ.items() if k.startswith("GITML_PARAM_")}
    file = json.load(open(os.environ["GITML_PARAMS_FILE"]))
    json.dump({"params": p, "env": env, "file": file}, open("seen.json", "w"))
""")


def _only_run(project):
    (run_dir,) = list(project.runs_dir.iterdir())
    return store.read_toml(run_dir / "run.toml", kind="run")


def test_params_reach_the_command_three_ways(project):
    (project.root / "echo.py").write_text(ECHO_PARAMS)
    done = gitml(
        project.root,
        "run",
        "-n",
        "p",
        "-p",
        "lr=0.1",
        "--param",
        "model=rf",
        "-p",
        "flags=[1, 2]",
        "-t",
        "owner=me",
        "--",
        sys.executable,
        "echo.py",
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads((project.root / "seen.json").read_text())
    assert seen["params"] == {"lr": 0.1, "depth": 1, "model": "rf", "flags": [1, 2]}
    assert seen["file"] == {"lr": 0.1, "model": "rf", "flags": [1, 2]}
    assert seen["env"] == {
        "GITML_PARAM_LR": "0.1",
        "GITML_PARAM_MODEL": "rf",
        "GITML_PARAM_FLAGS": "[1, 2]",
    }
    rec = _only_run(project)
    assert rec["name"] == "p" and rec["status"] == "finished" and rec["exit_code"] == 0
    assert rec["tags"] == {"owner": "me"}
    assert rec["command"][1:] == ["echo.py"]


def test_script_using_the_api_joins_the_same_run(project):
    script = textwrap.dedent("""
        import importlib
        import gitml
        importlib.import_module("numpy")  # invisible to static analysis of the script
        with gitml.start_run("inner", params={"seed": 7}) as run:
            for i in range(3):
                run.log_metric("loss", 1 / (i + 1))
    """)
    (project.root / "train.py").write_text(script)
    done = gitml(project.root, "run", "-p", "lr=0.1", "--", sys.executable, "train.py")
    assert done.returncode == 0, done.stderr
    rec = _only_run(project)
    assert rec["params"] == {"lr": 0.1, "seed": 7}
    assert rec["name"] == "inner"
    assert rec["metrics"] == {"loss": pytest.approx(1 / 3)}
    assert "numpy" in rec["env"]["packages"], "what the script really imported is recorded"


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("metrics.json", '{"accuracy": 0.93, "nested": {"f1": 0.9}, "label": "x"}'),
        ("metrics.toml", "accuracy = 0.93\n[nested]\nf1 = 0.9\n"),
    ],
    ids=["json", "toml"],
)
def test_metrics_file_written_by_script_is_captured(project, filename, content):
    (project.root / "write.py").write_text(f"open({filename!r}, 'w').write({content!r})\n")
    done = gitml(project.root, "run", "--", sys.executable, "write.py")
    assert done.returncode == 0, done.stderr
    assert _only_run(project)["metrics"] == {"accuracy": 0.93, "nested.f1": 0.9}
    summary = store.read_toml(project.root / "metrics.toml", kind="metrics-summary")
    assert summary["metrics"] == {"accuracy": 0.93, "nested.f1": 0.9}


def test_failing_command_fails_the_run_and_passes_its_exit_code(project):
    (project.root / "fail.py").write_text("import sys; print('boom'); sys.exit(3)\n")
    done = gitml(project.root, "run", "--", sys.executable, "fail.py")
    assert done.returncode == 3
    rec = _only_run(project)
    assert rec["status"] == "failed" and rec["exit_code"] == 3
    assert rec["error"] == "command exited with code 3"


def test_missing_command_is_one_line_error(project):
    done = gitml(project.root, "run", "--", "no-such-command-xyz")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "gitml: error: no-such-command-xyz: cannot run the command: No such file or directory"
    ]
    assert _only_run(project)["status"] == "failed"


@pytest.mark.parametrize("bad", ["lr", "=1"], ids=["no-equals", "no-key"])
def test_bad_param_is_one_line_error(project, bad):
    done = gitml(project.root, "run", "-p", bad, "--", "true")
    assert done.returncode == 2
    assert done.stderr.strip() == f"gitml: error: --param {bad!r}: expected KEY=VALUE"
    assert not list(project.runs_dir.iterdir()), "nothing is written for a bad command line"


def test_a_misspelt_option_of_gitml_run_runs_nothing(project):
    done = gitml(project.root, "run", "--nme", "x", "--", "python", "-c", "pass")
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "--nme: not an option of gitml run; did you mean --name?" in line
    assert not project.runs_dir.exists() or not any(project.runs_dir.iterdir()), "no run left"


def test_ctrl_c_records_the_run_as_interrupted(project):
    import os
    import signal
    import subprocess
    import time

    (project.root / "slow.py").write_text(
        "import time\nprint('ready', flush=True)\ntime.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitml", "run", "--", sys.executable, "slow.py"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    rec = _only_run(project)
    assert rec["status"] == "interrupted" and rec["error"] == "interrupted (Ctrl-C)", rec
    # The script's own KeyboardInterrupt traceback is its business; none comes from gitml.
    assert "site-packages/gitml" not in err and "src/gitml" not in err, err
    assert f"gitml: run {rec['id']} interrupted" in err, err


def test_a_misspelt_option_of_gitml_run_is_exit_2_and_runs_nothing(project):
    done = gitml(project.root, "run", "--nme", "x", "--", "python", "train.py")
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "--nme: not an option of gitml run; did you mean --name?" in line
    assert not project.runs_dir.exists() or not list(project.runs_dir.iterdir())
