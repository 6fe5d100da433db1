"""`gitml runs` fits the terminal: width, --wide, colour on a real pseudo-terminal, NO_COLOR."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

import gitml
from tests.helpers import gitml as gitml_cli

ESTIMATOR_PARAMS = {f"hyper_parameter_{i:02d}": f"value-{i}" * (1 + i % 3) for i in range(25)}


def _log(name, accuracy, **params):
    with gitml.start_run(name, params={**ESTIMATOR_PARAMS, **params}) as run:
        run.log_metric("accuracy", accuracy)


def test_twenty_five_params_fit_a_100_column_terminal(project):
    _log("only", 0.9)
    done = gitml_cli(project.root, "runs", env={"COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    assert "metrics.accuracy" in lines[0] and "id" in lines[0]
    assert "more column(s) did not fit: --wide shows them" in lines[-1]

    wide = gitml_cli(project.root, "runs", "--wide", env={"COLUMNS": "100"})
    assert max(len(line) for line in wide.stdout.splitlines()) > 100
    assert all(f"params.{p}" in wide.stdout for p in ESTIMATOR_PARAMS)
    piped = gitml_cli(project.root, "runs")  # no terminal, no COLUMNS: everything, for programs
    assert piped.stdout == wide.stdout


def test_only_params_that_differ_and_cut_values(project):
    _log("a", 0.8, C=0.1, note="x" * 80)
    _log("b", 0.9, C=1.0, note="y" * 80)
    done = gitml_cli(project.root, "runs", env={"COLUMNS": "120"})
    head = done.stdout.splitlines()[0]
    assert "params.C" in head and "params.hyper_parameter_00" not in head
    assert max(len(line) for line in done.stdout.splitlines()) <= 120
    assert "x" * 80 not in done.stdout and "…" in done.stdout


def _on_a_terminal(cwd, *args, env):
    """Run `gitml` with its stdout on a real pseudo-terminal; return what it wrote there."""
    main, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitml", *args],
        cwd=cwd,
        stdout=secondary,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200", **env},
    )
    os.close(secondary)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(main, 65536)
        except OSError:  # the other end closed
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=30)
    os.close(main)
    return b"".join(chunks).decode()


def test_the_best_value_is_coloured_on_a_terminal_unless_no_color(project):
    config = project.root / ".gitml" / "config.toml"
    config.write_text(config.read_text() + '\n[metrics.accuracy]\ngoal = "maximize"\n')
    _log("worse", 0.8)
    _log("better", 0.95)
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    coloured = _on_a_terminal(project.root, "runs", env={**env, "TERM": "xterm"})
    assert "\x1b[1;32m" in coloured and "0.95" in coloured.split("\x1b[1;32m")[1][:30]
    plain = _on_a_terminal(project.root, "runs", env={"NO_COLOR": "1", "TERM": "xterm"})
    assert "\x1b[" not in plain and "0.95" in plain
    piped = gitml_cli(project.root, "runs")
    assert "\x1b[" not in piped.stdout
