"""A cap on request body size, by declared length or while streaming, answered with a 413
problem document (Starlette's own limiter answers in plain text)."""

from collections.abc import Callable

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from http_edge.problems import PROBLEM_JSON, Problems


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes` (a number, or a function read per request) with a 413
    problem; the connection is closed after it, since the rest of the body is never read."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int | Callable[[], int], problems: Problems
    ) -> None:
        self.app = app
        self._limit = max_bytes if callable(max_bytes) else (lambda: max_bytes)
        self._problems = problems
        self._refusals: dict[int, tuple[bytes, list[tuple[bytes, bytes]]]] = {}

    def _refusal(self, limit: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """The 413 answer for `limit`, built once per limit."""
        cached = self._refusals.get(limit)
        if cached is None:
            body = orjson.dumps(
                {
                    "type": self._problems.base + "payload-too-large",
                    "title": "Payload too large",
                    "status": 413,
                    "detail": f"Request bodies are limited to {limit} bytes.",
                }
            )
            headers = [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
            cached = self._refusals[limit] = (body, headers)
        return cached

    async def _refuse(self, send: Send, limit: int) -> None:
        body, headers = self._refusal(limit)
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit()
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > limit:
                    await self._refuse(send, limit)
                    return
                break

        received = 0
        started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > limit:
                    # A streamed body grew past the cap: answer now, then tell the app the
                    # client is gone so it stops reading; whatever it sends later is dropped.
                    refused = True
                    if not started:
                        await self._refuse(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except ClientDisconnect:
            if not refused:
                raise
