"""The last line of a service's error handling, inside its metrics and request-id middleware:
an unexpected exception becomes a 500 problem on a connection that stays usable, and a client
that hung up mid-request is recorded as such, not as a server error.

Starlette's own last line (ServerErrorMiddleware) re-raises after answering, so uvicorn logged
the exception a second time and closed the kept-alive connection without `Connection: close`:
the client's next request on it met a reset it could not tell from a lost answer.
"""

from typing import TYPE_CHECKING

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from http_edge.problems import Problems

CLIENT_CLOSED_STATE = "client_closed"
"""Set in `scope["state"]` when the client went away before the request was answered."""
CLIENT_CLOSED_STATUS = 499
"""What metrics record for such a request (nginx's convention): never a 5xx."""

log = structlog.get_logger(__name__)


class EdgeErrorMiddleware:
    """Answers unexpected exceptions with a 500 problem (logged once, with its traceback), and
    records a client disconnect before the answer (logged at debug level, counted by metrics)."""

    def __init__(self, app: ASGIApp, *, problems: "Problems") -> None:
        self.app = app
        self.problems = problems

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            scope.setdefault("state", {})[CLIENT_CLOSED_STATE] = True
            log.debug("client_closed", path=scope["path"])
        except Exception as exc:
            log.error("unhandled_error", path=scope["path"], exc_info=exc)
            if started:
                return  # half an answer is out: uvicorn closes the connection, nothing to add
            request = Request(scope, receive, send)
            response = self.problems.internal_error(request)
            await response(scope, receive, send)
