"""Read an oversized request body to its end before answering 413, so the client hears it.

A server that answers 413 at once and closes the connection leaves a client that is still
sending its body with a broken pipe, never the answer (and Starlette's own limit answers a
Content-Length over it in plain text). So a body whose Content-Length is over the limit is read
and dropped, up to `DRAIN_LIMIT` (past that, reading it all would cost more than the broken
pipe), and the JSON 413 the routes give is sent on a connection still in step.
"""

from __future__ import annotations

from typing import Any

DRAIN_LIMIT = 1024 * 1024 * 1024  # bytes read and dropped at most: 1 GiB


class DrainOversized:
    """ASGI middleware around an app that refuses bodies over ``limit`` bytes with a 413."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Pass the request on; an oversized one only after its body has been read."""
        length = _content_length(scope) if scope["type"] == "http" else None
        if length is None or length <= self.limit:
            await self.app(scope, receive, send)
            return
        more = length <= DRAIN_LIMIT
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            more = bool(message.get("more_body"))
        import orjson

        text = f"body: over the {self.limit:,}-byte limit; send fewer records per request"
        body = orjson.dumps(
            {"error": text, "error_code": "REQUEST_LIMIT_EXCEEDED", "message": text}
        )
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]  # fmt: skip
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
