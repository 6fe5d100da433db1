"""Data benchmarks, gitml side by side with DVC and md5sum, in one run.

    pip install -e ".[bench]"
    python benchmarks/bench_data.py            # a 1 GiB file
    python benchmarks/bench_data.py --mib 256  # smaller

Wall times are medians of whole processes (imports included). Each "new file" measurement uses
a fresh copy of the file in a fresh repository, so nothing is cached by either tool.
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

TRACK = (
    "from pathlib import Path; from gitml.data.add import track; track(Path.cwd(), Path('big.bin'))"
)
TRAIN = (
    "import time, json; time.sleep(0.05); json.dump({'score': 1.0}, open('metrics.json', 'w'))\n"
)


def timed(argv: list[str], cwd: Path) -> float:
    env = {**os.environ, **ENV}
    start = time.perf_counter()
    subprocess.run(
        argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def fresh_repo(base: Path, name: str, source: Path | None) -> Path:
    root = base / name
    root.mkdir()
    for argv in (
        ["git", "init", "-q"],
        [sys.executable, "-m", "gitml", "init", "--remote", str(base / f"{name}-remote")],
    ):
        subprocess.run(
            argv, cwd=root, check=True, stdout=subprocess.DEVNULL, env={**os.environ, **ENV}
        )
    if source is not None:
        shutil.copyfile(source, root / "big.bin")
        subprocess.run(["sync"], check=False)
    return root


def median_of(fn, n: int) -> float:
    return statistics.median(fn() for _ in range(n))


def bench_tracking(base: Path, mib: int, repeat: int) -> list[tuple]:
    source = base / "source.bin"
    with open(source, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1024 * 1024))
    counter = iter(range(10_000))
    md5sum = median_of(lambda: timed(["md5sum", str(source)], base), repeat)
    inproc = (
        "import time; from pathlib import Path; from gitml.data.add import track; "
        "t = time.perf_counter(); track(Path.cwd(), Path('big.bin')); print(time.perf_counter() - t)"
    )

    def gitml_new() -> float:
        root = fresh_repo(base, f"g{next(counter)}", source)
        return timed([sys.executable, "-c", TRACK], root)

    def dvc_new() -> float:
        root = fresh_repo(base, f"d{next(counter)}", source)
        return timed([sys.executable, "-m", "dvc", "add", "-q", "big.bin"], root)

    def gitml_hardlink() -> float:
        root = fresh_repo(base, f"h{next(counter)}", source)
        subprocess.run([sys.executable, "-m", "dvc", "config", "cache.type", "hardlink,copy"],
                       cwd=root, check=True, env={**os.environ, **ENV})  # fmt: skip
        return timed([sys.executable, "-c", TRACK], root)

    g_new, d_new = median_of(gitml_new, repeat), median_of(dvc_new, repeat)
    g_link = median_of(gitml_hardlink, repeat)
    root = fresh_repo(base, "same", source)
    timed([sys.executable, "-c", TRACK], root)
    g_same = median_of(lambda: timed([sys.executable, "-c", TRACK], root), repeat)
    g_call = float(subprocess.run([sys.executable, "-c", inproc], cwd=root, check=True,
                                  capture_output=True, text=True).stdout)  # fmt: skip
    d_same = median_of(
        lambda: timed([sys.executable, "-m", "dvc", "add", "-q", "big.bin"], root), repeat
    )
    d_status = median_of(lambda: timed([sys.executable, "-m", "dvc", "status", "-q"], root), repeat)
    return [
        (f"md5sum {mib} MiB", md5sum, None),
        (f"gitml track, new {mib} MiB file", g_new, g_new / md5sum),
        (f"gitml track, new {mib} MiB, cache.type hardlink", g_link, g_link / md5sum),
        (f"dvc add, new {mib} MiB file", d_new, d_new / md5sum),
        ("gitml track, unchanged file (whole process)", g_same, g_same / d_same),
        ("gitml track, unchanged file (the call only)", g_call, None),
        ("dvc add, unchanged file", d_same, None),
        ("dvc status", d_status, None),
    ]


def bench_reproduce(base: Path, repeat: int) -> list[tuple]:
    root = fresh_repo(base, "repro", None)
    (root / "train.py").write_text(TRAIN)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env={**os.environ, **ENV})
    subprocess.run(
        ["git", "commit", "-qm", "train"], cwd=root, check=True, env={**os.environ, **ENV}
    )
    script = median_of(lambda: timed([sys.executable, "train.py"], root), repeat)
    timed([sys.executable, "-m", "gitml", "run", "--", "python", "train.py"], root)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env={**os.environ, **ENV})
    subprocess.run(["git", "commit", "-qm", "run"], cwd=root, check=True, env={**os.environ, **ENV})
    reproduce = median_of(
        lambda: timed([sys.executable, "-m", "gitml", "reproduce", "HEAD"], root), repeat
    )
    subprocess.run([sys.executable, "-m", "dvc", "stage", "add", "-q", "-n", "train", "-d", "train.py",
                    "-M", "metrics.json", "python train.py"], cwd=root, check=True, env={**os.environ, **ENV},
                   stdout=subprocess.DEVNULL)  # fmt: skip
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env={**os.environ, **ENV})
    subprocess.run(
        ["git", "commit", "-qm", "stage"], cwd=root, check=True, env={**os.environ, **ENV}
    )
    exp = median_of(lambda: timed([sys.executable, "-m", "dvc", "exp", "run", "-q"], root), repeat)
    return [
        ("training script alone", script, None),
        (
            "gitml reproduce (overhead beyond the script)",
            reproduce - script,
            (reproduce - script) / (exp - script),
        ),
        ("dvc exp run (overhead beyond the script)", exp - script, None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=2)
    args = arguments(parser, {"mib": 8, "repeat": 1})
    base = Path(tempfile.mkdtemp(prefix="gitml-bench-data-"))
    os.environ["XDG_DATA_HOME"] = str(base / "xdg")
    try:
        rows = bench_tracking(base, args.mib, args.repeat) + bench_reproduce(base, args.repeat)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("\n## Data (median wall seconds, whole processes)")
    for name, t, ratio in rows:
        print(f"  {name:<48} {t:8.3f} s" + (f"   ratio = {ratio:.2f}" if ratio else ""))
    save("data", {"data": table(["what (median wall seconds, whole processes)", "time", "ratio"], [
        [name, f"{t:.3f} s", f"{ratio:.2f}" if ratio else ""] for name, t, ratio in rows
    ])}, quick=args.quick, sizes={"mib": args.mib, "repeat": args.repeat},
         summary=data_summary(rows))  # fmt: skip


def data_summary(rows: list[tuple]) -> list[dict]:
    """The summary lines: tracking a new file, an unchanged one, reproducing a run."""
    t = {name: seconds for name, seconds, _ in rows}
    new = next(n for n in t if n.startswith("gitml track, new") and "hardlink" not in n)
    add = next(n for n in t if n.startswith("dvc add, new"))
    md5 = next(n for n in t if n.startswith("md5sum"))
    return [
        summary_line(new.replace("gitml track, ", "tracking a "), t[new], "`dvc add`", t[add],
              "`md5sum`", t[md5]),
        summary_line("tracking an unchanged file", t["gitml track, unchanged file (whole process)"],
              "`dvc add`", t["dvc add, unchanged file"]),
        summary_line("reproducing a run, beyond the script",
              t["gitml reproduce (overhead beyond the script)"], "`dvc exp run`",
              t["dvc exp run (overhead beyond the script)"]),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
