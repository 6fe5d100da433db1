"""Reproduce verdicts that were wrong: each case gets the right verdict and says why."""

from __future__ import annotations

import textwrap

import pytest

from tests.helpers import commit_all, gitml

EMPTY = "print('trained, but recorded nothing')\n"
ROUNDED = textwrap.dedent("""
    import json, os
    open("model.bin", "wb").write(os.urandom(64))  # a model that differs on every run
    json.dump({"accuracy": 0.9}, open("metrics.json", "w"))  # only a rounded score
""")
SKOPS = textwrap.dedent("""
    import gitml
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    X, y = load_iris(return_X_y=True)
    with gitml.start_run("skops") as run:
        model = LogisticRegression(max_iter=500).fit(X, y)
        run.log_model(model, "model.skops", format="skops")
""")
TIMING = textwrap.dedent("""
    import time, gitml
    start = time.perf_counter()
    with gitml.start_run("timed") as run:
        run.log_metric("accuracy", 0.75)
        run.log_metric("seconds", time.perf_counter() - start + time.time() % 1)
""")
ENV = textwrap.dedent("""
    import os, gitml
    with gitml.start_run("scaled") as run:
        run.log_metric("score", 0.5 * float(os.environ.get("SCALE", "1")))
""")
STEPS = textwrap.dedent("""
    import os, gitml
    with gitml.start_run("curve") as run:
        for step in range(10):
            noise = int.from_bytes(os.urandom(2), "big") / 65536 if step == 5 else 0.0
            run.log_metric("loss", 1.0 / (step + 1) + noise, step=step)
""")


def _recorded(project, script, *run_args, env=None, config=""):
    root = project.root
    (root / "train.py").write_text(script)
    if config:
        path = root / ".gitml" / "config.toml"
        path.write_text(path.read_text() + config)
    commit_all(root, "script")
    done = gitml(root, "run", *run_args, "--", "python", "train.py", env=env)
    assert done.returncode == 0, done.stderr
    return commit_all(root, "run")


def _reproduce(project, commit, env=None):
    done = gitml(project.root, "reproduce", commit, env=env)
    return done.returncode, done.stdout + done.stderr


def test_a_run_that_recorded_nothing_is_not_reproduced(project):
    code, out = _reproduce(project, _recorded(project, EMPTY))
    assert code == 2, out
    assert "could not run" in out and "nothing to compare" in out


def test_a_rounded_metric_does_not_hide_a_model_that_differs(project):
    code, out = _reproduce(project, _recorded(project, ROUNDED))
    assert code == 1, out
    assert "metric accuracy" in out and "output model.bin" in out and "DIFFERS" in out
    assert "compared 1 metric(s), 0 step series and 1 output(s) by hash" in out


def test_a_rounded_metric_with_unrecorded_outputs_is_not_verified(project):
    code, out = _reproduce(project, _recorded(project, ROUNDED, "--no-detect"))
    assert code == 1, out
    assert ": not verified" in out
    assert "the command wrote model.bin, which the recorded run did not record" in out


@pytest.mark.slow
def test_a_deterministic_skops_model_reproduces_by_content(project):
    code, out = _reproduce(project, _recorded(project, SKOPS))
    assert code == 0, out
    assert "output model.skops" in out and "same content" in out
    assert "(1 by content)" in out


def test_a_timing_metric_differs_unless_marked_not_to_reproduce(project):
    commit = _recorded(project, TIMING)
    code, out = _reproduce(project, commit)
    assert code == 1 and "metric seconds" in out and "DIFFERS" in out, out

    marked = _recorded(project, TIMING, config="\n[metrics.seconds]\nreproduce = false\n")
    code, out = _reproduce(project, marked)
    assert code == 0, out
    assert "ignored" in out and "1 not expected to reproduce" in out


def test_an_environment_variable_is_recorded_restored_and_named(project):
    unlisted = _recorded(project, ENV, env={"SCALE": "2"})
    code, out = _reproduce(project, unlisted, env={"SCALE": "3"})
    assert code == 1, out
    assert "[tracking] env_vars" in out  # the hint that names the fix

    config = '\n[tracking]\nenv_vars = ["SCALE"]\n'
    path = project.root / ".gitml" / "config.toml"
    path.write_text(path.read_text().replace("[tracking]\n", config.lstrip("\n"), 1))
    listed = _recorded(project, ENV, env={"SCALE": "2"})
    code, out = _reproduce(project, listed, env={"SCALE": "3"})
    assert code == 0, out
    assert "recorded environment variables SCALE (SCALE set differently here)" in out


def test_a_step_series_that_changes_midway_differs_at_that_step(project):
    code, out = _reproduce(project, _recorded(project, STEPS))
    assert code == 1, out
    assert "steps loss" in out and "first differs at step 5" in out
    assert "metric loss" in out  # the final value alone would have said ok
    assert "1 step series" in out


def test_content_hash_ignores_png_save_times_and_zip_entry_times(tmp_path):
    import struct
    import time
    import zipfile
    import zlib

    from gitml.data.content import content_md5

    def png(when: bytes, pixel: int) -> bytes:
        def chunk(kind: bytes, body: bytes) -> bytes:
            crc = zlib.crc32(kind + body)
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

        header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
        pixels = chunk(b"IDAT", zlib.compress(bytes([0, pixel])))
        text = chunk(b"tEXt", b"Creation Time\0" + when)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + text + pixels + chunk(b"IEND", b"")

    paths = []
    for i, (when, pixel) in enumerate(((b"monday", 7), (b"tuesday", 7), (b"monday", 8))):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(png(when, pixel))
    a, b, c = (content_md5(p) for p in paths)
    assert a == b and a != c and paths[0].read_bytes() != paths[1].read_bytes()

    zips = []
    for i in range(2):
        zips.append(tmp_path / f"{i}.zip")
        with zipfile.ZipFile(zips[-1], "w") as archive:
            info = zipfile.ZipInfo(
                "weights.npy", date_time=time.localtime(time.time() + i * 7200)[:6]
            )
            archive.writestr(info, b"same bytes")
    assert zips[0].read_bytes() != zips[1].read_bytes()
    assert content_md5(zips[0]) == content_md5(zips[1])
    assert (
        content_md5(tmp_path / "0.png") is not None
        and content_md5(paths[0].with_suffix(".x")) is None
    )
