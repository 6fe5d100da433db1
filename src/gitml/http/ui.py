"""`gitml ui`: a read-only web app over the run index, live as runs log.

One page (static/ui/: plain JavaScript and CSS, uPlot for charts, no build step, no CDN) talks
to the JSON routes below. A watchdog observer on `.gitml/` and the git refs marks the table
stale and pushes a server-sent event, so an open page refreshes when a run logs or lands.

It binds 127.0.0.1. Bound anywhere else it needs a token (``GITML_UI_TOKEN``): the page is
opened once as ``/?token=...``, which sets an HttpOnly cookie; every other request without the
cookie (or ``Authorization: Bearer``) is 401. Only the files of static/ui/ are ever served, by
name from an allow-list.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hmac
import ipaddress
import os
import sys
import threading
import time
import traceback
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitml import explore, explore_models, explore_table, logs
from gitml.errors import GitmlError, UsageError
from gitml.http.app import listen
from gitml.http.ui_watch import Live, Watcher
from gitml.repo import Repo

log = logs.get(__name__)
STATIC = Path(__file__).resolve().parent / "static" / "ui"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".txt": "text/plain; charset=utf-8"}  # fmt: skip
COOKIE = "gitml_ui_token"
ICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" '
    b'r="7" fill="#2f6fde"/></svg>'
)


class Query:
    """A request's query string, read field by field; a bad value is a 400 naming the field."""

    def __init__(self, params: Any) -> None:
        self.params = params

    def text(self, name: str, default: str | None = None) -> str:
        """The field as text; without a default it is required."""
        value = self.params.get(name, default)
        if value is None:
            raise UsageError(name, "required, not given")
        return str(value)

    def ids(self, name: str) -> list[str]:
        """A comma-separated list."""
        return [i for i in self.text(name).split(",") if i]

    def integer(self, name: str, default: int) -> int:
        """An integer, or ``default`` when absent."""
        raw = self.params.get(name)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise UsageError(name, f"{raw!r} is not an integer") from None

    def number(self, name: str) -> float | None:
        """A number, or None when absent or empty."""
        raw = self.params.get(name)
        if raw in (None, ""):
            return None
        try:
            return float(raw)
        except ValueError:
            raise UsageError(name, f"{raw!r} is not a number") from None


LOCAL_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def create_app(
    repo: Repo, *, token: str | None = None, live: Live | None = None,
    hosts: frozenset[str] = LOCAL_NAMES,
) -> Any:  # fmt: skip
    """The ASGI app of the UI for ``repo``.

    Starlette, the toolkit FastAPI is built on, and not FastAPI itself: these routes take a few
    query parameters and answer JSON, and FastAPI's models cost 0.3 s and 20 MiB at start-up.
    """
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    live = live or Live()
    table = explore_table.RunTable(repo, generation=lambda: live.generation)
    files = {p.name: p for p in STATIC.iterdir() if p.suffix in TYPES}

    def index(_request: Any) -> Any:
        return Response(files["index.html"].read_bytes(), media_type=TYPES[".html"])

    def favicon(_request: Any) -> Any:
        return Response(ICON, media_type="image/svg+xml")

    def static(request: Any) -> Any:
        name = request.path_params["name"]
        if name not in files:  # an allow-list: nothing outside static/ui/ can be named
            return JSONResponse({"error": f"no such file: {name}"}, 404)
        path = files[name]
        return Response(path.read_bytes(), media_type=TYPES[path.suffix],
                        headers={"Cache-Control": "max-age=3600"})  # fmt: skip

    async def events(request: Any) -> Any:
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

    pages = {"/": index, "/favicon.ico": favicon, "/static/{name}": static, "/api/events": events,
             **_data_routes(repo, table)}  # fmt: skip
    routes = [Route(path, _guarded(page, token, hosts)) for path, page in pages.items()]
    app = Starlette(routes=routes)
    app.state.table = table
    return app


def _guarded(
    answer: Callable[..., Any], token: str | None, hosts: frozenset[str]
) -> Callable[..., Any]:  # fmt: skip
    """``answer`` behind the token (when there is one) and gitml's errors as JSON.

    Without a token, only requests that name this machine in their Host header are answered:
    a web page the user visits can point a name of its own at 127.0.0.1 (DNS rebinding) and
    would otherwise read every run through the user's browser.
    """
    from starlette.responses import JSONResponse, Response

    async def endpoint(request: Any) -> Any:
        if token is None and _host_name(request.headers.get("host", "")) not in hosts:
            return JSONResponse({"error": "gitml ui answers only as 127.0.0.1 or localhost"}, 403)
        if token is not None:
            given = request.query_params.get("token") or request.cookies.get(COOKIE) or ""
            auth = request.headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                given = auth[7:].strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse({"error": "open the page as /?token=<GITML_UI_TOKEN>"}, 401)
        try:
            if asyncio.iscoroutinefunction(answer):
                response = await answer(request)
            else:  # reading files and git: off the event loop
                response = await asyncio.to_thread(answer, request)
        except GitmlError as exc:
            response = JSONResponse({"error": exc.message}, 400)
        except Exception as exc:  # one bad record answers 500; the server stays up
            log.warning("gitml ui: %s failed: %s", request.url.path, "".join(
                traceback.format_exception(exc)).rstrip())  # fmt: skip
            response = JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"},
                                    500)  # fmt: skip
        if not isinstance(response, Response):  # orjson: quick, and NaN as null
            import orjson

            response = Response(orjson.dumps(response, default=str),
                                media_type="application/json")  # fmt: skip
        if token is not None and request.query_params.get("token"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    return endpoint


def _data_routes(repo: Repo, table: explore_table.RunTable) -> dict[str, Callable[[Any], Any]]:
    """The read-only JSON routes the page asks: runs, one run, series, compare, history, models."""

    def runs(request: Any) -> Any:
        q = Query(request.query_params)
        return table.page(where=q.text("where", ""), sort=q.text("sort", ""),
                          offset=q.integer("offset", 0), limit=q.integer("limit", 100),
                          columns=q.ids("columns") if "columns" in q.params else [],
                          group=q.text("group", ""))  # fmt: skip

    def series(request: Any) -> Any:
        q = Query(request.query_params)
        drawn = explore.series(table, q.text("run"), q.text("name"),
                               buckets=q.integer("buckets", 1000), x0=q.number("x0"),
                               x1=q.number("x1"), x_axis=q.text("x", "step"))  # fmt: skip
        return drawn.as_json()

    def band(request: Any) -> Any:
        q = Query(request.query_params)
        return explore.band(table, q.ids("ids"), q.text("name"), buckets=q.integer("buckets", 1000))

    def compare(request: Any) -> Any:
        return explore.compare(table, Query(request.query_params).ids("ids"))

    def history(request: Any) -> Any:
        q = Query(request.query_params)
        return explore.history(table, q.text("ref"), q.text("metric"))

    def diff(request: Any) -> Any:
        q = Query(request.query_params)
        return explore.compare_refs(repo, q.text("a"), q.text("b"))

    return {
        "/api/runs": runs,
        "/api/fields": lambda _request: table.fields(),
        "/api/run/{ref}": lambda request: explore.run_page(table, request.path_params["ref"]),
        "/api/series": series,
        "/api/band": band,
        "/api/compare": lambda request: explore.compare(
            table, Query(request.query_params).ids("ids")
        ),
        "/api/history": history,
        "/api/diff": diff,
        "/api/models": lambda _request: explore_models.models(repo),
        "/api/check": lambda request: explore_models.check_page(
            repo, Query(request.query_params).text("rev", "")
        ),
        "/api/model/{name}": lambda request: explore_models.model_page(
            repo, request.path_params["name"]
        ),
    }


def serve(
    repo: Repo, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
    open_browser: bool = False,
) -> None:  # fmt: skip
    """Serve the UI until interrupted; prints its URL (port 0 picks a free one)."""
    import uvicorn

    if token is None and not _loopback(host):
        raise UsageError("--host", f"{host} is reachable from other machines; set GITML_UI_TOKEN")
    _lean_memory()
    live = Live()
    app = create_app(repo, token=token, live=live, hosts=LOCAL_NAMES | {host})
    sock, url = listen(host, port)
    watcher = Watcher(repo, live).start()
    table: explore_table.RunTable = app.state.table

    def warm() -> None:  # read the runs while the page loads; then follow the running ones
        try:
            watcher.follow([r["id"] for r in table.rows() if r.get("status") == "running"])
        except GitmlError as exc:  # shown again, as a 400, when the page asks
            log.warning("gitml ui: %s", exc.message)
        import pyarrow._parquet  # noqa: F401 - charts read Parquet: loaded before one is asked

    threading.Thread(target=warm, name="gitml-ui-warm", daemon=True).start()
    shown = f"{url}/?token=<GITML_UI_TOKEN>" if token else f"{url}/"
    print(f"gitml ui: {repo.root} at {shown}", file=sys.stderr, flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, [f"{url}/"]).start()
    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=2)  # fmt: skip
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        watcher.stop()


def _lean_memory() -> None:
    """Let a long-lived server give back what a big chart borrowed.

    Drawing a 1,000,000-step metric reads ~30 MB of arrays. glibc raises its mmap threshold
    after the first large free, so the next ones come from the heap and stay resident, and
    Arrow's own allocator (mimalloc) keeps what it freed: measured, +40 MiB each time a chart
    was drawn (177 MiB after two). With a fixed threshold and Arrow on the system allocator
    the server stays at 99 MiB, at the same speed.
    """
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")  # read when pyarrow loads
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to set
            ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD: 128 KiB


def _host_name(header: str) -> str:
    """The name in a Host header, without its port (``[::1]:8765`` is ``::1``)."""
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
