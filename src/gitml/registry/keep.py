"""`.gitml/keep.dvc`: the registry's bytes, where plain `dvc gc` can see them.

`dvc gc -w` keeps only the objects that the workspace's `.dvc` files and `dvc.lock` name; a
model version registered from an older run is named only by gitml's registry, so `dvc gc -w
-c -f` would delete it from the cache and the remote. gitml therefore keeps one DVC file with
an out per registered version (`keep/<md5>`, a `.dir` one included), rewritten in the same
commit as every registry change. DVC reads it as its own: `dvc gc` keeps those objects,
`dvc push` uploads them, `dvc pull` fetches them. Each out is materialized as a hard link to
the cache where the cache has the object (no bytes copied), so `dvc status` stays clean;
`/keep/` is git-ignored.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gitml import store
from gitml.data.add import cache_path
from gitml.repo import MODELS_DIR, Repo

KEEP_FILE = "keep.dvc"
KEEP_DIR = "keep"
KEEP_IGNORE = f"/{KEEP_DIR}/"  # the line in `.gitml/.gitignore`
HEADER = "# gitml: every registered model version, so that `dvc gc` keeps its bytes\n"


def keep_path(repo: Repo) -> Path:
    """`.gitml/keep.dvc`."""
    return repo.gitml_dir / KEEP_FILE


def keep_bytes(repo: Repo, changed: Mapping[Path, Mapping[str, Any]]) -> bytes:
    """The keep file for every registry document, ``changed`` ones as given (path -> doc)."""
    docs: dict[Path, Any] = dict(changed)
    folder = repo.gitml_dir / MODELS_DIR
    for file in sorted(folder.glob("*.toml")) if folder.is_dir() else ():
        if file not in docs:
            with contextlib.suppress(Exception):  # a broken document keeps nothing new
                docs[file] = store.read_toml(file, kind="model")
    objects: dict[str, int] = {}
    for doc in docs.values():
        for version in doc.get("versions", []):
            objects[version["md5"]] = version["size"]
    lines = [HEADER, "outs:\n"]
    for md5, size in sorted(objects.items()):
        lines += [f"- md5: {md5}\n", f"  size: {size}\n", "  hash: md5\n",
                  f"  path: {KEEP_DIR}/{md5}\n"]  # fmt: skip
    return "".join(lines).encode() if objects else b""


def materialize(repo: Repo, data: bytes) -> int:
    """Hard-link each kept file object from the DVC cache into `.gitml/keep/`; how many.

    Only whole-file objects the cache holds, on the same file system; anything else is left to
    `dvc checkout` (which then copies or links it as the cache's settings say).
    """
    folder = repo.gitml_dir / KEEP_DIR
    linked = 0
    for line in data.decode().splitlines():
        md5 = line.removeprefix("- md5: ").strip() if line.startswith("- md5: ") else ""
        if not md5 or md5.endswith(".dir"):
            continue
        source, target = cache_path(repo.root, md5), folder / md5
        if target.exists() or not source.is_file():
            continue
        folder.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            os.link(source, target)
            linked += 1
    return linked
