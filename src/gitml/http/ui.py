"""`gitml ui`: a read-only web app over the run index, live as runs log.

One page (static/ui/: plain JavaScript and CSS, uPlot for charts, no build step, no CDN) talks
to the JSON routes below. A watchdog observer on `.gitml/` and the git refs marks the table
stale and pushes a server-sent event, so an open page refreshes when a run logs or lands.

It binds 127.0.0.1. Bound anywhere else it needs a token (``GITML_UI_TOKEN``): the page is
opened once as ``/?token=...``, which sets an HttpOnly cookie; every other request without the
cookie (or ``Authorization: Bearer``) is 401. Only the files of static/ui/ are ever served, by
name from an allow-list.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, and
# `Request` is imported inside `create_app` (FastAPI loads only when the UI starts).

import asyncio
import hmac
import ipaddress
import json
import math
import sys
import threading
import time
import traceback
import webbrowser
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml import explore, explore_models, git, logs
from gitml.errors import GitmlError, UsageError
from gitml.http.app import listen
from gitml.repo import Repo

log = logs.get(__name__)
STATIC = Path(__file__).resolve().parent / "static" / "ui"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".txt": "text/plain; charset=utf-8"}  # fmt: skip
COOKIE = "gitml_ui_token"
EXPORT_MARK = ".gitml-ui-export"
ICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" '
    b'r="7" fill="#2f6fde"/></svg>'
)
WRITES = {"created", "modified", "deleted", "moved", "closed"}  # watchdog's event types


@dataclass
class Live:
    """What changed on disk, as a counter the event stream watches."""

    generation: int = 0

    def bump(self) -> None:
        """Something under `.gitml/` or the refs changed."""
        self.generation += 1


def create_app(repo: Repo, *, token: str | None = None, live: Live | None = None) -> Any:
    """The FastAPI app of the UI for ``repo``."""
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

    live = live or Live()
    table = explore.RunTable(repo, generation=lambda: live.generation)
    app = FastAPI(title="gitml ui", docs_url=None, redoc_url=None, openapi_url=None)
    files = {p.name: p for p in STATIC.iterdir() if p.suffix in TYPES}

    @app.exception_handler(GitmlError)
    async def _refused(_request: Request, exc: GitmlError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=400)

    @app.exception_handler(Exception)
    async def _failed(request: Request, exc: Exception) -> JSONResponse:
        log.warning("gitml ui: %s failed: %s", request.url.path, "".join(
            traceback.format_exception(exc)).rstrip())  # fmt: skip
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, 500)

    @app.middleware("http")
    async def _guard(request: Request, call_next: Any) -> Any:
        if token is None:
            return await call_next(request)
        given = request.query_params.get("token") or request.cookies.get(COOKIE) or ""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return JSONResponse({"error": "open the page as /?token=<GITML_UI_TOKEN>"}, 401)
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.get("/", response_class=HTMLResponse)
    def index() -> Any:
        return HTMLResponse(files["index.html"].read_text())

    @app.get("/favicon.ico")
    def favicon() -> Any:
        return Response(ICON, media_type="image/svg+xml")

    @app.get("/static/{name}")
    def static(name: str) -> Any:
        if name not in files:  # an allow-list: nothing outside static/ui/ can be named
            return JSONResponse({"error": f"no such file: {name}"}, 404)
        path = files[name]
        return Response(path.read_bytes(), media_type=TYPES[path.suffix],
                        headers={"Cache-Control": "max-age=3600"})  # fmt: skip

    _data_routes(app, repo, table)

    @app.get("/api/events")
    async def events(request: Request) -> Any:
        async def stream() -> Any:
            seen, beat = live.generation, time.monotonic()
            yield "retry: 1000\n\n"
            while not await request.is_disconnected():
                if live.generation != seen:
                    seen = live.generation
                    yield f"event: changed\ndata: {seen}\n\n"
                elif time.monotonic() - beat > 15:
                    beat = time.monotonic()
                    yield ": keep-alive\n\n"
                await asyncio.sleep(0.2)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})  # fmt: skip

    return app


def _data_routes(app: Any, repo: Repo, table: explore.RunTable) -> None:
    """The read-only JSON routes the page asks: runs, one run, series, compare, history, models."""

    @app.get("/api/runs")
    def runs(*, where: str = "", sort: str = "", offset: int = 0, limit: int = 100,
             columns: str = "", group: str = "") -> Any:  # fmt: skip
        chosen = [c for c in columns.split(",") if c]
        return table.page(where=where, sort=sort, offset=offset, limit=limit, columns=chosen,
                          group=group)  # fmt: skip

    @app.get("/api/fields")
    def fields() -> Any:
        return table.fields()

    @app.get("/api/run/{ref}")
    def run(ref: str) -> Any:
        return explore.run_page(repo, ref)

    @app.get("/api/series")
    def series(*, run: str, name: str, buckets: int = 1000, x0: float | None = None,
               x1: float | None = None, x: str = "step") -> Any:  # fmt: skip
        drawn = explore.series(repo, run, name, buckets=buckets, x0=x0, x1=x1, x_axis=x)
        return drawn.as_json()

    @app.get("/api/band")
    def band(*, ids: str, name: str, buckets: int = 1000) -> Any:
        return explore.band(repo, [i for i in ids.split(",") if i], name, buckets=buckets)

    @app.get("/api/compare")
    def compare(ids: str) -> Any:
        return explore.compare(repo, table, [i for i in ids.split(",") if i])

    @app.get("/api/history")
    def history(ref: str, metric: str) -> Any:
        return explore.history(repo, table, ref, metric)

    @app.get("/api/diff")
    def diff(a: str, b: str) -> Any:
        return explore.compare_refs(repo, a, b)

    @app.get("/api/models")
    def models() -> Any:
        return explore_models.models(repo)

    @app.get("/api/model/{name}")
    def model(name: str) -> Any:
        return explore_models.model_page(repo, name)


def watch(repo: Repo, live: Live) -> Any:
    """A started watchdog observer: `.gitml/` and the refs changing bump ``live``."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    cache = repo.cache_dir.resolve()

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            if event.event_type not in WRITES:
                return  # inotify also reports files opened and closed unwritten: reads
            path = Path(str(event.src_path)).resolve()
            if cache in path.parents or path == cache or path.name.endswith(".lock"):
                return  # the index and its locks: our own reads
            live.bump()

    observer = Observer()
    observer.schedule(Handler(), str(repo.gitml_dir), recursive=True)
    git_dir = repo.root / ".git"
    if git_dir.is_dir():
        observer.schedule(Handler(), str(git_dir / "refs"), recursive=True)
        observer.schedule(Handler(), str(git_dir), recursive=False)  # HEAD, packed-refs
    observer.daemon = True
    observer.start()
    return observer


def serve(
    repo: Repo, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
    open_browser: bool = False,
) -> None:  # fmt: skip
    """Serve the UI until interrupted; prints its URL (port 0 picks a free one)."""
    import uvicorn

    if token is None and not _loopback(host):
        raise UsageError("--host", f"{host} is reachable from other machines; set GITML_UI_TOKEN")
    live = Live()
    app = create_app(repo, token=token, live=live)
    sock, url = listen(host, port)
    observer = watch(repo, live)
    shown = f"{url}/?token=<GITML_UI_TOKEN>" if token else f"{url}/"
    print(f"gitml ui: {repo.root} at {shown}", file=sys.stderr, flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, [f"{url}/"]).start()
    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=2)  # fmt: skip
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        observer.stop()


def export(repo: Repo, dest: Path, *, buckets: int = 1000) -> dict[str, int]:
    """The same pages as a static site in ``dest`` (a CI artifact, GitHub Pages): JSON snapshots.

    Every run's row and page, each step metric cut to ``buckets`` per run, the history of each
    metric along HEAD, and the registry. The page reads these files instead of the server;
    filtering with `--where` and a band of repeats need `gitml ui` itself.
    """
    if dest.exists() and any(dest.iterdir()) and not (dest / EXPORT_MARK).is_file():
        raise UsageError("--export", f"{dest} is not empty and was not written by gitml ui")
    table = explore.RunTable(repo)
    rows = table.rows()
    counts = {"runs": 0, "series": 0, "models": 0}
    api = dest / "api"
    _write_json(api / "fields.json", table.fields())
    _write_json(api / "rows.json", [{k: explore.to_json(v) for k, v in r.items()} for r in rows])
    for row in rows:
        run_id = row["id"]
        _write_json(api / "run" / f"{run_id}.json", explore.run_page(repo, run_id))
        for name in explore.metric_names(repo, run_id):
            drawn = explore.series(repo, run_id, name, buckets=buckets)
            _write_json(api / "series" / run_id / f"{_safe(name)}.json", drawn.as_json())
            counts["series"] += 1
        counts["runs"] += 1
    has_history = git.resolve_commit(repo.root, "HEAD") is not None  # none before a first commit
    for metric in (f for f in table.fields() if f.startswith("metrics.") and has_history):
        _write_json(api / "history" / f"{_safe(metric)}.json",
                    explore.history(repo, table, "HEAD", metric))  # fmt: skip
    models = explore_models.models(repo)
    _write_json(api / "models.json", models)
    for model in models:
        _write_json(
            api / "model" / f"{model['name']}.json", explore_models.model_page(repo, model["name"])
        )
        counts["models"] += 1
    (dest / "static").mkdir(parents=True, exist_ok=True)
    for path in STATIC.iterdir():
        if path.suffix in TYPES and path.name != "index.html":
            (dest / "static" / path.name).write_bytes(path.read_bytes())
    page = (STATIC / "index.html").read_text()
    page = page.replace('<script src="/static/', '<script src="static/').replace(
        'href="/static/', 'href="static/')  # fmt: skip
    page = page.replace(
        "<script src=", "<script>window.GITML_EXPORT = true;</script>\n<script src=", 1
    )
    (dest / "index.html").write_text(page)
    (dest / EXPORT_MARK).write_text(
        "written by `gitml ui --export`; rewritten by the next export\n"
    )
    return counts


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(value), default=str, allow_nan=False))


def _finite(value: Any) -> Any:
    """NaN and infinities as null, as the server's JSON answers have them (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _safe(name: str) -> str:
    """A metric name as a file name: characters other than letters, digits, . - _ escaped."""
    return "".join(c if c.isalnum() or c in "._-" else f"~{ord(c):x}~" for c in name)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
