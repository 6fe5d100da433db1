"""`gitml check` on 1,000 runs and 50 artifacts of 10 MB, side by side with DVC, in one run.

    pip install -e ".[bench]"
    python benchmarks/bench_check.py                      # 1,000 runs, 50 x 10 MB
    python benchmarks/bench_check.py --runs 200 --artifacts 10 --mib 2

The project: ``--artifacts`` files of ``--mib`` MiB tracked with `.dvc` pointers (a fifth of
them joblib model files: a fitted LogisticRegression with a large array, the rest data), and
``--runs`` committed run records that read the data and write the models, the models registered
as versions of one model. Measured as whole processes (wall seconds, peak RSS):

- `gitml check` cold (hash cache deleted: every object hashed, every model scanned), warm
  (nothing changed: objects verified from the hash cache), and after one object was rewritten
  (only it is read again). Median of ``--repeat`` for warm.
- `dvc status` (DVC's own check of the same `.dvc` pointers against the workspace) cold (its
  state database deleted) and warm. It verifies workspace files against their pointers, not
  the cache objects' bytes or the run records, so it does less; it is the nearest DVC command.
  MLflow has no command that verifies logged artifacts, so it has no row.
- `md5sum` of the same files: the cost of reading the bytes once, for scale.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_core import bin_of  # noqa: E402
from bench_serve import measured  # noqa: E402
from results import (  # noqa: E402
    arguments,
    save,
    summary_line,
    table,
)
from synth import git, record  # noqa: E402

MODEL = """\
import sys, warnings, joblib, numpy as np
warnings.filterwarnings("ignore")
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
X, y = load_wine(return_X_y=True)
model = LogisticRegression(max_iter=200).fit(X, y)
rng = np.random.default_rng(int(sys.argv[2]))
model.reference_ = rng.random(int(sys.argv[3]) // 8)  # the bulk: an array joblib writes inline
joblib.dump(model, sys.argv[1])
"""


def make_project(root: Path, *, runs: int, artifacts: int, mib: int, remote: Path) -> dict:
    """The benchmark repository; returns what it holds."""
    from gitml import store
    from gitml.data.add import track
    from gitml.project import init_project

    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    init_project(root, remote_dir=remote)
    models = max(1, artifacts // 5)
    refs, rng = [], random.Random(0)
    (root / "data").mkdir()
    (root / "models").mkdir()
    for i in range(artifacts):
        if i < models:
            path = root / "models" / f"m-{i:02d}.joblib"
            subprocess.run([sys.executable, "-c", MODEL, str(path), str(i), str(mib * 2**20)],
                           check=True)  # fmt: skip
        else:
            path = root / "data" / f"part-{i:02d}.bin"
            path.write_bytes(rng.randbytes(mib * 2**20))
        refs.append((path.relative_to(root).as_posix(), track(root, path)))
    model_refs, data_refs = refs[:models], refs[models:]
    records = []
    for i in range(runs):
        rec = record(i, rng)
        data_path, data = data_refs[i % len(data_refs)]
        model_path, model = model_refs[i % models]
        rec["inputs"] = {data_path: data.to_dict()}
        rec["outputs"] = {model_path: {**model.to_dict(), "format": "joblib"}}
        rec["code"] = {"dirty": False}
        folder = root / ".gitml" / "runs" / rec["id"]
        folder.mkdir(parents=True)
        (folder / "run.toml").write_bytes(store.dumps_toml(rec))
        records.append(rec)
    import platform
    from importlib.metadata import version

    trained_with = {p: version(p) for p in ("scikit-learn", "numpy", "pandas")}
    versions = []
    for n, (path, ref) in enumerate(model_refs, 1):
        rec = records[n - 1]
        rec["env"]["packages"] = trained_with  # this environment: the check compares them
        folder = root / ".gitml" / "runs" / rec["id"]
        (folder / "run.toml").write_bytes(store.dumps_toml(rec))
        versions.append({"version": n, "run": rec["id"], "path": path, "md5": ref.md5,
                         "size": ref.size, "format": "joblib", "created_at": rec["end_time"]})  # fmt: skip
    store.write_toml(root / ".gitml" / "models" / "m.toml", {
        "schema_version": 1, "name": "m", "versions": versions,
        "aliases": {"production": len(versions)}, "history": [],
    }, kind="model")  # fmt: skip
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", f"{runs} runs, {artifacts} artifacts")
    return {"runs": runs, "artifacts": artifacts, "mib": mib, "models": models,
            "python": platform.python_version()}  # fmt: skip


def check(root: Path) -> tuple[float, float]:
    return measured([bin_of("gitml"), "check", "--format", "json", "-o", str(root.parent / "r")],
                    root, ok=("0", "1"))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--artifacts", type=int, default=50)
    parser.add_argument("--mib", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = arguments(parser, {"runs": 60, "artifacts": 4, "mib": 1, "repeat": 1})
    base = Path(tempfile.mkdtemp(prefix="gitml-bench-check-"))
    try:
        root = base / "project"
        shape = make_project(root, runs=args.runs, artifacts=args.artifacts, mib=args.mib,
                             remote=base / "remote")  # fmt: skip
        results = figures(root, args.repeat)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report(shape, results)
    floor = results["md5sum of the same files"][0]
    summary = [summary_line(f"`gitml check`, {how}", results[f"gitml check, {how}"][0],
                             "`dvc status`", results[f"dvc status, {how}"][0],
                             "`md5sum` of the same files", floor)
               for how in ("cold", "warm")]  # fmt: skip
    save("check", {"check": check_table(results)}, quick=args.quick, sizes=shape, summary=summary)


def check_table(results: dict[str, list[float]]) -> dict:
    """The docs' table: gitml check cold, warm and after one rewrite, against dvc status."""

    def cell(key: str) -> str:
        seconds, peak = results[key]
        return f"{seconds:.2f} s / {peak:.0f} MiB"

    def ratio(a: str, b: str) -> str:
        return f"{results[a][0] / results[b][0]:.2f} / {results[a][1] / results[b][1]:.2f}"

    cold, warm = (
        ("gitml check, cold", "dvc status, cold"),
        ("gitml check, warm", "dvc status, warm"),
    )
    return table(["what", "gitml check", "dvc status", "ratio time / memory"], [
        ["cold (no cache)", cell(cold[0]), cell(cold[1]), ratio(*cold)],
        ["warm (nothing changed)", cell(warm[0]), cell(warm[1]), ratio(*warm)],
        ["one object rewritten", cell("gitml check, one object rewritten"), "", ""],
        ["`md5sum` of the same files (the floor)", "", cell("md5sum of the same files"), ""],
    ])  # fmt: skip


def figures(root: Path, repeat: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    hashes = root / ".gitml" / "cache" / "check.sqlite"
    hashes.unlink(missing_ok=True)
    results["gitml check, cold"] = list(check(root))
    report_doc = json.loads((root.parent / "r").read_text())
    if report_doc["failed"]:
        raise SystemExit(f"the benchmark project should check clean: {report_doc['findings'][:3]}")
    warm = [check(root) for _ in range(repeat)]
    results["gitml check, warm"] = [statistics.median(w[0] for w in warm), max(w[1] for w in warm)]
    counts = json.loads((root.parent / "r").read_text())["counts"]
    if counts["hashed"] != 0:
        raise SystemExit(f"a warm check re-read {counts['hashed']} objects")
    obj = next(p for p in (root / ".dvc" / "cache" / "files" / "md5").rglob("*") if p.is_file())
    data = obj.read_bytes()
    obj.chmod(0o644)
    obj.write_bytes(data)  # same bytes, a new ctime and mtime: it must be read again
    results["gitml check, one object rewritten"] = list(check(root))
    counts = json.loads((root.parent / "r").read_text())["counts"]
    if counts["hashed"] != 1:
        raise SystemExit(f"after one rewrite the check read {counts['hashed']} objects")
    dvc = bin_of("dvc")
    shutil.rmtree(root / ".dvc" / "tmp", ignore_errors=True)
    site = root.parent / "dvc-site-cache"
    shutil.rmtree(site, ignore_errors=True)
    env = {"DVC_SITE_CACHE_DIR": str(site)}
    results["dvc status, cold"] = list(measured([dvc, "status"], root, env=env))
    warm = [measured([dvc, "status"], root, env=env) for _ in range(repeat)]
    results["dvc status, warm"] = [statistics.median(w[0] for w in warm), max(w[1] for w in warm)]
    files = sorted(str(p) for p in (root / "data").iterdir() if p.suffix == ".bin")
    files += sorted(str(p) for p in (root / "models").iterdir() if p.suffix == ".joblib")
    results["md5sum of the same files"] = list(measured(["md5sum", *files], root))
    return results


def report(shape: dict, results: dict[str, list[float]]) -> None:
    print(f"\n{shape['runs']:,} runs, {shape['artifacts']} artifacts of {shape['mib']} MiB "
          f"({shape['models']} of them joblib models), one registered model\n")  # fmt: skip
    print(f"{'command':<40}{'wall s':>10}{'peak MiB':>10}")
    for name, (seconds, peak) in results.items():
        print(f"{name:<40}{seconds:>10.2f}{peak:>10.0f}")
    ratios = [("gitml check cold / dvc status cold", "gitml check, cold", "dvc status, cold"),
              ("gitml check warm / dvc status warm", "gitml check, warm", "dvc status, warm"),
              ("gitml check cold / md5sum", "gitml check, cold", "md5sum of the same files")]  # fmt: skip
    print()
    for label, a, b in ratios:
        print(f"{label:<40}{results[a][0] / results[b][0]:>10.2f}"
              f"{results[a][1] / results[b][1]:>10.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
