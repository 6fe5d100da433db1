"""`gitml serve`: a registered model over HTTP, checked before it is loaded and as it is called.

The model's bytes are hashed and compared with the md5 the registry recorded before they are
unpickled; a mismatch refuses to start (or, on reload, keeps the version already serving).
Requests are validated against the signature recorded at registration: feature names and
types, one clear message and 422 otherwise. Every answered request is logged to Parquet under
`.gitml/monitor/<name>/requests/` (see `gitml.monitoring.monitor`). With
``reload_on_promote`` a watchdog observer follows the registry file, so `gitml model promote`,
`rollback` or a `git revert` swaps the model in place.

Routes: ``POST /predict`` (``{"records": [...]}``), ``POST /invocations`` (MLflow's
``dataframe_split`` / ``dataframe_records`` / ``instances`` / ``inputs`` bodies and CSV, so an
MLflow client switches without change), ``GET /health``, ``GET /ping``, ``GET /metadata``, and
the OpenAPI spec at ``/openapi.json``. FastAPI is imported by this module only, lazily; its
route annotations must be real classes, so this module does not use postponed annotations.
"""

import hmac
import socket
import sys
import threading
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from gitml import __version__
from gitml.errors import GitmlError
from gitml.http.api import (
    ERROR_SCHEMA,
    docs_page,
    metadata_of,
    openapi_spec,
    parse_body,
)
from gitml.http.drain import DrainOversized
from gitml.monitoring.monitor import RequestLog, requests_dir
from gitml.registry.versions import registry_path
from gitml.repo import Repo
from gitml.serving.loading import InputError, LoadedModel, load, predict

MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass
class ServingState:
    """What the app serves now; ``current`` is swapped whole when the alias moves."""

    repo: Repo
    spec: str
    current: LoadedModel
    log: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    allow_findings: bool = False

    def reload(self) -> str | None:
        """Load the version the spec names now; a message if it changed, None if not."""
        try:
            fresh = load(self.repo, self.spec, allow_findings=self.allow_findings)
        except GitmlError as exc:
            return f"gitml serve: kept v{self.current.number}: {exc}"
        with self.lock:
            old = self.current
            if fresh.version["md5"] == old.version["md5"] and fresh.number == old.number:
                return None
            self.current = fresh
        return f"gitml serve: {self.spec} -> v{fresh.number} (was v{old.number})"

    def handle(
        self, endpoint: str, request_id: str, body: bytes, content_type: str, proba: bool
    ) -> Any:
        """Answer one request to ``/predict`` or ``/invocations`` and log it."""
        current = self.current
        try:
            frame = parse_body(current.inputs, endpoint, body, content_type)
            out = predict(current, frame, proba=proba)
        except InputError as exc:
            if endpoint == "invocations":  # as MLflow's scoring server answers: 400, error_code
                status = 400 if exc.status == 422 else exc.status
                answer = {"error_code": "BAD_REQUEST", "message": exc.message,
                          "error": exc.message, "detail": exc.detail}  # fmt: skip
                return _answer(answer, status, request_id)
            return _answer({"error": exc.message, "detail": exc.detail}, exc.status, request_id)
        if self.log is not None:
            self._log(request_id, endpoint, current.number, frame, out["predictions"])
        if endpoint == "invocations":
            return _answer({"predictions": out["predictions"]}, request_id=request_id)
        model = {"name": current.name, "version": current.number}
        return _answer({**out, "model": model, "request_id": request_id}, request_id=request_id)

    def _log(self, request_id: str, endpoint: str, version: int, frame: Any, out: Any) -> None:
        """Log a request; a failure to log is said on stderr but never fails the answer."""
        try:
            self.log.append(
                request_id=request_id, endpoint=endpoint, version=version, frame=frame,
                predictions=out,
            )  # fmt: skip
        except Exception as exc:
            message = f"gitml serve: warning: request {request_id} not logged: {exc}"
            print(message, file=sys.stderr, flush=True)


def _answer(
    payload: Any, status: int = 200, request_id: str = "", headers: dict[str, str] | None = None
) -> Any:
    import orjson
    from fastapi.responses import Response

    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    headers = {**(headers or {}), **({"X-Request-ID": request_id} if request_id else {})}
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def create_app(
    repo: Repo,
    spec: str,
    *,
    log_requests: bool = True,
    reload_on_promote: bool = False,
    max_body: int = MAX_BODY_BYTES,
    token: str | None = None,
    allow_findings: bool = False,
) -> Any:
    """The FastAPI app serving ``spec`` (loads and verifies the model now).

    With ``token``, every route but /health, /ping and the docs wants
    ``Authorization: Bearer <token>`` and answers 401 without it.
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import PlainTextResponse, Response
    from starlette.exceptions import HTTPException

    loaded = load(repo, spec, allow_findings=allow_findings)
    state = ServingState(repo, spec, loaded, allow_findings=allow_findings)
    if log_requests:
        state.log = RequestLog(requests_dir(repo, loaded.name))

    @asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        watcher = _watch(state, app) if reload_on_promote else None
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()
                watcher.join(timeout=5)
            if state.log is not None:
                state.log.close()

    app = FastAPI(
        title=f"gitml serve {loaded.name}",
        version=str(loaded.number),
        description=f"Model {spec}, served by gitml from its verified registry artifact.",
        lifespan=lifespan,
        max_body_size=max_body,
        docs_url=None,  # Swagger UI comes from a CDN: blank offline; /docs below needs nothing
        redoc_url=None,
    )
    app.state.gitml = state
    errors = {
        str(code): {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
        for code, text in (
            (400, "The body is not valid JSON (or CSV)."),
            (413, "The body is larger than the server takes."),
            (415, "The content type is not one the route takes."),
            (422, "The input does not match the model's signature."),
        )
    }

    @app.get("/health", summary="Liveness, and which version is served")
    def health() -> dict[str, Any]:
        current = state.current
        return {"status": "ok", "name": current.name, "version": current.number}

    @app.get(
        "/ping",
        summary="Liveness, as MLflow's scoring server answers it",
        response_class=PlainTextResponse,
    )
    def ping() -> Response:
        return Response("\n", media_type="text/plain")

    @app.get(
        "/version",
        summary="gitml's version, where MLflow's scoring server answers MLflow's",
        response_class=PlainTextResponse,
    )
    def version() -> Response:
        return Response(__version__, media_type="text/plain")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        return Response(docs_page(app.openapi()), media_type="text/html; charset=utf-8")

    @app.get("/metadata", summary="The served version: run, commits, artifact hash, signature")
    def metadata() -> dict[str, Any]:
        return metadata_of(state.current)

    @app.post(
        "/predict",
        summary="Predict for records: {'records': [{feature: value, ...}, ...]}",
        responses=errors,  # type: ignore[arg-type]
    )
    async def predict_route(request: Request, proba: bool = False) -> Response:
        return await _handle(state, request, "predict", proba)

    @app.post(
        "/invocations",
        summary="Predict from MLflow scoring-server bodies (dataframe_split, dataframe_records, "
        "instances, inputs) or CSV",
        responses=errors,  # type: ignore[arg-type]
    )
    async def invocations(request: Request) -> Response:
        return await _handle(state, request, "invocations", False)

    app.openapi = lambda: openapi_spec(app, state)  # type: ignore[method-assign]

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> Response:
        message = str(exc.detail)
        if exc.status_code == 413:
            message = f"body: over the {max_body:,}-byte limit; send fewer records per request"
        return _answer({"error": message}, exc.status_code, headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
        return _answer({"error": f"{where}: {first['msg']}", "detail": detail}, 422)

    if token:
        app.add_middleware(_BearerToken, token=token)  # type: ignore[arg-type]
    return app


OPEN_PATHS = ("/health", "/ping", "/version", "/openapi.json", "/docs")


class _BearerToken:
    """ASGI middleware: ``Authorization: Bearer <token>`` or 401, except on OPEN_PATHS."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:

        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, value = given.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(value.strip(), self.token):
            await self.app(scope, receive, send)
            return
        import orjson

        body = orjson.dumps({"error": "authorization: send 'Authorization: Bearer <token>'"})
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="gitml"')]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


async def _handle(state: ServingState, request: Any, endpoint: str, proba: bool) -> Any:
    """Read the body here, then validate, predict and log in a worker thread."""
    from starlette.concurrency import run_in_threadpool

    body = await request.body()
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    content_type = request.headers.get("content-type", "application/json")
    return await run_in_threadpool(state.handle, endpoint, request_id, body, content_type, proba)


def _watch(state: ServingState, app: Any) -> Any:
    """A started watchdog observer that reloads the model when its registry file changes."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    target = registry_path(state.repo, state.current.name)
    timer: list[threading.Timer] = []

    def reload() -> None:
        message = state.reload()
        if message:
            app.openapi_schema = None
            print(message, file=sys.stderr, flush=True)

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            paths = {event.src_path, getattr(event, "dest_path", "")}
            if str(target) not in {str(p) for p in paths}:
                return
            for pending in timer:
                pending.cancel()
            timer[:] = [threading.Timer(0.1, reload)]  # git writes the file in several steps
            timer[0].start()

    target.parent.mkdir(parents=True, exist_ok=True)
    observer = Observer()
    observer.schedule(Handler(), str(target.parent), recursive=False)
    observer.start()
    return observer


def listen(host: str, port: int) -> tuple[socket.socket, str]:
    """A listening TCP socket on ``host:port`` (0: a free port), and its URL."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it a response's headers and body wait out the client's 40 ms delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise GitmlError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror})") from exc
    sock.listen(2048)  # connections made before uvicorn is up wait in the backlog
    shown = f"[{host}]" if ":" in host else host
    return sock, f"http://{shown}:{sock.getsockname()[1]}"


def serve(
    repo: Repo,
    spec: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    reload_on_promote: bool = False,
    log_requests: bool = True,
    max_body: int = MAX_BODY_BYTES,
    access_log: bool = True,
    token: str | None = None,
    allow_findings: bool = False,
) -> None:
    """Serve ``spec`` until interrupted; prints the URL (port 0 picks a free one)."""
    import uvicorn

    app = create_app(
        repo, spec, log_requests=log_requests, reload_on_promote=reload_on_promote,
        max_body=max_body, token=token, allow_findings=allow_findings,
    )  # fmt: skip
    current = app.state.gitml.current
    sock, url = listen(host, port)
    print(
        f"serving {current.name} v{current.number} ({spec}, md5 {current.version['md5'][:12]}) "
        f"at {url}  (OpenAPI: /openapi.json, docs: /docs"
        + ("; bearer token required)" if token else ")"),
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        DrainOversized(app, max_body), log_level="info" if access_log else "warning",
        access_log=access_log, timeout_graceful_shutdown=10,
    )  # fmt: skip
    uvicorn.Server(config).run(sockets=[sock])
