"""The /v1 contract: read one SKU, adjust one SKU idempotently, bulk-sync a batch."""

from typing import Annotated

import orjson
import structlog
from fastapi import APIRouter, Header, Path, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from central_sim import operations
from central_sim.api.deps import ReaderDep, RuntimeDep, WriterDep
from central_sim.ledger import MAX_KEY_LENGTH, SKU_PATTERN, InvalidItem, Reason, Status, Write
from central_sim.problems import ProblemError, problem_responses
from central_sim.schemas import (
    AdjustRequest,
    AdjustResponse,
    BulkItem,
    BulkSyncRequest,
    BulkSyncResponse,
    InventoryItem,
)

router = APIRouter(prefix="/v1/inventory", tags=["inventory"])
log = structlog.get_logger("central_sim.inventory")
SkuPath = Annotated[str, Path(pattern=SKU_PATTERN, examples=["SKU-1"])]
REPLAYED = {"Idempotent-Replayed": "true"}
READ_ITEM = "read_item_v1_inventory__sku__get"  # FastAPI's generated operationId


def _dropped() -> ProblemError:
    return ProblemError(
        502, "response-dropped", "Bad gateway", "response lost (injected); the write WAS applied"
    )


@router.get(
    "/{sku}",
    response_model=InventoryItem,
    responses=problem_responses(401, 404, 422, 429, 503),
    summary="Central's quantity and version of one SKU",
)
async def read_item(sku: SkuPath, rt: RuntimeDep, _service: ReaderDep) -> InventoryItem:
    stock = await run_in_threadpool(operations.get_stock, rt, sku)
    if stock is None:
        raise ProblemError(404, "unknown-sku", "Unknown SKU", f"central has never seen {sku}")
    return InventoryItem(sku=sku, quantity=stock.quantity, version=stock.version)


@router.post(
    "/{sku}/adjust",
    response_model=AdjustResponse,
    responses={
        200: {
            "description": "Applied, or a replay of an applied key (`status: duplicate`, "
            "header `Idempotent-Replayed: true`)",
            "headers": {"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}}},
            # For stateful testing (and readers): what was adjusted can be read back.
            "links": {
                "ReadItem": {"operationId": READ_ITEM, "parameters": {"sku": "$request.path.sku"}}
            },
        },
        **problem_responses(400, 401, 409, 413, 422, 429, 502, 503),
    },
    summary="Apply one delta if the version matches (idempotent by Idempotency-Key)",
)
async def adjust(
    sku: SkuPath,
    body: AdjustRequest,
    rt: RuntimeDep,
    caller: WriterDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description=f"The operation id, 1..{MAX_KEY_LENGTH} characters.",
        ),
    ] = None,
) -> AdjustResponse:
    if not idempotency_key:
        raise ProblemError(
            400,
            "missing-idempotency-key",
            "Missing Idempotency-Key",
            "the Idempotency-Key header is required",
            field="Idempotency-Key",
        )
    if len(idempotency_key) > MAX_KEY_LENGTH:
        raise ProblemError(
            400,
            "invalid-idempotency-key",
            "Invalid Idempotency-Key",
            f"the Idempotency-Key header must be 1..{MAX_KEY_LENGTH} characters",
            field="Idempotency-Key",
        )
    if body.sku != sku:
        raise ProblemError(
            422, "sku-mismatch", "SKU mismatch", "body sku must equal the path sku", field="sku"
        )
    if body.delta == 0:
        raise ProblemError(
            422, "invalid-delta", "Invalid delta", "delta must be non-zero", field="delta"
        )
    write = Write(idempotency_key, sku, body.delta, body.version)
    [outcome] = await run_in_threadpool(
        lambda: operations.apply_writes(
            rt, service=caller.service, items=[write], dropped=caller.drop_response
        )
    )
    if caller.drop_response:
        raise _dropped()
    # The refusals read like the store's own (api/problems.py) on purpose: the same problem
    # types for the same rules, so a client handles both services alike; messages differ.
    if outcome.status == Status.CONFLICT:
        raise ProblemError(
            409,
            "version-conflict",
            "Version conflict",
            f"{sku} is at version {outcome.version}, the write expected version {body.version}",
            field="version",
            current_quantity=outcome.quantity,
            current_version=outcome.version,
        )
    if outcome.reason == Reason.INSUFFICIENT_STOCK:
        raise ProblemError(
            409,
            "insufficient-stock",
            "Insufficient stock",
            f"applying {body.delta} to {outcome.quantity} would make {sku} negative",
            field="delta",
            current_quantity=outcome.quantity,
            current_version=outcome.version,
        )
    if outcome.reason == Reason.IDEMPOTENCY_KEY_REUSED:
        raise ProblemError(
            422,
            "idempotency-key-reused",
            "Idempotency key reused",
            "this Idempotency-Key was already used with a different sku or delta",
            field="Idempotency-Key",
        )
    if outcome.status == Status.DUPLICATE:
        response.headers.update(REPLAYED)
    assert outcome.quantity is not None
    assert outcome.version is not None
    return AdjustResponse(
        operation_id=idempotency_key,
        sku=sku,
        status=outcome.status.value,  # type: ignore[arg-type]  # applied or duplicate here
        quantity=outcome.quantity,
        version=outcome.version,
    )


def validate_item(raw: object) -> Write | InvalidItem:
    """A typed write, or the ids the bad item carried so its result can be matched up."""
    try:
        item = BulkItem.model_validate(raw)
    except ValidationError:
        item = None
    if item is not None and item.delta != 0:
        return Write(item.operation_id, item.sku, item.delta, item.version)
    raw_map = raw if isinstance(raw, dict) else {}
    operation_id = raw_map.get("operation_id")
    sku = raw_map.get("sku")
    return InvalidItem(
        operation_id if isinstance(operation_id, str) else None,
        sku if isinstance(sku, str) else None,
    )


@router.post(
    "/bulk-sync",
    response_model=BulkSyncResponse,
    responses=problem_responses(401, 413, 422, 429, 502, 503),
    summary="Apply a batch in input order; one result per item",
)
async def bulk_sync(body: BulkSyncRequest, rt: RuntimeDep, caller: WriterDep) -> Response:
    limit = rt.settings.max_batch_items
    if len(body.items) > limit:
        raise ProblemError(
            413,
            "batch-too-large",
            "Batch too large",
            f"{len(body.items)} items; at most {limit} per request",
            field="items",
        )
    items = [validate_item(raw) for raw in body.items]
    outcomes = await run_in_threadpool(
        lambda: operations.apply_writes(
            rt, service=caller.service, items=items, dropped=caller.drop_response
        )
    )
    if caller.drop_response:
        raise _dropped()
    invalid = sum(isinstance(item, InvalidItem) for item in items)
    log.info("bulk_sync", service=caller.service, items=len(items), invalid=invalid)
    # Plain dicts and orjson: a 1000-item answer must cost well under a millisecond to build.
    results = [
        {
            "operation_id": o.operation_id,
            "sku": o.sku,
            "status": o.status.value,
            "quantity": o.quantity,
            "version": o.version,
            "reason": o.reason.value if o.reason is not None else None,
        }
        for o in outcomes
    ]
    return Response(orjson.dumps({"results": results}), media_type="application/json")
