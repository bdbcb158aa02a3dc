"""Sync routes: ask the worker to sync now, refresh a SKU from central now, the sync summary."""

import asyncio
import sqlite3
import time
from typing import Any

import structlog
from fastapi import APIRouter

from store_service import local_view
from store_service.api.deps import RuntimeDep
from store_service.api.params import SkuPath
from store_service.api.problems import problem_responses
from store_service.api.schemas import InventoryItem, SyncSummary, TriggerResponse
from store_service.storage import items, outbox
from store_service.sync import refresh
from store_service.sync.status import summary

router = APIRouter(prefix="/v1/local", tags=["sync"])
log = structlog.get_logger(__name__)


@router.post(
    "/sync/trigger",
    status_code=202,
    response_model=TriggerResponse,
    responses=problem_responses(503),
    summary="Ask the worker to sync now",
)
async def trigger_sync(runtime: RuntimeDep) -> TriggerResponse:
    # The broker not taking the task in time is a 503 problem with Retry-After (SyncNotQueued).
    task_id = await runtime.publisher.publish()
    log.info("sync_triggered", task_id=task_id)
    return TriggerResponse(task_id=task_id, pending_count=outbox.queued_count(runtime.reader))


@router.post(
    "/inventory/{sku}/refresh",
    response_model=InventoryItem,
    tags=["inventory"],
    responses=problem_responses(422, 503),
    summary="Fetch central's stock for a SKU now and recompute the local view",
)
async def refresh_item(sku: SkuPath, runtime: RuntimeDep) -> InventoryItem:
    # Central unreachable or refusing the store's credentials: a 503 problem, nothing changed.
    quantity, version = await asyncio.to_thread(refresh.fetch, runtime.central, sku)
    item = await runtime.writer.run(_fold, sku, quantity, version, time.time())
    return InventoryItem.model_validate(item)


def _fold(
    conn: sqlite3.Connection, sku: str, quantity: int, version: int, now: float
) -> dict[str, Any] | None:
    """Central's news into the SKU's local view, in the writer's transaction (BEGIN IMMEDIATE):
    left out while central may hold a change of the SKU the store counts as pending
    (`local_view.refresh`)."""
    local_view.refresh(conn, sku, central_quantity=quantity, central_version=version, now=now)
    return items.get_item(conn, sku)


@router.get("/sync/summary", response_model=SyncSummary, summary="The outbox at a glance")
async def sync_summary(runtime: RuntimeDep) -> SyncSummary:
    return SyncSummary.model_validate(summary(runtime.reader, now=time.time()))
