"""Pure ASGI middleware: request ids bound to the logs (the body limit is `http_edge`'s)."""

import itertools
import os

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
