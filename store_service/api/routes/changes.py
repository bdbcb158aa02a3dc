"""Outbox routes: where one change stands, pages of changes, and the operator's actions on a
change parked in `conflict` (retry it, or discard it)."""

from typing import Annotated

from fastapi import APIRouter, Query

from store_service import operator
from store_service.api.deps import RuntimeDep
from store_service.api.params import Limit, OperationIdPath, SkuQuery
from store_service.api.problems import problem_responses
from store_service.api.schemas import ChangePage, ChangeView
from store_service.domain import ChangeNotFound, ChangeState, OperatorAction
from store_service.storage import outbox

router = APIRouter(prefix="/v1/local", tags=["changes"])


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
    change = outbox.get_change(runtime.reader, operation_id)
    if change is None:
        raise ChangeNotFound(operation_id)
    return ChangeView.model_validate(change)


@router.get(
    "/changes",
    response_model=ChangePage,
    responses=problem_responses(422),
    summary="Page through changes (the outbox), by status and SKU",
    description=(
        "Changes in outbox order (oldest first), `limit` per page; follow `next_after_id` "
        "until it is null. Filtered by SKU, a page looks through the next "
        f"{outbox.SKU_SCAN_WINDOW:,} changes (of the status, if given) and may hold "
        "fewer than `limit` changes, or none, while more follow."
    ),
)
async def list_changes(
    runtime: RuntimeDep,
    status: ChangeState | None = None,
    sku: SkuQuery = None,
    after_id: Annotated[int, Query(ge=0, le=2**62, description="Last id seen.")] = 0,
    limit: Limit = 100,
) -> ChangePage:
    page, next_after = outbox.list_changes(
        runtime.reader, status=status, sku=sku, after_id=after_id, limit=limit
    )
    return ChangePage.model_validate({"items": page, "next_after_id": next_after})


@router.post(
    "/changes/{operation_id}/retry",
    response_model=ChangeView,
    responses=problem_responses(404, 409, 422),
    summary="Send a change parked in conflict again (attempts and rebases reset)",
)
async def retry_change(operation_id: OperationIdPath, runtime: RuntimeDep) -> ChangeView:
    change = await operator.act(runtime.writer, OperatorAction.RETRY, operation_id, via="api")
    return ChangeView.model_validate(change)


@router.post(
    "/changes/{operation_id}/discard",
    response_model=ChangeView,
    responses=problem_responses(404, 409, 422),
    summary="Give up a change parked in conflict (its delta leaves the local view)",
)
async def discard_change(operation_id: OperationIdPath, runtime: RuntimeDep) -> ChangeView:
    change = await operator.act(runtime.writer, OperatorAction.DISCARD, operation_id, via="api")
    return ChangeView.model_validate(change)
