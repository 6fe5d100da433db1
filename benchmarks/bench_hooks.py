"""Git hook cost, gitml side by side with DVC's own hooks (`dvc install`), in one run.

    pip install -e ".[bench]"
    python benchmarks/bench_hooks.py
    python benchmarks/bench_hooks.py --repeat 15

Three repositories, each commit a whole `git commit` process (median wall seconds):
- plain git, no hooks: the baseline;
- gitml (`gitml init`: pre-commit, post-commit, pre-push, post-checkout, post-merge);
- DVC (`dvc init` + `dvc install`: pre-commit, post-checkout, pre-push).

Measured: a commit that touches no tracked-experiment file; a commit that adds a run (gitml:
a run folder from `gitml run`; DVC: the changed metrics.json and dvc.lock of `dvc repro`); and
comparing the metrics of two commits (`gitml diff` against `dvc metrics diff`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results import arguments, save, summary_line, table  # noqa: E402
from synth import ENV  # noqa: E402

TRAIN = (
    "import json, sys\n"
    "lr = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1\n"
    "json.dump({'accuracy': 0.8 + lr}, open('metrics.json', 'w'))\n"
)


def sh(root: Path, *argv: str) -> None:
    subprocess.run(argv, cwd=root, check=True, env={**os.environ, **ENV},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def timed(root: Path, *argv: str) -> float:
    start = time.perf_counter()
    sh(root, *argv)
    return time.perf_counter() - start


def repo(base: Path, name: str, kind: str) -> Path:
    root = base / name
    root.mkdir()
    sh(root, "git", "init", "-q", "-b", "main")
    (root / "train.py").write_text(TRAIN)
    (root / "notes.txt").write_text("0\n")
    if kind == "gitml":
        sh(root, sys.executable, "-m", "gitml", "init", "--remote", str(base / f"{name}-remote"))
    elif kind == "dvc":
        sh(root, sys.executable, "-m", "dvc", "init", "-q")
        sh(root, sys.executable, "-m", "dvc", "remote", "add", "-d", "local", str(base / "dvc-r"))
        sh(root, sys.executable, "-m", "dvc", "install")
        sh(root, sys.executable, "-m", "dvc", "stage", "add", "-q", "-n", "train", "-d",
           "train.py", "-M", "metrics.json", "python train.py 0.1")  # fmt: skip
        sh(root, sys.executable, "-m", "dvc", "repro", "-q")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "init")
    return root


def plain_commit(root: Path, i: int) -> float:
    (root / "notes.txt").write_text(f"{i}\n")
    sh(root, "git", "add", "notes.txt")
    return timed(root, "git", "commit", "-qm", f"notes {i}")


def gitml_run_commit(root: Path, i: int) -> float:
    sh(root, sys.executable, "-m", "gitml", "run", "-p", f"lr={i / 100}", "--",
       sys.executable, "train.py", str(i / 100))  # fmt: skip
    sh(root, "git", "add", "-A")
    return timed(root, "git", "commit", "-qm", f"run {i}")


def dvc_run_commit(root: Path, i: int) -> float:
    (root / "dvc.yaml").write_text((root / "dvc.yaml").read_text().replace(
        f"train.py {(i - 1) / 100 if i > 1 else 0.1}", f"train.py {i / 100}"))  # fmt: skip
    sh(root, sys.executable, "-m", "dvc", "repro", "-q")
    sh(root, "git", "add", "-A")
    return timed(root, "git", "commit", "-qm", f"run {i}")


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=9)
    args = arguments(parser, {"repeat": 2})  # HEAD~1 needs two run commits
    base = Path(tempfile.mkdtemp(prefix="gitml-bench-hooks-"))
    os.environ["XDG_DATA_HOME"] = str(base / "xdg")
    n = args.repeat
    try:
        plain, gitml, dvc = (repo(base, k, k) for k in ("plain", "gitml", "dvc"))
        counter = iter(range(1, 10_000))
        rows: list[tuple[str, float, float | None]] = []
        base_commit = median([plain_commit(plain, next(counter)) for _ in range(n)])
        g_plain = median([plain_commit(gitml, next(counter)) for _ in range(n)])
        d_plain = median([plain_commit(dvc, next(counter)) for _ in range(n)])
        g_run = median([gitml_run_commit(gitml, i) for i in range(1, n + 1)])
        d_run = median([dvc_run_commit(dvc, i) for i in range(1, n + 1)])
        g_diff = median([timed(gitml, sys.executable, "-m", "gitml", "diff", "HEAD~1", "HEAD")
                         for _ in range(n)])  # fmt: skip
        d_diff = median([timed(dvc, sys.executable, "-m", "dvc", "metrics", "diff", "HEAD~1",
                               "HEAD") for _ in range(n)])  # fmt: skip
        rows = [
            ("git commit, no hooks (baseline)", base_commit, None),
            ("hooks added to a plain commit: gitml", g_plain - base_commit,
             (g_plain - base_commit) / (d_plain - base_commit)),
            ("hooks added to a plain commit: dvc install", d_plain - base_commit, None),
            ("hooks added to a commit adding a run: gitml", g_run - base_commit,
             (g_run - base_commit) / (d_run - base_commit)),
            ("hooks added to a commit of a dvc repro: dvc", d_run - base_commit, None),
            ("gitml diff HEAD~1 HEAD", g_diff, g_diff / d_diff),
            ("dvc metrics diff HEAD~1 HEAD", d_diff, None),
        ]  # fmt: skip
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\n## Hooks (median wall seconds of {n} whole processes; ratio gitml / DVC)")
    for name, t, ratio in rows:
        print(f"  {name:<48} {t:8.3f} s" + (f"   ratio = {ratio:.2f}" if ratio else ""))
    g_cost, d_cost = g_plain - base_commit, d_plain - base_commit
    g_rcost, d_rcost = g_run - base_commit, d_run - base_commit
    summary = [
        summary_line("`git commit` of a code change, hooks installed", g_plain, "DVC's hooks", d_plain,
              "git commit, no hooks", base_commit),
        summary_line("`gitml diff HEAD~1 HEAD`", g_diff, "`dvc metrics diff`", d_diff),
    ]  # fmt: skip
    save("hooks", {"hooks": table(["what", "gitml", "DVC", "ratio", "target"], [
        [f"hooks' cost on a commit touching no gitml file (plain commit: {base_commit:.3f} s)",
         f"{g_cost:.3f} s", f"{d_cost:.3f} s", f"{g_cost / d_cost:.2f}", "< 0.1 s"],
        ["hooks' cost on a commit adding a run (DVC: the dvc.lock and metrics of a `dvc repro`)",
         f"{g_rcost:.3f} s", f"{d_rcost:.3f} s", f"{g_rcost / d_rcost:.2f}", "< 0.5 s"],
        ["metrics of two commits side by side", f"`gitml diff HEAD~1 HEAD` {g_diff:.3f} s",
         f"`dvc metrics diff` {d_diff:.3f} s", f"{g_diff / d_diff:.2f}", "< 0.5 s"],
    ])}, quick=args.quick, sizes={"repeat": n}, summary=summary)  # fmt: skip


if __name__ == "__main__":
    main()
