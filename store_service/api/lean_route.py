"""A FastAPI route that calls its endpoint with the bare Request: for the one hot path."""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


class LeanRoute(APIRoute):
    """An APIRoute (path matching, OpenAPI, name) whose endpoint gets the Request and nothing else.

    FastAPI runs every endpoint through dependency solving, two AsyncExitStacks and a second
    exception-handling layer per request. An endpoint that takes only the Request and returns a
    Response needs none of that: its exceptions reach the app's ExceptionMiddleware, which holds
    the same handlers. With route dependencies (API keys) the route keeps FastAPI's handler, so
    they still run.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if not self.dependant.dependencies:
            self.app = _request_app(endpoint)


def _request_app(endpoint: Endpoint) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    return app
