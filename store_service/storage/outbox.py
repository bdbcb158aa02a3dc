"""All SQL on the outbox (`changes`), the sync lease and `sync_state`.

Every function runs inside the caller's transaction: the worker wraps a few calls in
`transaction(conn)` (BEGIN IMMEDIATE, one batch at a time, so the API's writer waits for
milliseconds, not for a central round trip); the API runs them through its writer thread.

State machine: pending → in_flight → synced | conflict | rejected | discarded, with in_flight
going back to pending on a transient failure or a crash, and conflict going back to pending
(operator retry) or to discarded (operator discard). Only synced/rejected/discarded are final;
nothing is deleted before it is final and `idempotency_retention_seconds` old.
"""

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from store_service.inventory import PENDING_STATES  # noqa: F401 (re-exported: the pending set)
from store_service.storage.db import select_in

SYNC_LEASE = "sync"
FINAL_STATES = ("synced", "rejected", "discarded")
ALL_STATES = ("pending", "in_flight", "synced", "conflict", "rejected", "discarded")

# sync_state keys
LAST_SUCCESS_AT = "last_success_at"
LAST_RUN = "last_run"
AUTH_FAILED = "auth_failed"

# The SQL below spells these state lists out; tests/unit/test_outbox_claims.py keeps them in step.


class ChangeNotFound(LookupError):
    def __init__(self, operation_id: str) -> None:
        super().__init__(f"no change with operation_id {operation_id!r}")
        self.operation_id = operation_id


class ChangeNotInConflict(Exception):
    """Operator actions only apply to a change parked in `conflict`."""

    def __init__(self, operation_id: str, status: str) -> None:
        super().__init__(f"change {operation_id!r} is {status}, not conflict")
        self.operation_id = operation_id
        self.status = status


@dataclass(frozen=True, slots=True)
class ClaimedChange:
    id: int
    operation_id: str
    sku: str
    delta: int
    attempts: int
    rebases: int


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT: takes the write lock up front (waits on busy_timeout)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# --- the lease ---------------------------------------------------------------------------


def acquire_lease(
    conn: sqlite3.Connection, *, holder: str, now: float, ttl: float, name: str = SYNC_LEASE
) -> bool:
    """Take the lease if it is free, expired, or already ours."""
    cursor = conn.execute(
        """
        INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
        WHERE leases.expires_at <= ? OR leases.holder = excluded.holder
        """,
        (name, holder, now + ttl, now),
    )
    return cursor.rowcount == 1


def renew_lease(
    conn: sqlite3.Connection, *, holder: str, now: float, ttl: float, name: str = SYNC_LEASE
) -> bool:
    """Extend our lease; False when it expired and someone else took it (stop working then)."""
    cursor = conn.execute(
        "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?",
        (now + ttl, name, holder),
    )
    return cursor.rowcount == 1


def release_lease(conn: sqlite3.Connection, *, holder: str, name: str = SYNC_LEASE) -> None:
    conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


def lease_holder(conn: sqlite3.Connection, *, now: float, name: str = SYNC_LEASE) -> str | None:
    row = conn.execute(
        "SELECT holder FROM leases WHERE name = ? AND expires_at > ?", (name, now)
    ).fetchone()
    return None if row is None else str(row["holder"])


# --- the sync run's steps ----------------------------------------------------------------


def recover_in_flight(conn: sqlite3.Connection, *, now: float) -> int:
    """Put back changes a crashed run left in flight; call right after acquiring the lease.

    Resending them is safe: central either applied them (→ `duplicate` under the same
    operation_id) or did not (→ applied now).
    """
    cursor = conn.execute(
        "UPDATE changes SET status = 'pending', next_attempt_at = ?, updated_at = ?, "
        "last_error = 'recovered after an interrupted sync run' WHERE status = 'in_flight'",
        (now, now),
    )
    return cursor.rowcount


def idempotency_margin(window: float) -> float:
    """Safety margin before central forgets a key (clock skew, a send in progress)."""
    return min(300.0, 0.05 * window)


def park_expired(conn: sqlite3.Connection, *, now: float, window: float) -> int:
    """Park pending changes first sent longer ago than central keeps idempotency keys.

    Central may have applied such a change (response lost) and forgotten its key; a resend
    could apply it twice. An operator decides (retry after checking central, or discard).
    """
    cutoff = now - window + idempotency_margin(window)
    cursor = conn.execute(
        """
        UPDATE changes SET status = 'conflict', resolution = 'idempotency_window_expired',
            last_error = 'first sent before central''s idempotency window; not resent blindly',
            updated_at = ?
        WHERE status = 'pending' AND first_sent_at IS NOT NULL AND first_sent_at <= ?
        """,
        (now, cutoff),
    )
    return cursor.rowcount


# INDEXED BY: walk pending changes in id order and stop after a batch. Without statistics
# SQLite prefers the (status, next_attempt_at) index and then sorts every due row, which made
# each claim cost O(backlog).
_CLAIM = (
    "UPDATE changes SET status = 'in_flight', first_sent_at = coalesce(first_sent_at, ?), "
    "updated_at = ? WHERE id IN (SELECT id FROM changes INDEXED BY ix_changes_status_id "
    "WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?) "
    "RETURNING id, operation_id, sku, delta, attempts, rebases, first_sent_at"
)


def claim_due(conn: sqlite3.Connection, *, now: float, limit: int) -> list[ClaimedChange]:
    """Mark up to `limit` due pending changes in_flight, oldest first, and return them.

    One statement (`UPDATE … RETURNING`, SQLite ≥ 3.35); RETURNING's row order is not
    defined, so the claim is sorted by id (= oldest first) here.
    """
    rows = conn.execute(_CLAIM, (now, now, now, limit)).fetchall()
    rows.sort(key=lambda row: row[0])
    return [ClaimedChange(*row[:6]) for row in rows]


def claim_due_unexpired(
    conn: sqlite3.Connection, *, now: float, limit: int, window: float
) -> tuple[list[ClaimedChange], int]:
    """`park_expired` restricted to what is being claimed, then `claim_due`: (claimed, parked).

    The sync run's per-batch step. `park_expired` scans every pending change (first_sent_at
    is in no index), which made each batch cost O(backlog); here only the claimed rows are
    checked, in the same transaction, so no change first sent before central's idempotency
    window is ever resent (the guarantee `park_expired` gives), and parked rows end exactly as
    `park_expired` leaves them. The run still calls `park_expired` once when it starts.
    """
    cutoff = now - window + idempotency_margin(window)
    claimed: list[ClaimedChange] = []
    parked = 0
    while len(claimed) < limit:
        rows = conn.execute(_CLAIM, (now, now, now, limit - len(claimed))).fetchall()
        # first_sent_at after the update: the old value when the change was sent before.
        expired = [row[0] for row in rows if row[6] <= cutoff]
        claimed.extend(ClaimedChange(*row[:6]) for row in rows if row[6] > cutoff)
        if not expired:
            break
        conn.executemany(
            "UPDATE changes SET status = 'conflict', resolution = 'idempotency_window_expired', "
            "last_error = 'first sent before central''s idempotency window; not resent blindly',"
            " updated_at = ? WHERE id = ?",
            [(now, change_id) for change_id in expired],
        )
        parked += len(expired)
    claimed.sort(key=lambda change: change.id)
    return claimed, parked


def has_due(conn: sqlite3.Connection, *, now: float) -> bool:
    row = conn.execute(
        "SELECT 1 FROM changes INDEXED BY ix_changes_pending_due "
        "WHERE status = 'pending' AND next_attempt_at <= ? LIMIT 1",
        (now,),
    ).fetchone()
    return row is not None


# --- recording outcomes ------------------------------------------------------------------


def mark_synced(
    conn: sqlite3.Connection,
    change_id: int,
    *,
    sent_version: int | None,
    central_version: int | None,
    resolution: str | None,
    now: float,
) -> None:
    conn.execute(
        "UPDATE changes SET status = 'synced', base_version = ?, central_version = ?, "
        "resolution = ?, last_error = NULL, finalized_at = ?, updated_at = ? WHERE id = ?",
        (sent_version, central_version, resolution, now, now, change_id),
    )


def mark_synced_many(
    conn: sqlite3.Connection,
    rows: Iterable[tuple[int, int | None, int | None, str | None]],
    *,
    now: float,
) -> None:
    """`mark_synced` for many changes in one statement: (id, sent_version, central_version,
    resolution) each."""
    conn.executemany(
        "UPDATE changes SET status = 'synced', base_version = ?, central_version = ?, "
        "resolution = ?, last_error = NULL, finalized_at = ?, updated_at = ? WHERE id = ?",
        [
            (sent_version, central_version, resolution, now, now, change_id)
            for change_id, sent_version, central_version, resolution in rows
        ],
    )


def mark_rejected(
    conn: sqlite3.Connection,
    change_id: int,
    *,
    sent_version: int | None,
    reason: str,
    now: float,
) -> None:
    conn.execute(
        "UPDATE changes SET status = 'rejected', base_version = ?, resolution = ?, "
        "last_error = ?, finalized_at = ?, updated_at = ? WHERE id = ?",
        (sent_version, reason, f"rejected by central: {reason}", now, now, change_id),
    )


def mark_conflict(
    conn: sqlite3.Connection,
    change_id: int,
    *,
    sent_version: int | None,
    central_version: int | None,
    resolution: str,
    error: str,
    now: float,
) -> None:
    """Park for an operator: still counts as pending in the local view."""
    conn.execute(
        "UPDATE changes SET status = 'conflict', base_version = ?, central_version = ?, "
        "resolution = ?, last_error = ?, updated_at = ? WHERE id = ?",
        (sent_version, central_version, resolution, error, now, change_id),
    )


def mark_discarded(
    conn: sqlite3.Connection,
    change_id: int,
    *,
    central_version: int | None,
    resolution: str,
    now: float,
) -> None:
    conn.execute(
        "UPDATE changes SET status = 'discarded', central_version = coalesce(?, central_version), "
        "resolution = ?, finalized_at = ?, updated_at = ? WHERE id = ?",
        (central_version, resolution, now, now, change_id),
    )


def mark_rebased(
    conn: sqlite3.Connection,
    change_id: int,
    *,
    central_version: int | None,
    counted: bool,
    now: float,
) -> None:
    """Back to pending, due now, on top of central's current version."""
    conn.execute(
        "UPDATE changes SET status = 'pending', base_version = ?, central_version = ?, "
        "rebases = rebases + ?, next_attempt_at = ?, "
        "last_error = 'version conflict at central; rebased', updated_at = ? WHERE id = ?",
        (central_version, central_version, 1 if counted else 0, now, now, change_id),
    )


def put_back(
    conn: sqlite3.Connection,
    retries: Iterable[tuple[int, float]],
    *,
    error: str,
    count_attempt: bool,
    now: float,
) -> None:
    """Return in-flight changes to pending with their next attempt times."""
    conn.executemany(
        "UPDATE changes SET status = 'pending', attempts = attempts + ?, next_attempt_at = ?, "
        "last_error = ?, updated_at = ? WHERE id = ? AND status = 'in_flight'",
        [
            (1 if count_attempt else 0, next_at, error, now, change_id)
            for change_id, next_at in retries
        ],
    )


# --- operator actions --------------------------------------------------------------------


def _conflicted(conn: sqlite3.Connection, operation_id: str) -> sqlite3.Row:
    row = conn.execute(
        "SELECT id, sku, delta, status FROM changes WHERE operation_id = ?", (operation_id,)
    ).fetchone()
    if row is None:
        raise ChangeNotFound(operation_id)
    if row["status"] != "conflict":
        raise ChangeNotInConflict(operation_id, row["status"])
    return row


def retry_change(conn: sqlite3.Connection, operation_id: str, *, now: float) -> str:
    """conflict → pending, due now, with attempts and rebases reset; returns the SKU.

    first_sent_at is cleared too: a change parked in conflict was not applied by central
    (a conflict/refusal is never recorded under the key), except one parked because the
    idempotency window expired, where retrying is the operator's statement that they checked
    central's journal and the change is not there.
    """
    row = _conflicted(conn, operation_id)
    conn.execute(
        "UPDATE changes SET status = 'pending', attempts = 0, rebases = 0, next_attempt_at = ?, "
        "first_sent_at = NULL, resolution = 'operator_retry', last_error = NULL, updated_at = ? "
        "WHERE id = ?",
        (now, now, row["id"]),
    )
    return str(row["sku"])


def discard_change(conn: sqlite3.Connection, operation_id: str, *, now: float) -> tuple[str, int]:
    """conflict → discarded (final); returns the SKU and the delta that left its pending set,
    for the caller to recompute the SKU's local view."""
    row = _conflicted(conn, operation_id)
    conn.execute(
        "UPDATE changes SET status = 'discarded', resolution = 'operator_discard', "
        "finalized_at = ?, updated_at = ? WHERE id = ?",
        (now, now, row["id"]),
    )
    return str(row["sku"]), int(row["delta"])


def purge_final(conn: sqlite3.Connection, *, now: float, retention: float) -> int:
    """Delete final changes older than the replay retention (their operation_ids are freed)."""
    cursor = conn.execute(
        "DELETE FROM changes WHERE status IN ('synced', 'rejected', 'discarded') "
        "AND finalized_at < ?",  # = FINAL_STATES
        (now - retention,),
    )
    return cursor.rowcount


# --- reads -------------------------------------------------------------------------------


def pending_totals(conn: sqlite3.Connection, sku: str) -> tuple[int, int]:
    """Sum and count of the SKU's deltas central has not applied (the local view's pending),
    counted from the changes: a scan of every pending change (no index by SKU), for checks and
    repairs; the hot paths keep these totals on the SKU's inventory_items row."""
    row = conn.execute(
        "SELECT coalesce(sum(delta), 0) AS total, count(*) AS n FROM changes "
        "WHERE sku = ? AND status IN ('pending', 'in_flight', 'conflict')",  # = PENDING_STATES
        (sku,),
    ).fetchone()
    return int(row["total"]), int(row["n"])


def pending_totals_many(
    conn: sqlite3.Connection, skus: Iterable[str]
) -> dict[str, tuple[int, int]]:
    """`pending_totals` for many SKUs in one `GROUP BY` (per 500 SKUs); (0, 0) when none."""
    wanted = sorted(set(skus))
    totals = dict.fromkeys(wanted, (0, 0))
    rows = select_in(
        conn,
        "SELECT sku, sum(delta), count(*) FROM changes "
        "WHERE sku IN ({marks}) AND status IN ('pending', 'in_flight', 'conflict') "
        "GROUP BY sku",  # = PENDING_STATES
        wanted,
    )
    for sku, total, n in rows:
        totals[sku] = (int(total), int(n))
    return totals


def change_view(conn: sqlite3.Connection, operation_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT operation_id, sku, delta, status, attempts, next_attempt_at, last_error, "
        "central_version, base_version, rebases, resolution, first_sent_at, finalized_at, "
        "created_at, updated_at FROM changes WHERE operation_id = ?",
        (operation_id,),
    ).fetchone()
    return None if row is None else dict(row)


def state_counts(conn: sqlite3.Connection) -> dict[str, int]:
    counts = dict.fromkeys(ALL_STATES, 0)
    for row in conn.execute("SELECT status, count(*) AS n FROM changes GROUP BY status"):
        counts[row["status"]] = int(row["n"])
    return counts


def pending_count(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM changes WHERE status IN ('pending', 'in_flight')"
    ).fetchone()
    return int(row["n"])


def oldest_pending_created_at(conn: sqlite3.Connection) -> float | None:
    row = conn.execute(
        "SELECT min(created_at) AS oldest FROM changes WHERE status IN ('pending', 'in_flight')"
    ).fetchone()
    return None if row["oldest"] is None else float(row["oldest"])


def next_attempt_at(conn: sqlite3.Connection) -> float | None:
    row = conn.execute(
        "SELECT min(next_attempt_at) AS due FROM changes INDEXED BY ix_changes_pending_due "
        "WHERE status = 'pending'"
    ).fetchone()
    return None if row["due"] is None else float(row["due"])


def get_state(conn: sqlite3.Connection, key: str) -> Any:
    row = conn.execute("SELECT value FROM sync_state WHERE key = ?", (key,)).fetchone()
    return None if row is None else orjson.loads(row["value"])


def set_state(conn: sqlite3.Connection, key: str, value: Any, *, now: float) -> None:
    conn.execute(
        "INSERT INTO sync_state (key, value, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (key, orjson.dumps(value).decode(), now),
    )


def delete_state(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM sync_state WHERE key = ?", (key,))


def summary(conn: sqlite3.Connection, *, now: float) -> dict[str, Any]:
    """What health, metrics and operators want to know about the outbox at a glance."""
    oldest = oldest_pending_created_at(conn)
    return {
        "counts": state_counts(conn),
        "oldest_pending_age_seconds": None if oldest is None else max(0.0, now - oldest),
        "next_attempt_at": next_attempt_at(conn),
        "last_success_at": get_state(conn, LAST_SUCCESS_AT),
        "last_run": get_state(conn, LAST_RUN),
        "auth_failed": get_state(conn, AUTH_FAILED),
        "lease_holder": lease_holder(conn, now=now),
    }
