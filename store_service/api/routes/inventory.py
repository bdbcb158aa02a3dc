"""Local inventory routes: read one SKU, page through SKUs, and update (the hot path)."""

import re
import time
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import structlog
from fastapi import APIRouter, FastAPI, Query, Request, Response, params
from fastapi.exceptions import RequestValidationError
from pydantic import StringConstraints, TypeAdapter, ValidationError

from store_service import inventory
from store_service.api.bodies import json_request_body, parse_json_body
from store_service.api.deps import RuntimeDep, StoreRuntime
from store_service.api.lean_route import LeanRoute
from store_service.api.params import Limit, SkuPath
from store_service.api.problems import ProblemError, problem_responses
from store_service.api.schemas import InventoryItem, InventoryPage, UpdateRequest, UpdateResponse
from store_service.domain import SKU_MAX_LENGTH, SKU_PATTERN
from store_service.inventory import UpdateCommand
from store_service.logs import request_id_var
from store_service.storage import items

router = APIRouter(prefix="/v1/local", tags=["inventory"])
log = structlog.get_logger(__name__)


# The update route checks its SKU itself (see update_item), with the rule SkuPath declares.
_SKU_RE = re.compile(SKU_PATTERN)
_SkuRule = Annotated[str, StringConstraints(pattern=SKU_PATTERN, max_length=SKU_MAX_LENGTH)]
_SKU_ADAPTER: TypeAdapter[str] = TypeAdapter(_SkuRule)
SKU_PATH_PARAMETER = {
    "name": "sku",
    "in": "path",
    "required": True,
    "schema": {**_SKU_ADAPTER.json_schema(), "examples": ["SKU-1001"], "title": "Sku"},
}


def _refuse_sku(sku: str) -> NoReturn:
    """Raise the validation error FastAPI would have raised for a bad `{sku}`."""
    try:
        _SKU_ADAPTER.validate_python(sku)
    except ValidationError as exc:
        errors = [{**error, "loc": ("path", "sku")} for error in exc.errors()]
        raise RequestValidationError(errors) from None
    raise RequestValidationError(  # the regex and pydantic disagree: never expected
        [{"type": "string_pattern_mismatch", "loc": ("path", "sku"), "msg": "bad SKU"}]
    )


@router.get(
    "/inventory/{sku}",
    response_model=InventoryItem,
    responses=problem_responses(404, 422),
    summary="The local view of one SKU",
)
async def read_item(sku: SkuPath, runtime: RuntimeDep) -> InventoryItem:
    item = items.get_item(runtime.reader, sku)
    if item is None:
        raise ProblemError(404, "sku-not-found", "SKU not found", f"No local stock for {sku}.")
    return InventoryItem.model_validate(item)


@router.get(
    "/inventory",
    response_model=InventoryPage,
    responses=problem_responses(422),
    summary="Page through local inventory in SKU order",
)
async def list_items(
    runtime: RuntimeDep,
    limit: Limit = 100,
    after: Annotated[
        str | None,
        Query(pattern=SKU_PATTERN, max_length=SKU_MAX_LENGTH, description="Last SKU seen."),
    ] = None,
) -> InventoryPage:
    page = items.list_items(runtime.reader, after=after, limit=limit)
    next_after = page[-1]["sku"] if len(page) == limit else None
    return InventoryPage.model_validate({"items": page, "next_after": next_after})


UPDATE_PATH = "/v1/local/inventory/{sku}/update"
UPDATE_ROUTE_OPTIONS: dict[str, Any] = {
    "methods": ["POST"],
    "tags": ["inventory"],
    "response_model": UpdateResponse,
    "responses": {
        200: {
            "description": "Applied locally and queued for central (or a replay of that answer).",
            "headers": {
                "Idempotent-Replayed": {
                    "description": "`true` when this answers a retried operation_id.",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            },
            "links": {
                "SyncStatus": {
                    "operationId": "sync_status",
                    "parameters": {"operation_id": "$response.body#/operation_id"},
                },
                "ReadItem": {
                    "operationId": "read_item",
                    "parameters": {"sku": "$request.path.sku"},
                },
            },
        },
        **problem_responses(400, 409, 413, 415, 422, 503),
    },
    "summary": "Apply a stock change locally and queue it for central",
    "openapi_extra": {**json_request_body(UpdateRequest), "parameters": [SKU_PATH_PARAMETER]},
}


async def update_item(request: Request) -> Response:
    # The hot path takes only the request: FastAPI's dependency solving (path validation, a
    # sync runtime dependency run in a thread) was a measurable share of each request. The SKU
    # is checked here with the same rule and error shape; OpenAPI declares it via openapi_extra.
    # Refusals (stale version, insufficient stock, reused operation_id) are raised by the use
    # case and answered by the app's problem handlers (store_service/api/problems.py).
    sku = request.path_params["sku"]
    if _SKU_RE.fullmatch(sku) is None:
        _refuse_sku(sku)
    runtime: StoreRuntime = request.app.state.runtime
    body = await parse_json_body(request, UpdateRequest)
    command = UpdateCommand(
        sku=sku,
        delta=body.delta,
        operation_id=body.operation_id,
        version=body.version,
        request_id=request_id_var.get(),
    )
    result = await runtime.writer.run(
        inventory.apply_update_job,
        command,
        allow_negative=runtime.settings.allow_negative_stock,
        now=time.time(),
    )
    log.info(
        "update_replayed" if result.replayed else "update_applied",
        sku=sku,
        operation_id=command.operation_id,
        delta=command.delta,
    )
    if not result.replayed:
        runtime.publisher.notify_change()  # "sync soon" mode: a debounced sync after a change
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return Response(
        result.body, status_code=result.status, media_type="application/json", headers=headers
    )


def install_update_route(app: FastAPI, dependencies: Sequence[params.Depends]) -> None:
    """Put the update route on the app's own router, ahead of the included routers.

    FastAPI resolves an included router's routes through an "effective route" layer, twice per
    request (match, then handle); the hot path skips it and FastAPI's per-request endpoint
    machinery (see LeanRoute). Call this before including `router`.
    """
    app.router.add_api_route(
        UPDATE_PATH,
        update_item,
        dependencies=dependencies,
        route_class_override=LeanRoute,
        **UPDATE_ROUTE_OPTIONS,
    )
