"""Sync routes: trigger a run, refresh a SKU from central, sync summary, operator actions.

The lifespan calls `start_sync_wiring(runtime)` / `stop_sync_wiring(runtime)`: they build and
close the Celery app (used only to publish) and the central client. The inventory route calls
`notify_change(runtime)` after a change is acknowledged: with `STORE_SYNC_SOON_SECONDS` set,
that schedules one trigger that many seconds later, at most once per window. The debounce timer
lives in this process on purpose — if the API dies before it fires, the change is still in
SQLite and the next beat picks it up, so nothing is worth putting in the broker for it.
"""

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import structlog
from celery import Celery
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from store_service import change_queries, inventory, local_view
from store_service.api.deps import RuntimeDep, StoreRuntime
from store_service.api.params import OperationIdPath, SkuPath
from store_service.api.problems import ProblemError, problem_responses
from store_service.api.schemas import ChangeView, InventoryItem
from store_service.storage import outbox
from store_service.sync import refresh
from store_service.sync.celery_app import BROKER_CONNECT_TIMEOUT_SECONDS, SYNC_TASK, create_celery
from store_service.sync.central import CentralAuthFailed, CentralClient, CentralUnavailable

router = APIRouter(prefix="/v1/local", tags=["sync"])
log = structlog.get_logger(__name__)

CELERY = "sync.celery"
CENTRAL = "sync.central"
SOON = "sync.soon"
# A publish waits for the TCP connect and the publisher confirm; past this, answer 503.
# A publish on a connection the broker stopped answering can block on the publisher confirm
# until the connection is noticed dead: answer 503 past this deadline rather than hold the
# caller (the message may still land later; an extra sync run is harmless).
PUBLISH_DEADLINE_SECONDS = BROKER_CONNECT_TIMEOUT_SECONDS + 2.0
RETRY_AFTER_SECONDS = 5


class TriggerResponse(BaseModel):
    task_id: str = Field(description="Celery task id of the queued sync run.")
    pending_count: int = Field(description="Changes pending or in flight right now.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"task_id": "0b6a4f0e-6a57-4b8e-a8e3-4cc7c7e3f6d1", "pending_count": 12}]
        }
    )


class AuthFailureInfo(BaseModel):
    at: float = Field(description="Unix time central last refused the store's credentials.")
    detail: str


class SyncSummary(BaseModel):
    counts: dict[str, int] = Field(description="Changes per state.")
    oldest_pending_age_seconds: float | None = Field(
        description="Age of the oldest change pending or in flight; null when none."
    )
    next_attempt_at: float | None = Field(description="Unix time of the next due change.")
    last_success_at: float | None = Field(description="Unix time the last good run ended.")
    last_run: dict[str, Any] | None = Field(description="The last run's report.")
    auth_failed: AuthFailureInfo | None = Field(
        description="Set while central refuses the store's credentials; cleared by a good run."
    )
    lease_holder: str | None = Field(description="The run holding the sync lease, if any.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "counts": {
                        "pending": 3,
                        "in_flight": 0,
                        "synced": 120,
                        "conflict": 1,
                        "rejected": 0,
                        "discarded": 2,
                    },
                    "oldest_pending_age_seconds": 42.5,
                    "next_attempt_at": 1795000160.0,
                    "last_success_at": 1795000100.0,
                    "last_run": {"stopped_reason": "drained", "batches": 1, "sent": 5},
                    "auth_failed": None,
                    "lease_holder": None,
                }
            ]
        }
    )


# --- wiring ------------------------------------------------------------------------------


class SyncSoon:
    """Debounced "sync soon after a change": at most one scheduled trigger per window."""

    def __init__(self, runtime: StoreRuntime, delay: float) -> None:
        self._runtime = runtime
        self._delay = delay
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._fire_later())

    async def _fire_later(self) -> None:
        await asyncio.sleep(self._delay)
        try:
            await publish_sync(self._runtime)
        except Exception as exc:
            # The change is safe in SQLite; the next beat or trigger will carry it.
            log.warning("sync_soon_publish_failed", error=repr(exc))

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def start_sync_wiring(runtime: StoreRuntime) -> None:
    """Build the Celery publisher and the central client for this API process."""
    settings = runtime.settings
    runtime.extras[CELERY] = create_celery(settings)
    runtime.extras[CENTRAL] = CentralClient.from_settings(settings)
    if settings.sync_soon_seconds is not None:
        runtime.extras[SOON] = SyncSoon(runtime, settings.sync_soon_seconds)


async def stop_sync_wiring(runtime: StoreRuntime) -> None:
    soon: SyncSoon | None = runtime.extras.pop(SOON, None)
    if soon is not None:
        soon.cancel()
    central: CentralClient | None = runtime.extras.pop(CENTRAL, None)
    if central is not None:
        central.close()
    celery: Celery | None = runtime.extras.pop(CELERY, None)
    if celery is not None:
        await asyncio.to_thread(celery.close)


def notify_change(runtime: StoreRuntime) -> None:
    """Call after acknowledging a change: schedules a debounced sync when so configured."""
    soon: SyncSoon | None = runtime.extras.get(SOON)
    if soon is not None:
        soon.notify()


def _celery(runtime: StoreRuntime) -> Celery:
    celery: Celery | None = runtime.extras.get(CELERY)
    if celery is None:  # wiring not started (a test app): build on first use
        celery = runtime.extras[CELERY] = create_celery(runtime.settings)
    return celery


def _central(runtime: StoreRuntime) -> CentralClient:
    central: CentralClient | None = runtime.extras.get(CENTRAL)
    if central is None:
        central = runtime.extras[CENTRAL] = CentralClient.from_settings(runtime.settings)
    return central


def _send(celery: Celery) -> str:
    # retry=False: with the broker down, fail after the connect timeout instead of hanging;
    # the caller answers 503 and the changes wait in SQLite.
    result = celery.send_task(SYNC_TASK, retry=False)
    return str(result.id)


async def publish_sync(runtime: StoreRuntime) -> str:
    """Enqueue one sync run; raises when the broker does not take the message in time."""
    return await asyncio.wait_for(
        asyncio.to_thread(_send, _celery(runtime)), timeout=PUBLISH_DEADLINE_SECONDS
    )


# --- routes ------------------------------------------------------------------------------


@router.post(
    "/sync/trigger",
    status_code=202,
    response_model=TriggerResponse,
    responses=problem_responses(503),
    summary="Ask the worker to sync now",
)
async def trigger_sync(runtime: RuntimeDep) -> TriggerResponse:
    try:
        task_id = await publish_sync(runtime)
    except Exception as exc:
        log.warning("sync_trigger_failed", error=repr(exc))
        raise ProblemError(
            503,
            "broker-unavailable",
            "Broker unavailable",
            "The sync could not be queued; pending changes stay queued locally. Retry later.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None
    log.info("sync_triggered", task_id=task_id)
    return TriggerResponse(task_id=task_id, pending_count=outbox.pending_count(runtime.reader))


def _reconcile_view(
    conn: sqlite3.Connection, sku: str, quantity: int, version: int, now: float
) -> dict[str, Any] | None:
    local_view.reconcile(conn, sku, central_quantity=quantity, central_version=version, now=now)
    return inventory.get_item(conn, sku)


@router.post(
    "/inventory/{sku}/refresh",
    response_model=InventoryItem,
    responses=problem_responses(422, 503),
    summary="Fetch central's stock for a SKU now and recompute the local view",
)
async def refresh_item(sku: SkuPath, runtime: RuntimeDep) -> InventoryItem:
    try:
        quantity, version = await asyncio.to_thread(refresh.fetch, _central(runtime), sku)
    except CentralUnavailable as exc:
        raise ProblemError(
            503,
            "central-unavailable",
            "Central unavailable",
            f"Central could not be reached ({exc.failure.kind}); nothing was changed.",
            headers={"Retry-After": str(int(exc.failure.retry_after or RETRY_AFTER_SECONDS))},
        ) from None
    except CentralAuthFailed:
        raise ProblemError(
            503,
            "central-auth-failed",
            "Central refused the store's credentials",
            "Check STORE_CENTRAL_SERVICE_NAME / STORE_CENTRAL_SERVICE_SECRET; nothing changed.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None
    item = await runtime.writer.run(_reconcile_view, sku, quantity, version, time.time())
    return InventoryItem.model_validate(item)


@router.get("/sync/summary", response_model=SyncSummary, summary="The outbox at a glance")
async def sync_summary(runtime: RuntimeDep) -> SyncSummary:
    return SyncSummary.model_validate(outbox.summary(runtime.reader, now=time.time()))


def _retry(conn: sqlite3.Connection, operation_id: str, now: float) -> dict[str, Any] | None:
    outbox.retry_change(conn, operation_id, now=now)
    return change_queries.get_change(conn, operation_id)


def _discard(conn: sqlite3.Connection, operation_id: str, now: float) -> dict[str, Any] | None:
    sku, delta = outbox.discard_change(conn, operation_id, now=now)
    # The delta leaves pending: the local view drops it (quantity = central + pending).
    local_view.reconcile(
        conn,
        sku,
        central_quantity=None,
        central_version=None,
        now=now,
        synced=False,
        finalized=(delta, 1),
    )
    return change_queries.get_change(conn, operation_id)


async def _operator_action(
    runtime: StoreRuntime,
    fn: Callable[[sqlite3.Connection, str, float], dict[str, Any] | None],
    operation_id: str,
) -> ChangeView:
    try:
        change = await runtime.writer.run(fn, operation_id, time.time())
    except outbox.ChangeNotFound:
        raise ProblemError(
            404, "operation-not-found", "Operation not found", f"No change {operation_id}."
        ) from None
    except outbox.ChangeNotInConflict as exc:
        raise ProblemError(
            409,
            "change-not-in-conflict",
            "Change is not parked in conflict",
            f"Only a change in `conflict` can be retried or discarded; this one is {exc.status}.",
            current_status=exc.status,
        ) from None
    log.info("operator_action", action=fn.__name__.strip("_"), operation_id=operation_id)
    return ChangeView.model_validate(change)


@router.post(
    "/changes/{operation_id}/retry",
    response_model=ChangeView,
    responses=problem_responses(404, 409, 422),
    summary="Send a change parked in conflict again (attempts and rebases reset)",
)
async def retry_change(operation_id: OperationIdPath, runtime: RuntimeDep) -> ChangeView:
    return await _operator_action(runtime, _retry, operation_id)


@router.post(
    "/changes/{operation_id}/discard",
    response_model=ChangeView,
    responses=problem_responses(404, 409, 422),
    summary="Give up a change parked in conflict (its delta leaves the local view)",
)
async def discard_change(operation_id: OperationIdPath, runtime: RuntimeDep) -> ChangeView:
    return await _operator_action(runtime, _discard, operation_id)
