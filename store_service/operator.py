"""The operator's actions on a change parked in `conflict`: retry it, or discard it.

One copy for every caller: the JSON API (`api/routes/changes.py`) and the console
(`api/console/`) both call `act`, which runs the action in the API's writer (one group-committed
transaction) and answers the change as it stands after it. A change that does not exist or is
not in `conflict` is refused (`ChangeNotFound`, `ChangeNotInConflict`) and nothing changes.
"""

import sqlite3
import time
from collections.abc import Callable
from typing import Any

import structlog

from store_service import local_view
from store_service.domain import ChangeNotFound, OperatorAction
from store_service.storage import outbox
from store_service.storage.writer import Writer

log = structlog.get_logger(__name__)


def retry(conn: sqlite3.Connection, operation_id: str, now: float) -> dict[str, Any] | None:
    """conflict → pending, due now (the next sync run sends it again)."""
    outbox.retry_change(conn, operation_id, now=now)
    return outbox.get_change(conn, operation_id)


def discard(conn: sqlite3.Connection, operation_id: str, now: float) -> dict[str, Any] | None:
    """conflict → discarded; the SKU's local view drops the delta in the same transaction."""
    sku, delta = outbox.discard_change(conn, operation_id, now=now)
    # The delta leaves the unapplied set: the local view drops it (quantity = central + these).
    local_view.reconcile(
        conn,
        sku,
        central_quantity=None,
        central_version=None,
        now=now,
        synced=False,
        finalized=(delta, 1),
    )
    return outbox.get_change(conn, operation_id)


JOBS: dict[OperatorAction, Callable[[sqlite3.Connection, str, float], dict[str, Any] | None]] = {
    OperatorAction.RETRY: retry,
    OperatorAction.DISCARD: discard,
}


async def act(
    writer: Writer, action: OperatorAction, operation_id: str, *, via: str
) -> dict[str, Any]:
    """Run `action` on the change in the writer's next transaction; the change afterwards.
    `via` names the caller in the log line (`api`, `console`)."""
    change = await writer.run(JOBS[action], operation_id, time.time())
    if change is None:  # the action found it a moment ago, in the same transaction
        raise ChangeNotFound(operation_id)
    log.info("operator_action", action=action.value, operation_id=operation_id, via=via)
    return change
