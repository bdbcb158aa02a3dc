"""central_sim's problem documents (RFC 9457, built by `http_edge.problems`, the same shape as
the store's): its `type` base URI, the documented Problem schema, and the handlers."""

import re
from typing import Any

from fastapi import FastAPI, Request
from pydantic import ConfigDict, Field

from http_edge.problems import PROBLEM_JSON, ProblemError, Problems
from http_edge.problems import Problem as BaseProblem

__all__ = ["PROBLEMS", "PROBLEM_JSON", "Problem", "ProblemError", "problem_responses"]

PROBLEMS = Problems("https://central-sim/problems/")


class Problem(BaseProblem):
    """An RFC 9457 problem; extension members carry the details a client acts on."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "type": PROBLEMS.base + "version-conflict",
                "title": "Version conflict",
                "status": 409,
                "detail": "SKU-1 is at version 7, the write expected version 6",
                "current_quantity": 12,
                "current_version": 7,
            }
        },
    )

    field: str | None = Field(None, description="The offending field, where one is to blame.")
    current_quantity: int | None = None
    current_version: int | None = None
    errors: list[dict[str, Any]] | None = Field(None, description="Validation errors.")


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


def install_problem_handlers(app: FastAPI) -> None:
    PROBLEMS.install(app, allowed_methods=_allowed_methods)


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
