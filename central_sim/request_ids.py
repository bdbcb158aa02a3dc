"""Binds the caller's `X-Request-ID` to the simulator's log lines, so a store request can be
followed from the store API through the worker to central in the logs."""

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

_HEADER = b"x-request-id"
_MAX_LENGTH = 128


class RequestIdLogContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = None
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == _HEADER:
                    request_id = value.decode("latin-1")[:_MAX_LENGTH]
                    break
        if not request_id:
            await self.app(scope, receive, send)
            return
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send)
