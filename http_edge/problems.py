"""RFC 9457 problem details for the project's FastAPI apps (the store API and central_sim).

Every error either service answers is one JSON document of media type
`application/problem+json`: `type` (a stable URI, the app's base + a slug), `title`, `status`,
`detail`, `instance` (the request path), and extension members a client can act on (`field`,
`current_version`, …). Never a stack trace, never an echo of the input: validation problems
list at most `MAX_ERRORS` errors as field, message and code (pydantic's `input` and `ctx`
are dropped, since they may hold a secret or be large) and say how many there were.

One `Problems` per app installs the handlers: a raised `ProblemError`, FastAPI's request
validation, Starlette's HTTP errors, the app's own refusals (a table of exception type → the
problem it becomes), and anything unexpected (a logged 500 from `http_edge.errors`, which also
records a client that hung up before its answer).
"""

from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from http_edge.errors import EdgeErrorMiddleware

PROBLEM_JSON = "application/problem+json"
SLUG_STATE = "problem_slug"
"""`request.state` attribute holding the slug a request was answered with (for metrics)."""
MAX_ERRORS = 10
"""Validation errors listed in one problem; the rest are only counted (`error_count`)."""

log = structlog.get_logger(__name__)


class Problem(BaseModel):
    """RFC 9457 problem details; extension members carry what the client can act on."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="Stable URI naming the kind of problem.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(None, description="The request path.")


class ProblemError(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions


Refusals = Mapping[type[Exception], Callable[[Any], ProblemError]]
"""An app's own exceptions and the problem each becomes."""


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries declaring problem documents for the given statuses."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def validation_errors(errors: list[Any]) -> list[dict[str, str]]:
    """pydantic's errors as `{field, message, code}`: no input values, no context."""
    return [
        {
            "field": ".".join(str(part) for part in error.get("loc", ()) if part not in _LOCATIONS),
            "message": str(error.get("msg", "")),
            "code": str(error.get("type", "")),
        }
        for error in errors
    ]


_LOCATIONS = frozenset({"body", "path", "query", "header", "cookie"})


class Problems:
    """The problem documents of one app: its `type` base URI, and its exception handlers."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.refusals: dict[type[Exception], Callable[[Any], ProblemError]] = {}
        self.allowed_methods: Callable[[Request], str | None] | None = None

    def response(
        self,
        request: Request | None,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> JSONResponse:
        body: dict[str, Any] = {"type": self.base + slug, "title": title, "status": status}
        if detail:
            body["detail"] = detail
        if request is not None:
            body["instance"] = request.url.path
            setattr(request.state, SLUG_STATE, slug)
        body.update((key, value) for key, value in extensions.items() if value is not None)
        return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)

    def internal_error(self, request: Request | None) -> JSONResponse:
        return self.response(
            request, 500, "internal-error", "Internal error", "The error was logged; retry later."
        )

    def from_error(self, request: Request | None, error: ProblemError) -> JSONResponse:
        return self.response(
            request,
            error.status,
            error.slug,
            error.title,
            error.detail,
            headers=error.headers,
            **error.extensions,
        )

    def install(
        self,
        app: FastAPI,
        *,
        refusals: Refusals | None = None,
        allowed_methods: Callable[[Request], str | None] | None = None,
    ) -> None:
        """Answer every error of `app` with a problem document; `refusals` maps the app's own
        exceptions to problems, `allowed_methods` gives a 405's `Allow` header."""
        self.refusals = dict(refusals or {})
        self.allowed_methods = allowed_methods

        async def on_error(request: Request, exc: Exception) -> JSONResponse:
            return self.answer(request, exc)

        for kind in (ProblemError, RequestValidationError, StarletteHTTPException, *self.refusals):
            app.add_exception_handler(kind, on_error)
        # Starlette's last line answers with this but then re-raises (uvicorn logs it again and
        # drops the connection); EdgeErrorMiddleware, innermost, answers without re-raising.
        app.add_exception_handler(Exception, on_error)
        app.add_middleware(EdgeErrorMiddleware, problems=self)

    def answer(self, request: Request, exc: Exception) -> JSONResponse:
        """The problem document for any exception a request raised (what the installed handlers
        answer; the consoles call it too)."""
        if isinstance(exc, ProblemError):
            return self.from_error(request, exc)
        if isinstance(exc, RequestValidationError):
            return self._validation(request, exc)
        if isinstance(exc, StarletteHTTPException):
            return self._http(request, exc)
        for kind in type(exc).__mro__:
            convert = self.refusals.get(kind)
            if convert is not None:
                problem: ProblemError = convert(exc)
                if problem.status < 500:  # a 5xx condition is logged where it is detected
                    log.info("request_refused", problem=problem.slug, path=request.url.path)
                return self.from_error(request, problem)
        return self._unexpected(request, exc)

    def _validation(self, request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(list(exc.errors()))
        if any(error["code"] == "json_invalid" for error in errors):
            return self.response(
                request, 400, "malformed-json", "Malformed JSON", "The body is not valid JSON."
            )
        shown = errors[:MAX_ERRORS]
        detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in shown)
        if len(errors) > len(shown):
            detail += f"; and {len(errors) - len(shown)} more"
        return self.response(
            request,
            422,
            "validation-error",
            "Invalid request",
            detail,
            field=shown[0]["field"] if shown else None,
            errors=shown,
            error_count=len(errors),
        )

    def _http(self, request: Request, exc: StarletteHTTPException) -> JSONResponse:
        phrase = HTTPStatus(exc.status_code).phrase
        slug = phrase.lower().replace(" ", "-").replace("'", "")
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
        headers = dict(exc.headers or {})
        if exc.status_code == 405 and self.allowed_methods is not None:
            allowed = self.allowed_methods(request)
            if allowed:
                headers["Allow"] = allowed
        return self.response(request, exc.status_code, slug, phrase, detail, headers=headers)

    def _unexpected(self, request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled_error", path=request.url.path, exc_info=exc)
        return self.internal_error(request)
