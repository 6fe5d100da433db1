"""What tells `gitml ui` that runs changed: a counter, and the watchdog observer that bumps it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml import logs
from gitml.repo import Repo

log = logs.get(__name__)
WRITES = {"created", "modified", "deleted", "moved", "closed"}  # watchdog's event types


@dataclass
class Live:
    """What changed on disk, as a counter the event stream watches."""

    generation: int = 0

    def bump(self) -> None:
        """Something under `.gitml/` or the refs changed."""
        self.generation += 1


class Watcher:
    """A watchdog observer over what the UI shows: writes bump ``live``.

    Not one recursive watch of `.gitml/`: inotify needs a watch per folder, and 100,000 run
    folders took 2 s and 100,000 of the user's inotify watches. Watched instead: `.gitml/` and
    `.gitml/runs/` themselves (a run folder made or removed), the folders of the runs that are
    running (their journals and records change), each new run folder as it appears, the small
    folders beside (`models/`, `reproductions/`, `monitor/`, recursively), and the git refs.
    """

    def __init__(self, repo: Repo, live: Live) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        self.repo, self.live = repo, live
        self.gitml_dir, self.runs_dir = str(repo.gitml_dir), str(repo.runs_dir)
        self.cache = str(repo.cache_dir)
        self.watched: set[str] = set()
        self.observer = Observer()
        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                watcher.saw(event)

        self.handler = Handler()

    def start(self) -> Watcher:
        """Watch `.gitml/`, its runs folder and small folders, and the refs; start the thread."""
        self.add(self.gitml_dir, recursive=False)
        self.add(self.runs_dir, recursive=False)
        for sub in Path(self.gitml_dir).iterdir() if Path(self.gitml_dir).is_dir() else ():
            if sub.is_dir() and str(sub) not in (self.runs_dir, self.cache):
                self.add(str(sub), recursive=True)
        git_dir = self.repo.root / ".git"
        if git_dir.is_dir():
            self.add(str(git_dir / "refs"), recursive=True)
            self.add(str(git_dir), recursive=False)  # HEAD, packed-refs
        self.observer.daemon = True
        self.observer.start()
        return self

    def follow(self, run_ids: list[str]) -> None:
        """Also watch these runs' folders (runs found running)."""
        for run_id in run_ids:
            self.add(str(self.repo.run_dir(run_id)), recursive=False)

    def add(self, folder: str, *, recursive: bool) -> None:
        """Watch ``folder`` (once); a folder that cannot be watched is logged, not fatal."""
        if folder in self.watched or not Path(folder).is_dir():
            return
        self.watched.add(folder)
        try:
            self.observer.schedule(self.handler, folder, recursive=recursive)
        except OSError as exc:  # out of inotify watches, or the folder went
            log.warning("gitml ui: cannot watch %s (%s); refresh the page to see it", folder, exc)

    def saw(self, event: Any) -> None:
        """One filesystem event: a write bumps ``live``; a new folder is watched too."""
        if event.event_type not in WRITES:
            return  # inotify also reports files opened and closed unwritten: reads
        path = str(event.src_path)
        if path.startswith(self.cache) or path.endswith(".lock"):
            return  # the index and its locks: our own reads
        if event.is_directory and event.event_type == "created":
            parent = str(Path(path).parent)
            if parent == self.runs_dir:
                self.add(path, recursive=False)  # a new run: its records and journals
            elif parent == self.gitml_dir:
                self.add(path, recursive=path != self.runs_dir)
        self.live.bump()

    def stop(self) -> None:
        """Stop the observer thread."""
        self.observer.stop()
