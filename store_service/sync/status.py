"""The outbox and the sync at a glance, for the API's summary, health and backlog metrics."""

import sqlite3
from typing import Any

from store_service.storage import outbox
from store_service.sync import lease
from store_service.sync.state import Fact, get


def summary(conn: sqlite3.Connection, *, now: float) -> dict[str, Any]:
    """Counts by state, the age of the oldest change still to send, the next due time, the last
    runs, a persistent auth failure and the lease holder, from one read connection."""
    oldest = outbox.oldest_queued_created_at(conn)
    return {
        "counts": outbox.state_counts(conn),
        "oldest_pending_age_seconds": None if oldest is None else max(0.0, now - oldest),
        "next_attempt_at": outbox.next_attempt_at(conn),
        "last_success_at": get(conn, Fact.LAST_SUCCESS_AT),
        "last_run": get(conn, Fact.LAST_RUN),
        "auth_failed": get(conn, Fact.AUTH_FAILED),
        "lease_holder": lease.holder(conn, now=now),
    }
