"""Small facts about sync kept in `sync_state`: the last successful run, the last run's report,
a persistent auth failure, the worker's heartbeat. Values are JSON.

Functions run inside the caller's transaction (or, for reads, on any connection).
"""

import sqlite3
from enum import StrEnum
from typing import Any

import orjson


class Fact(StrEnum):
    LAST_SUCCESS_AT = "last_success_at"  # Unix time the last successful run ended
    LAST_RUN = "last_run"  # the last run's report (SyncReport.as_dict)
    AUTH_FAILED = "auth_failed"  # {"at", "detail"} while central refuses the credentials
    WORKER_HEARTBEAT = "worker_heartbeat"  # {"at", "hostname", "pid"}
    STORAGE_PROBE = "storage_probe"  # Unix time of health's last write probe (storage faults)


def get(conn: sqlite3.Connection, fact: Fact) -> Any:
    row = conn.execute("SELECT value FROM sync_state WHERE key = ?", (fact.value,)).fetchone()
    return None if row is None else orjson.loads(row[0])


def put(conn: sqlite3.Connection, fact: Fact, value: Any, *, now: float) -> None:
    conn.execute(
        "INSERT INTO sync_state (key, value, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (fact.value, orjson.dumps(value).decode(), now),
    )


def forget(conn: sqlite3.Connection, fact: Fact) -> None:
    conn.execute("DELETE FROM sync_state WHERE key = ?", (fact.value,))
