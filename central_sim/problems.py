"""RFC 9457 problem details for every error the simulator returns, and the handlers that make
FastAPI's own errors (validation, 404, 405, crashes) come out the same way."""

import re
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_BASE = "https://central-sim/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger("central_sim.problems")


class Problem(BaseModel):
    """An RFC 9457 problem; extension members carry the details a client acts on."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "type": PROBLEM_BASE + "version-conflict",
                "title": "Version conflict",
                "status": 409,
                "detail": "SKU-1 is at version 7, the write expected version 6",
                "current_quantity": 12,
                "current_version": 7,
            }
        },
    )

    type: str = Field(description="Stable URI naming the kind of problem.")
    title: str
    status: int
    detail: str
    field: str | None = Field(None, description="The offending field, where one is to blame.")
    current_quantity: int | None = None
    current_version: int | None = None
    errors: list[dict[str, Any]] | None = Field(None, description="Validation errors.")


class ProblemError(Exception):
    """Raise to answer with a problem; `extra` become extension members."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        **{k: v for k, v in extra.items() if v is not None},
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _from_problem_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status, exc.slug, exc.title, exc.detail, headers=exc.headers, **exc.extra
    )


def _from_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Never echo `input`: it may hold a service secret from the token request.
    errors = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    field = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"]) or None
    detail = f"{field}: {first['msg']}" if field else str(first["msg"])
    return problem_response(
        422, "validation-error", "Request validation failed", detail, field=field, errors=errors
    )


_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("payload-too-large", "Payload too large"),
}


def _allowed_methods(request: Request) -> str | None:
    """Every method documented for this path. Starlette's own Allow header names only the
    first partially matching route (GET /v1/inventory/{sku} for PUT /v1/inventory/bulk-sync)."""
    paths = request.app.openapi().get("paths", {})
    path = request.url.path
    if path in paths:  # a literal path wins over templates it happens to match
        return ", ".join(sorted(method.upper() for method in paths[path]))
    methods: set[str] = set()
    for template, item in paths.items():
        literal_parts = re.split(r"\{[^/}]+\}", template)
        if re.fullmatch("[^/]+".join(re.escape(part) for part in literal_parts), path):
            methods.update(method.upper() for method in item)
    return ", ".join(sorted(methods)) or None


def _from_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    headers = dict(exc.headers or {})
    allowed = _allowed_methods(request) if exc.status_code == 405 else None
    if allowed:
        headers["Allow"] = allowed
    return problem_response(exc.status_code, slug, title, str(exc.detail), headers=headers)


def _from_crash(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled_error", path=request.url.path, exc_info=exc)
    return problem_response(
        500, "internal-error", "Internal error", "the simulator failed to handle the request"
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _from_problem_error)
    app.add_exception_handler(RequestValidationError, _from_validation_error)
    app.add_exception_handler(StarletteHTTPException, _from_http_exception)
    app.add_exception_handler(Exception, _from_crash)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for problem statuses (media type fixed up in main)."""
    descriptions = {
        400: "Bad request (e.g. missing Idempotency-Key)",
        401: "Missing, invalid, expired or revoked bearer token",
        404: "Unknown resource",
        409: "Version conflict or insufficient stock",
        413: "Body or batch too large",
        422: "Validation failed, or an idempotency key reused with a different payload",
        429: "Throttled (injected); honour Retry-After",
        502: "Applied, but the response was dropped (injected)",
        503: "Unavailable (injected); nothing was applied",
    }
    return {
        status: {"model": Problem, "description": descriptions.get(status, "Problem")}
        for status in statuses
    }
