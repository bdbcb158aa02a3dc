"""Pure ASGI middleware: request ids bound to the logs, and a cap on request body size."""

import itertools
import os

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from store_service.api.problems import PROBLEM_JSON, PROBLEMS
from store_service.logs import request_id_var

REQUEST_ID_HEADER = b"x-request-id"
_MAX_REQUEST_ID = 128


class _IdMaker:
    """Unique request ids without a system call each: a random per-process prefix + a counter.

    (`uuid4()` reads /dev/urandom per request, which is measurably slow on small VMs.)
    """

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


class RequestIdMiddleware:
    """Takes `X-Request-ID` (or makes one), binds it to the logs, and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._new_id = _IdMaker()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                request_id = value.decode("latin-1")[:_MAX_REQUEST_ID]
                break
        if not request_id.isprintable() or not request_id:
            request_id = self._new_id()
        token = request_id_var.set(request_id)  # logs read it from there (logs._add_request_id)
        raw = request_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER, raw)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes` with a 413 problem, by declared length or while streaming.

    (Starlette's own limiter answers a declared oversize length in plain text; every error here
    must be a problem document.)
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._body = orjson.dumps(
            {
                "type": PROBLEMS.base + "payload-too-large",
                "title": "Payload too large",
                "status": 413,
                "detail": f"Request bodies are limited to {max_bytes} bytes.",
            }
        )
        self._headers = [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(self._body)).encode()),
        ]

    async def _refuse(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 413, "headers": self._headers})
        await send({"type": "http.response.body", "body": self._body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await self._refuse(send)
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
                if received > self.max_bytes:
                    # A streamed body grew past the cap: answer now, then tell the app the
                    # client is gone so it stops reading; whatever it sends later is dropped.
                    refused = True
                    if not started:
                        await self._refuse(send)
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
