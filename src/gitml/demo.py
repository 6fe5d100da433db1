"""`gitml demo`: the end-to-end tour on a real dataset, in a fresh repository.

It drives the real commands a user would type (git, `gitml init`, `gitml run`, `gitml runs`) as
subprocesses, on the embedded defaults: a local folder as the DVC remote, no server.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitml import store
from gitml.errors import CommandError, UsageError

RUNS: list[dict[str, str | int]] = [
    {"name": "stumps", "n_estimators": 5, "max_depth": 1},
    {"name": "small-forest", "n_estimators": 10, "max_depth": 2},
    {"name": "forest", "n_estimators": 50, "max_depth": 3},
]
EXAMPLE_FILES = ("prepare.py", "train.py", "README.md")


def example_dir() -> Path:
    """The wine example project: inside the wheel, or at the top of a source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "examples" / "wine"
    return packaged if packaged.is_dir() else here.parents[1] / "examples" / "wine"


def run_demo(*, workdir: Path | None, keep: bool, echo: Callable[[str], None]) -> Path:
    """Build the demo project and walk through it; returns the project.

    Trains three runs and commits each, pushes the bytes, shows the model's lineage, reproduces
    the second run from its commit, compares it with the first, writes the HTML report, commits
    the reproduction's verdict, registers two models, promotes, rolls back, checks every record,
    artifact and model file in the history (`gitml check`), predicts in batch, serves the model
    over HTTP on 127.0.0.1 and promotes it under the running server, and lists the runs.
    """
    temporary = workdir is None
    base = Path(tempfile.mkdtemp(prefix="gitml-demo-")) if workdir is None else workdir.resolve()
    project = base / "wine"
    if project.exists():
        raise UsageError("--dir", f"{project} exists already; give another folder or remove it")
    try:
        _build(project, remote=base / "dvc-remote", echo=echo)
    finally:
        if temporary and not keep:
            shutil.rmtree(base, ignore_errors=True)
            echo(f"\n(removed the demo folder {base}; pass --keep or --dir to keep it)")
        else:
            echo(f"\nThe demo project is in {project}")
    return project


def _build(project: Path, *, remote: Path, echo: Callable[[str], None]) -> None:
    project.mkdir(parents=True, exist_ok=False)
    step = _Runner(project, echo)
    step.git("init", "-q", "-b", "main")
    step.ensure_identity()
    step.gitml("init", "--remote", str(remote))
    for name in EXAMPLE_FILES:
        shutil.copy(example_dir() / name, project / name)
    (project / ".gitignore").write_text("__pycache__/\n")
    step.git("add", "-A")
    step.git("commit", "-q", "-m", "Wine classifier project")
    step.python("prepare.py")
    step.git("add", "-A")
    step.git("commit", "-q", "-m", "Prepare data/wine.csv")
    run_ids = []
    for spec in RUNS:
        params = [f"--param={k}={v}" for k, v in spec.items() if k != "name"]
        step.gitml("run", "--name", str(spec["name"]), *params, "--", "python", "train.py")
        step.git("add", "-A")
        step.git("commit", "-q", "-m", f"Train {spec['name']}")
        run_ids.append(store.read_toml(project / "metrics.toml")["run"])
    step.gitml("push", show=True)
    step.gitml("lineage", "model.pkl", show=True)
    step.gitml("reproduce", "HEAD~1", show=True)
    step.gitml("diff", "HEAD~2", "HEAD~1", show=True)
    step.gitml("report", "-o", str(project.parent / "gitml-report.html"), show=True)
    step.git("add", ".gitml/reproductions")  # the verdict `gitml reproduce` recorded
    step.git("commit", "-q", "-m", "Record the reproduction of the second run")
    for run_id in run_ids[1:]:
        step.gitml("model", "register", run_id, "wine", show=True)
    step.gitml("model", "promote", "wine", "1", "--to", "production", show=True)
    step.gitml("model", "promote", "wine", "2", "--require-better", "--metric", "accuracy",
               "-m", "more trees, better accuracy", show=True)  # fmt: skip
    step.gitml("model", "rollback", "wine", "-m", "demo: roll back", show=True)
    step.gitml("model", "history", "wine", show=True)
    step.gitml("check", "--all-history", show=True)
    step.gitml("predict", "wine@production", "data/wine.csv", "-o", "../predictions.parquet",
               "--keep", "target", "--no-progress", show=True)  # fmt: skip
    _serve(step, project)
    step.git("add", ".gitml/monitor")
    step.git("commit", "-q", "-m", "Requests the demo server answered (for drift checks)")
    step.gitml("runs", "--sort", "-metrics.accuracy",
               "--columns", "id,name,status,commit,metrics.accuracy,metrics.f1_macro,"
               "params.n_estimators,params.max_depth", show=True)  # fmt: skip


def _serve(step: _Runner, project: Path) -> None:
    """`gitml serve` over HTTP on 127.0.0.1: ask, promote, and ask the same server again."""
    import pandas as pd

    argv = ["serve", "wine@production", "--port", "0", "--reload-on-promote", "-q"]
    step.echo(f"$ gitml {shlex.join(argv)} &")
    log = project.parent / "gitml-serve.log"
    with log.open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "gitml", *argv], cwd=project, env=step.env,
            stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        url = _wait_for_url(server, log)
        step.echo(log.read_text().strip())
        rows = pd.read_csv(project / "data/wine.csv").drop(columns="target").iloc[[0, 70, 140]]
        body = json.dumps({"records": rows.to_dict("records")}).encode()

        def ask(expected: int) -> None:
            step.echo(f"$ curl -s {url}/predict -H 'Content-Type: application/json' "
                      f"-d '{{\"records\": [...3 wines...]}}'")  # fmt: skip
            deadline = time.monotonic() + 30
            while True:
                request = urllib.request.Request(
                    f"{url}/predict", data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = json.loads(response.read())
                if answer["model"]["version"] == expected:
                    break
                if time.monotonic() > deadline:
                    raise CommandError(f"demo step: the server still serves {answer['model']}")
                time.sleep(0.1)
            step.echo(json.dumps({k: answer[k] for k in ("predictions", "model")}))

        ask(expected=1)
        step.gitml("model", "promote", "wine", "2", "-m", "demo: promote again", show=True)
        ask(expected=2)
        # Production data moves: a new press reads alcohol 1.5 points higher and colour 60% up.
        shifted = _shifted(project, 60, seed=11).drop(columns="target")
        step.echo(f"$ curl -s {url}/predict -d '{{\"records\": [...60 shifted wines...]}}'")
        request = urllib.request.Request(
            f"{url}/predict", data=json.dumps({"records": shifted.to_dict("records")}).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        urllib.request.urlopen(request, timeout=30).close()
        step.gitml("drift", "--reference", "wine@production", "--current", "requests",
                   show=True, ok=(0, 1))  # fmt: skip
        incoming = project.parent / "incoming"
        incoming.mkdir(exist_ok=True)
        _shifted(project, 300, seed=7).to_csv(incoming / "wine-2.csv", index=False)
        step.echo("$ cp wine-2.csv ../incoming/    # 300 wines from the new press, labelled")
        step.gitml("watch", "../incoming", "--model", "wine@production", "--once", show=True)
        ask(expected=3)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _shifted(project: Path, rows: int, *, seed: int) -> Any:
    """Wine rows resampled with 2% noise, alcohol +1.5 and colour intensity x1.6."""
    import numpy as np
    import pandas as pd

    wine = pd.read_csv(project / "data/wine.csv")
    rng = np.random.default_rng(seed)
    frame = wine.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    features = [c for c in wine.columns if c != "target"]
    frame[features] = frame[features] * (1 + rng.normal(0, 0.02, (rows, len(features))))
    frame["alcohol"] += 1.5
    frame["color_intensity"] *= 1.6
    return frame


def _wait_for_url(server: subprocess.Popen[bytes], log: Path) -> str:

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"at (http://\S+)", log.read_text())
        if found:
            return found.group(1)
        if server.poll() is not None:
            raise CommandError(f"demo step `gitml serve` exited: {log.read_text().strip()}")
        time.sleep(0.05)
    raise CommandError("demo step `gitml serve` did not start within 60 s")


class _Runner:
    """Runs and echoes each command as a user would type it."""

    def __init__(self, cwd: Path, echo: Callable[[str], None]) -> None:
        self.cwd = cwd
        self.echo = echo
        # `python` in the commands is this interpreter, so runs record `python train.py`.
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        self.env = {**os.environ, "PATH": path, "DVC_NO_ANALYTICS": "1"}

    def git(self, *args: str) -> None:
        self._run(["git", *args], shown=["git", *args])

    def gitml(self, *args: str, show: bool = False, ok: tuple[int, ...] = (0,)) -> None:
        self._run([sys.executable, "-m", "gitml", *args], shown=["gitml", *args], show=show,
                  ok=ok)  # fmt: skip

    def python(self, *args: str) -> None:
        self._run(["python", *args], shown=["python", *args])

    def ensure_identity(self) -> None:
        # A fresh machine may have no git identity; the demo repository gets its own.
        for key, value in (("user.name", "gitml demo"), ("user.email", "demo@gitml.invalid")):
            found = subprocess.run(
                ["git", "config", key], cwd=self.cwd, capture_output=True, check=False
            )
            if found.returncode != 0:
                self.git("config", key, value)

    def _run(
        self, argv: list[str], *, shown: list[str], show: bool = False, ok: tuple[int, ...] = (0,)
    ) -> None:
        self.echo(f"$ {shlex.join(shown)}")
        result = subprocess.run(
            argv, cwd=self.cwd, env=self.env, capture_output=True, text=True, check=False
        )
        output = (result.stdout + result.stderr).rstrip()
        if show or (output and shown[0] == "gitml"):
            self.echo(output)
        if result.returncode not in ok:
            if not show and shown[0] != "gitml":
                self.echo(output)
            raise CommandError(
                f"demo step `{shlex.join(shown)}` failed with exit code {result.returncode}"
            )
