"""Local inventory routes: read, update (the hot path), change status and lists."""

import re
import time
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import structlog
from fastapi import APIRouter, FastAPI, Query, Request, Response, params
from fastapi.exceptions import RequestValidationError
from pydantic import StringConstraints, TypeAdapter, ValidationError

from store_service import change_queries, domain, inventory
from store_service.api.bodies import json_request_body, parse_json_body
from store_service.api.deps import RuntimeDep, StoreRuntime
from store_service.api.lean_route import LeanRoute
from store_service.api.params import Limit, OperationIdPath, SkuPath
from store_service.api.problems import ProblemError, problem_responses
from store_service.api.routes.sync import notify_change
from store_service.api.schemas import (
    SKU_PATTERN,
    ChangePage,
    ChangeStatus,
    ChangeView,
    InventoryItem,
    InventoryPage,
    UpdateRequest,
    UpdateResponse,
)
from store_service.inventory import OperationReused, UpdateCommand
from store_service.logs import request_id_var

router = APIRouter(prefix="/v1/local", tags=["inventory"])
log = structlog.get_logger(__name__)


# The update route validates its SKU itself (see update_item), with the rule SkuPath declares.
_SKU_RE = re.compile(SKU_PATTERN)
_SKU_ADAPTER = TypeAdapter(Annotated[str, StringConstraints(pattern=SKU_PATTERN, max_length=64)])
SKU_PATH_PARAMETER = {
    "name": "sku",
    "in": "path",
    "required": True,
    "schema": {
        "type": "string",
        "maxLength": 64,
        "pattern": SKU_PATTERN,
        "examples": ["SKU-1001"],
        "title": "Sku",
    },
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
    item = inventory.get_item(runtime.reader, sku)
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
        str | None, Query(pattern=SKU_PATTERN, max_length=64, description="Last SKU seen.")
    ] = None,
) -> InventoryPage:
    items = inventory.list_items(runtime.reader, after=after, limit=limit)
    next_after = items[-1]["sku"] if len(items) == limit else None
    return InventoryPage.model_validate({"items": items, "next_after": next_after})


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
        **problem_responses(400, 409, 413, 415, 422),
    },
    "summary": "Apply a stock change locally and queue it for central",
    "openapi_extra": {**json_request_body(UpdateRequest), "parameters": [SKU_PATH_PARAMETER]},
}


async def update_item(request: Request) -> Response:
    # The hot path takes only the request: FastAPI's dependency solving (path validation, a
    # sync runtime dependency run in a thread) was a measurable share of each request. The SKU
    # is checked here with the same rule and error shape; OpenAPI declares it via openapi_extra.
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
    allow_negative = runtime.settings.allow_negative_stock
    try:
        result = await runtime.writer.run(
            inventory.apply_update_job, command, allow_negative=allow_negative, now=time.time()
        )
    except domain.VersionMismatch as exc:
        log.info(
            "update_refused", reason="version_mismatch", sku=sku, operation_id=command.operation_id
        )
        raise ProblemError(
            409,
            "version-conflict",
            "Version conflict",
            f"Expected version {exc.expected}, the current version is {exc.item.version}.",
            field="version",
            current_quantity=exc.item.quantity,
            current_version=exc.item.version,
        ) from None
    except domain.InsufficientStock as exc:
        log.info(
            "update_refused",
            reason="insufficient_stock",
            sku=sku,
            operation_id=command.operation_id,
        )
        raise ProblemError(
            409,
            "insufficient-stock",
            "Insufficient stock",
            f"Quantity {exc.item.quantity} cannot take a delta of {exc.delta}.",
            field="delta",
            current_quantity=exc.item.quantity,
            current_version=exc.item.version,
        ) from None
    except OperationReused as exc:
        log.info(
            "update_refused", reason="operation_reused", sku=sku, operation_id=command.operation_id
        )
        raise ProblemError(
            422,
            "operation-id-reused",
            "operation_id reused with a different payload",
            str(exc),
            field="operation_id",
            original={
                "sku": exc.stored["sku"],
                "delta": exc.stored["delta"],
                "version": exc.stored["expected_version"],
            },
        ) from None
    log.info(
        "update_replayed" if result.replayed else "update_applied",
        sku=sku,
        operation_id=command.operation_id,
        delta=command.delta,
    )
    if not result.replayed:
        notify_change(runtime)  # "sync soon" mode: a debounced sync after a new change
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


@router.get(
    "/sync/status/{operation_id}",
    response_model=ChangeView,
    responses={
        200: {
            "description": "The change",
            # Operator actions on the same change (stateful testing follows these too).
            "links": {
                action.capitalize(): {
                    "operationId": f"{action}_change",
                    "parameters": {"operation_id": "$response.body#/operation_id"},
                }
                for action in ("retry", "discard")
            },
        },
        **problem_responses(404, 422),
    },
    summary="Where one change stands on its way to central",
)
async def sync_status(operation_id: OperationIdPath, runtime: RuntimeDep) -> ChangeView:
    change = change_queries.get_change(runtime.reader, operation_id)
    if change is None:
        raise ProblemError(
            404, "operation-not-found", "Operation not found", f"No change {operation_id}."
        )
    return ChangeView.model_validate(change)


@router.get(
    "/changes",
    response_model=ChangePage,
    responses=problem_responses(422),
    summary="Page through changes (the outbox), by status and SKU",
    description=(
        "Changes in outbox order (oldest first), `limit` per page; follow `next_after_id` "
        "until it is null. Filtered by SKU, a page looks through the next "
        f"{change_queries.SKU_SCAN_WINDOW:,} changes (of the status, if given) and may hold "
        "fewer than `limit` changes, or none, while more follow."
    ),
)
async def list_changes(
    runtime: RuntimeDep,
    status: ChangeStatus | None = None,
    sku: Annotated[str | None, Query(pattern=SKU_PATTERN, max_length=64)] = None,
    after_id: Annotated[int, Query(ge=0, le=2**62, description="Last id seen.")] = 0,
    limit: Limit = 100,
) -> ChangePage:
    items, next_after = change_queries.list_changes(
        runtime.reader, status=status, sku=sku, after_id=after_id, limit=limit
    )
    return ChangePage.model_validate({"items": items, "next_after_id": next_after})
