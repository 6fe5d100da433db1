"""Synthetic run histories for benchmarks: N valid run.toml records over C commits.

Records are written the way gitml writes them (store.write_toml, schema-valid) and committed with
the real git CLI, so the history looks like a real team's.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import subprocess
from pathlib import Path

from gitml import store
from gitml.project import init_project

ENV = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@gitml.invalid",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@gitml.invalid",
    "DVC_NO_ANALYTICS": "1",
}  # fmt: skip


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, env={**os.environ, **ENV},
                   stdout=subprocess.DEVNULL)  # fmt: skip


def record(i: int, rng: random.Random) -> dict:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=37 * i)
    return {
        "schema_version": 1,
        "id": start.strftime("%Y%m%dT%H%M%SZ") + f"-{i % 0xFFFFFF:06x}",
        "name": f"run-{i}",
        "status": "finished",
        "start_time": start,
        "end_time": start + dt.timedelta(seconds=rng.randint(5, 500)),
        "command": ["python", "train.py"],
        "cwd": ".",
        "params": {"depth": rng.randint(1, 10), "lr": rng.choice([0.3, 0.1, 0.03, 0.01]),
                   "model": rng.choice(["rf", "gbm", "svm"]), "seed": i, "n_estimators": 100},
        "metrics": {"accuracy": rng.random(), "f1": rng.random(), "loss": rng.random() * 2},
        "tags": {"owner": rng.choice(["ana", "bo", "cy"])},
        "code": {"commit": f"{i:040x}", "branch": "main", "dirty": False},
        "inputs": {"data/train.csv": {"md5": f"{i:032x}", "size": 1000 + i}},
        "outputs": {"model.pkl": {"md5": f"{i + 7:032x}", "size": 2000 + i}},
        "env": {"python": "3.11.7", "platform": "Linux", "packages": {"scikit-learn": "1.9.1",
                "numpy": "2.4.6", "pandas": "3.1.1"}},
    }  # fmt: skip


def make_history(root: Path, *, runs: int, commits: int, remote: Path, seed: int = 0) -> Path:
    """A gitml project at ``root`` holding ``runs`` committed runs in ``commits`` commits."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    init_project(root, remote_dir=remote)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    rng = random.Random(seed)
    per_commit = max(1, runs // commits)
    runs_dir = root / ".gitml" / "runs"
    for i in range(runs):
        rec = record(i, rng)
        folder = runs_dir / rec["id"]
        folder.mkdir(parents=True)
        (folder / "run.toml").write_bytes(store.dumps_toml(rec))
        if (i + 1) % per_commit == 0 or i == runs - 1:
            git(root, "add", "-A")
            # --no-verify: the records name bytes that exist nowhere (the hook rightly refuses)
            git(root, "commit", "-q", "--no-verify", "-m", f"runs up to {i}")
    return root


def make_scale_history(
    root: Path,
    *,
    runs: int,
    commits: int,
    branches: int,
    remote: Path,
    seed: int = 0,
    files: dict[str, str] | None = None,
) -> dict:
    """A team-sized history written straight into git objects with `git fast-import`.

    ``runs`` run records in ``commits`` commits on ``branches`` branches (`main` and `exp-01`...):
    each experiment branch forks from `main`, gets its share of the commits, and every other one
    is merged back, so the history has forks, merges and runs reachable from several tips. Each
    commit but the merges adds runs: first a `prepare` run that turns `data/raw.csv` into
    `data/features.parquet`, then runs trained on those features, so lineage has two levels;
    its `metrics.toml` names its last run, so `gitml diff A B` works between any two commits or
    branches. Committing this with the git CLI would take hours; fast-import writes the same
    objects in about a minute. ``files`` (path: text) go into the first commit. Returns the
    counts made.
    """
    if commits < 3 * branches:
        raise ValueError(f"{commits} commits are too few for {branches} branches")
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    init_project(root, remote_dir=remote)
    for path, text in (files or {}).items():
        (root / path).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    rng = random.Random(seed)
    features = branches - 1
    merges = features // 2
    run_commits = commits - merges
    branch_share = run_commits // 2 // max(1, features)
    main_share = [(run_commits - branch_share * features) // max(1, features)] * features
    main_share[-1] += run_commits - branch_share * features - sum(main_share)
    per_commit = [runs // run_commits + (j < runs % run_commits) for j in range(run_commits)]
    stream = subprocess.Popen(["git", "fast-import", "--quiet", "--done"], cwd=root,
                              stdin=subprocess.PIPE, env={**os.environ, **ENV})  # fmt: skip
    out = stream.stdin
    assert out is not None
    state = {"run": 0, "mark": 0, "commits": 0, "time": 1_767_225_600}
    added: dict[str, list[tuple[str, int]]] = {}

    def blob(payload: bytes) -> int:
        state["mark"] += 1
        out.write(b"blob\nmark :%d\ndata %d\n" % (state["mark"], len(payload)) + payload + b"\n")
        return state["mark"]

    def commit(branch: str, parents: list[str], message: str, files: list[tuple[str, int]]) -> str:
        state["mark"] += 1
        state["time"] += 600
        who = f"bench <bench@gitml.invalid> {state['time']} +0000"
        head = f"commit refs/heads/{branch}\nmark :{state['mark']}\nauthor {who}\ncommitter {who}\n"
        out.write(head.encode() + b"data %d\n%s\n" % (len(message), message.encode()))
        for i, parent in enumerate(parents):
            out.write(f"{'from' if i == 0 else 'merge'} {parent}\n".encode())
        out.write("".join(f"M 100644 :{mark} {path}\n" for path, mark in files).encode())
        return f":{state['mark']}"

    def runs_commit(branch: str, parent: str) -> str:
        n = per_commit[state["commits"]]
        state["commits"] += 1
        features_md5 = f"{rng.getrandbits(128):032x}"
        files = []
        for k in range(n):
            rec = record(state["run"], rng)
            state["run"] += 1
            rec["code"]["branch"] = branch
            if k == 0:
                rec["name"] = f"prepare-{state['run'] - 1}"
                rec["command"] = ["python", "prepare.py"]
                rec["inputs"] = {"data/raw.csv": {"md5": "0" * 31 + "1", "size": 1_000_000}}
                rec["outputs"] = {"data/features.parquet": {"md5": features_md5, "size": 250_000}}
                rec["metrics"] = {"rows": 10_000.0}
            else:
                rec["inputs"] = {"data/features.parquet": {"md5": features_md5, "size": 250_000}}
            files.append((f".gitml/runs/{rec['id']}/run.toml", blob(store.dumps_toml(rec))))
        summary = {"schema_version": 1, "run": rec["id"], "name": rec["name"],
                   "status": "finished", "metrics": rec["metrics"], "params": rec["params"]}  # fmt: skip
        added.setdefault(branch, []).extend(files)
        files.append(("metrics.toml", blob(store.dumps_toml(summary))))
        return commit(branch, [parent], f"{branch}: {n} runs", files)

    main = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    for b in range(1, branches):
        for _ in range(main_share[b - 1]):
            main = runs_commit("main", main)
        name = f"exp-{b:02d}"
        tip = main
        for _ in range(branch_share):
            tip = runs_commit(name, tip)
        if b % 2 == 0:  # merged back: the merge's tree holds the branch's runs too
            main = commit("main", [main, tip], f"Merge branch '{name}'", added.get(name, []))
    out.write(b"done\n")
    out.close()
    if stream.wait() != 0:
        raise RuntimeError("git fast-import failed")
    git(root, "reset", "-q", "--hard", "main")
    return {"runs": state["run"], "commits": state["commits"] + merges, "branches": branches}
