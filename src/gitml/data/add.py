"""Track a file: hash it DVC-compatibly (once), put it in the DVC cache, write its pointer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from gitml import git, logs, store
from gitml.data import CACHE_SUBDIR, ArtifactRef, cache_dir, cache_path, dvc_repo, read_dvc_option
from gitml.data.ingest import can_reflink, ingest, md5_of
from gitml.data.state import HashState
from gitml.errors import ArtifactError

log = logs.get(__name__)

PROGRESS_BYTES = 64 * 1024 * 1024  # show a progress bar on a terminal from this size up


def file_md5(root: Path, path: Path) -> str:
    """The md5 DVC gives ``path``, reused from the hash state while the file is unchanged."""
    st = path.stat()
    state = HashState(root)
    try:
        md5 = state.get(path, st)
        if md5 is None:
            with _progress(path, st.st_size) as bar:
                md5 = md5_of(path, bar.update)
            state.put(path, st, md5)
    finally:
        state.close()
    return md5


def add_to_cache(root: Path, path: Path) -> ArtifactRef:
    """Hash a file DVC-compatibly (md5 of its bytes) and put it in the DVC cache."""
    _check_file(path)
    st = path.stat()
    state = HashState(root)
    try:
        md5 = state.get(path, st)
        if md5 is None or not cache_path(root, md5).is_file():
            try:
                with _progress(path, st.st_size) as bar:
                    files = cache_dir(root) / CACHE_SUBDIR
                    link = "hardlink" in cache_types(root)
                    md5 = ingest(path, files, known_md5=md5, progress=bar.update, hardlink=link)
                _note_copy(root, path, st.st_size, link)
            except OSError as exc:
                raise ArtifactError(str(path), f"cannot add to the DVC cache: {exc}") from exc
            if path.stat().st_mtime_ns != st.st_mtime_ns:
                raise ArtifactError(str(path), "changed while it was being added; try again")
            state.put(path, st, md5)
    finally:
        state.close()
    return ArtifactRef(md5=md5, size=st.st_size)


def track(root: Path, path: Path, *, run_id: str | None = None) -> ArtifactRef:
    """Cache ``path`` and write its `.dvc` pointer and .gitignore entry, as `dvc add` does.

    Hashing and caching overlap (or the file is reflinked); an unchanged file whose pointer and
    cache object are in place costs a stat and a lookup. A file that git already tracks, or
    that a DVC pipeline outputs, keeps its place: its bytes are cached and its hash returned,
    and no pointer is written. The pointer is byte-identical to `dvc add`'s, so plain DVC works
    on it; with ``run_id`` (a file `gitml run` saw the command write) it also names that run
    under `meta`, which DVC allows and ignores, so the merge driver can keep the newer output
    when two branches each trained.
    """
    if path.is_dir():
        return _track_dir(root, path)
    _check_file(path)
    rel = path.resolve().relative_to(root)
    ref = add_to_cache(root, path)
    if _git_tracks(root, rel.as_posix()) or _pipeline_output(root, rel):
        return ref
    pointer = path.with_name(path.name + ".dvc")
    text = POINTER.format(md5=ref.md5, size=ref.size, name=path.name)
    if run_id is not None:
        text += RUN_META.format(run_id=run_id)
    stale = not pointer.exists() or pointer_md5(pointer) != ref.md5
    if stale or (run_id is not None and pointer.read_bytes() != text.encode()):
        store.atomic_write(pointer, text.encode())
    ignore_file(path)
    return ref


def _track_dir(root: Path, path: Path) -> ArtifactRef:
    """A directory goes through DVC's own add: its `.dir` manifest format is DVC's to define."""
    from dvc.exceptions import DvcException

    rel = path.resolve().relative_to(root).as_posix()
    with dvc_repo(root) as repo:
        try:
            repo.add([str(path.resolve())])
        except DvcException as exc:
            raise ArtifactError(rel, f"DVC cannot track this directory: {exc}") from exc
    fields = _pointer_fields(path.with_name(path.name + ".dvc"))
    try:
        return ArtifactRef(
            md5=fields["md5"], size=int(fields["size"]), nfiles=int(fields["nfiles"])
        )
    except (KeyError, ValueError) as exc:
        raise ArtifactError(rel, "DVC wrote no md5/size/nfiles for this directory") from exc


def _pointer_fields(pointer: Path) -> dict[str, str]:
    try:
        return parse_pointer(pointer.read_bytes().decode(errors="replace"))
    except OSError:
        return {}


def parse_pointer(text: str) -> dict[str, str]:
    """md5, size and nfiles of the (first) output a `.dvc` file's text records.

    Only the `outs:` section counts: a `dvc import` file starts with the stage's own `md5:`
    and lists its source under `deps:`, and neither is the data's hash. Read line by line,
    not as YAML: the git hooks call this for every staged pointer.
    """
    fields: dict[str, str] = {}
    in_outs = False
    for line in text.splitlines():
        if line[:1] not in ("", " ", "\t", "-"):  # a top-level key starts a section
            in_outs = line.startswith("outs:")
            continue
        if not in_outs:
            continue
        key, _, value = line.strip().lstrip("- ").partition(":")
        if key in ("md5", "size", "nfiles") and key not in fields:
            fields[key] = value.strip()
    return fields


POINTER = "outs:\n- md5: {md5}\n  size: {size}\n  hash: md5\n  path: {name}\n"
RUN_META = "meta:\n  gitml_run: {run_id}\n"


def ignore_file(path: Path) -> None:
    """Add ``path`` to the .gitignore beside it, as `dvc add` does."""
    # As `dvc add` does: the data file is ignored by git beside its committed pointer.
    store.append_line(path.parent / ".gitignore", f"/{path.name}")


def pointer_md5(pointer: Path) -> str | None:
    """The md5 a `.dvc` pointer file records for its single output, or None."""
    return _pointer_fields(pointer).get("md5")


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise ArtifactError(str(path), "is a directory; track it with `track`, not `add_to_cache`")
    if not path.is_file():
        raise ArtifactError(str(path), "no such file")


def _git_tracks(root: Path, rel: str) -> bool:

    return git.is_tracked(root, rel)


def _pipeline_output(root: Path, rel: Path) -> bool:
    # Outputs of dvc.yaml stages are tracked by dvc.lock; `dvc add` on them would fail.
    lock = root / "dvc.lock"
    return lock.is_file() and f"path: {rel.as_posix()}" in lock.read_text()


def cache_types(root: Path) -> list[str]:
    """DVC's `cache.type` setting (link kinds allowed, in order); DVC's default is reflink,copy."""
    value = read_dvc_option(root, "cache", "type") or "reflink,copy"
    return [t.strip() for t in value.split(",") if t.strip()]


def _note_copy(root: Path, path: Path, size: int, linked: bool) -> None:
    # Never a silent double copy: say when a big file now exists twice on disk.

    if linked or size < PROGRESS_BYTES or can_reflink(cache_dir(root)):
        return
    log.warning(
        "gitml: copied %s (%.0f MiB) into the DVC cache: this filesystem cannot reflink. To link "
        "instead of copy: `dvc config cache.type hardlink,copy` (linked files become read-only)",
        path.name,
        size / 2**20,
    )


def _progress(path: Path, size: int) -> Any:
    """A progress bar on a terminal for big files; a silent stand-in otherwise.

    tqdm is imported only when a bar is shown: a small file must not pay for its import.
    """
    if size < PROGRESS_BYTES or not sys.stderr.isatty():
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(total=size, unit="B", unit_scale=True, desc=path.name, leave=False)


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        """Ignore progress."""
