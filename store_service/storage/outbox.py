"""All SQL on the outbox (`changes`): the update path's insert and lookups, the sync run's
claims and outcomes, the operator's actions, the purge, and the reads.

Every function runs inside the caller's transaction: the worker wraps a few calls in
`db.transaction(conn)` (one batch at a time, so the API's writer waits for milliseconds, not
for a central round trip); the API runs them through its writer. The states and their moves
are `domain.ChangeState`; the lists of states in the SQL below are rendered from it.
"""

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from store_service.domain import (
    FINAL_STATES,
    QUEUED_STATES,
    UNAPPLIED_STATES,
    ChangeNotFound,
    ChangeNotInConflict,
    ChangeState,
    ItemState,
    Resolution,
)
from store_service.storage.db import select_in, sql_list

PENDING = ChangeState.PENDING.value
_UNAPPLIED = sql_list(UNAPPLIED_STATES)
_QUEUED = sql_list(QUEUED_STATES)
_FINAL = sql_list(FINAL_STATES)


@dataclass(frozen=True, slots=True)
class StoredChange:
    """What the store holds for an operation_id already applied: its payload and first answer."""

    sku: str
    delta: int
    expected_version: int | None
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class ClaimedChange:
    id: int
    operation_id: str
    sku: str
    delta: int
    attempts: int
    rebases: int


NewChange = tuple[str, str, int, int | None, float, int | None, float, float, str | None, str]
"""A change to insert: (operation_id, sku, delta, expected_version, next_attempt_at,
base_version, created_at, updated_at, request_id, response_body)."""


# --- the update path -------------------------------------------------------------------------

_INSERT = (
    "INSERT INTO changes (operation_id, sku, delta, expected_version, status, attempts, "
    "next_attempt_at, base_version, created_at, updated_at, request_id, response_status, "
    f"response_body) VALUES (?, ?, ?, ?, '{PENDING}', 0, ?, ?, ?, ?, ?, 200, ?)"
)

# One statement for both lookups of a single update (the replay check and the item): on the
# hot path each statement's fixed cost in the sqlite3 module is larger than the index lookups.
_LOOKUP = """
    SELECT c.sku, c.delta, c.expected_version, c.response_status, c.response_body,
        i.quantity, i.version, i.pending_delta, i.pending_count, i.central_quantity,
        i.central_version
    FROM (SELECT ? AS operation_id, ? AS sku) AS k
    LEFT JOIN changes AS c ON c.operation_id = k.operation_id
    LEFT JOIN inventory_items AS i ON i.sku = k.sku
"""


def insert_change(conn: sqlite3.Connection, change: NewChange) -> None:
    conn.execute(_INSERT, change)


def insert_changes(conn: sqlite3.Connection, changes: list[NewChange]) -> None:
    conn.executemany(_INSERT, changes)


def lookup(
    conn: sqlite3.Connection, operation_id: str, sku: str
) -> tuple[StoredChange | None, ItemState | None]:
    """What the store holds for this operation_id, and the SKU's local view, in one query."""
    row = conn.execute(_LOOKUP, (operation_id, sku)).fetchone()
    stored = (
        None if row[0] is None else StoredChange(row[0], row[1], row[2], row[3], row[4].encode())
    )
    item = None if row[5] is None else ItemState(sku, *row[5:])
    return stored, item


def stored_changes(conn: sqlite3.Connection, operation_ids: list[str]) -> dict[str, StoredChange]:
    """`lookup`'s first half for many operation_ids (one query per 500)."""
    rows = select_in(
        conn,
        "SELECT operation_id, sku, delta, expected_version, response_status, response_body "
        "FROM changes WHERE operation_id IN ({marks})",
        operation_ids,
    )
    return {row[0]: StoredChange(row[1], row[2], row[3], row[4], row[5].encode()) for row in rows}


# --- the sync run's steps --------------------------------------------------------------------


def recover_in_flight(conn: sqlite3.Connection, *, now: float) -> int:
    """Put back changes a crashed run left in flight; call right after acquiring the lease.

    Resending them is safe: central either applied them (→ `duplicate` under the same
    operation_id) or did not (→ applied now).
    """
    cursor = conn.execute(
        f"UPDATE changes SET status = '{PENDING}', next_attempt_at = ?, updated_at = ?, "
        "last_error = 'recovered after an interrupted sync run' "
        f"WHERE status = '{ChangeState.IN_FLIGHT}'",
        (now, now),
    )
    return cursor.rowcount


def has_unsettled(conn: sqlite3.Connection, sku: str) -> bool:
    """Whether central may hold one of the SKU's changes that the store still counts as
    unapplied: one in flight (claimed, its result not recorded), or one pending again after a
    send whose answer was lost (`first_sent_at` set: central may have applied it; its resend
    will tell, as a duplicate).

    Reads the in-flight slice of ix_changes_status_id (at most a batch of rows) and
    ix_changes_pending_first_sent (the pending changes sent before: few), never the backlog."""
    return any(conn.execute(sql, (sku,)).fetchone() is not None for sql in _UNSETTLED)


_UNSETTLED = (
    f"SELECT 1 FROM changes WHERE status = '{ChangeState.IN_FLIGHT}' AND sku = ? LIMIT 1",
    # INDEXED BY: without statistics the planner would take the status index and walk every
    # pending change of the backlog.
    "SELECT 1 FROM changes INDEXED BY ix_changes_pending_first_sent "
    f"WHERE status = '{ChangeState.PENDING}' AND first_sent_at IS NOT NULL AND sku = ? LIMIT 1",
)


def idempotency_margin(window: float) -> float:
    """Safety margin before central forgets a key (clock skew, a send in progress)."""
    return min(300.0, 0.05 * window)


# How a change first sent before central's idempotency window is parked (both parking paths).
_PARK_EXPIRED = (
    f"UPDATE changes SET status = '{ChangeState.CONFLICT}', "
    f"resolution = '{Resolution.IDEMPOTENCY_WINDOW_EXPIRED}', "
    "last_error = 'first sent before central''s idempotency window; not resent blindly', "
    "updated_at = ?"
)


def park_expired(conn: sqlite3.Connection, *, now: float, window: float) -> int:
    """Park pending changes first sent longer ago than central keeps idempotency keys.

    Central may have applied such a change (response lost) and forgotten its key; a resend
    could apply it twice. An operator decides (retry after checking central, or discard).
    """
    cutoff = now - window + idempotency_margin(window)
    # The WHERE repeats the partial index's own condition, so SQLite may use it; INDEXED BY
    # because without statistics it would rather walk every pending change on the status index.
    cursor = conn.execute(
        f"{_PARK_EXPIRED} WHERE id IN (SELECT id FROM changes "
        f"INDEXED BY ix_changes_pending_first_sent WHERE status = '{PENDING}' "
        "AND first_sent_at IS NOT NULL AND first_sent_at <= ?)",
        (now, cutoff),
    )
    return cursor.rowcount


# INDEXED BY: walk pending changes in id order and stop after a batch. Without statistics
# SQLite prefers the (status, next_attempt_at) index and then sorts every due row, which made
# each claim cost O(backlog).
_CLAIM = (
    f"UPDATE changes SET status = '{ChangeState.IN_FLIGHT}', "
    "first_sent_at = coalesce(first_sent_at, ?), updated_at = ? WHERE id IN ("
    "SELECT id FROM changes INDEXED BY ix_changes_status_id "
    f"WHERE status = '{PENDING}' AND next_attempt_at <= ? ORDER BY id LIMIT ?) "
    "RETURNING id, operation_id, sku, delta, attempts, rebases, first_sent_at"
)


def claim_due(
    conn: sqlite3.Connection, *, now: float, limit: int, window: float
) -> tuple[list[ClaimedChange], int]:
    """Mark up to `limit` due pending changes in_flight, oldest first: (claimed, parked).

    A claimed change first sent before central's idempotency window is parked instead, in the
    same transaction, exactly as `park_expired` leaves it, so none is ever resent blindly.
    Only the claimed rows are checked: `park_expired` scans every pending change (first_sent_at
    is in no index), which made each batch cost O(backlog); the run calls it once when it
    starts. One statement per round (`UPDATE … RETURNING`, SQLite ≥ 3.35); RETURNING's row order
    is not defined, so the claim is sorted by id (= oldest first) here.
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
            f"{_PARK_EXPIRED} WHERE id = ?", [(now, change_id) for change_id in expired]
        )
        parked += len(expired)
    claimed.sort(key=lambda change: change.id)
    return claimed, parked


# --- recording outcomes ----------------------------------------------------------------------

SyncedRow = tuple[int, int | None, int | None, Resolution | None]
"""(id, version sent, central's version, resolution) of a change central applied."""


def mark_synced(conn: sqlite3.Connection, rows: Iterable[SyncedRow], *, now: float) -> None:
    """Record changes central applied (or had applied: `duplicate`), in one statement."""
    conn.executemany(
        f"UPDATE changes SET status = '{ChangeState.SYNCED}', base_version = ?, "
        "central_version = ?, resolution = ?, last_error = NULL, finalized_at = ?, "
        "updated_at = ? WHERE id = ?",
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
    """Final: central refused the change for good; its reason is kept as the resolution."""
    conn.execute(
        f"UPDATE changes SET status = '{ChangeState.REJECTED}', base_version = ?, "
        "resolution = ?, last_error = ?, finalized_at = ?, updated_at = ? WHERE id = ?",
        (sent_version, reason, f"rejected by central: {reason}", now, now, change_id),
    )


def mark_conflict(
    conn: sqlite3.Connection,
    change_id: int,
    *,
    sent_version: int | None,
    central_version: int | None,
    resolution: Resolution,
    error: str,
    now: float,
) -> None:
    """Park for an operator: still counts in the local view (central has not applied it)."""
    conn.execute(
        f"UPDATE changes SET status = '{ChangeState.CONFLICT}', base_version = ?, "
        "central_version = ?, resolution = ?, last_error = ?, updated_at = ? WHERE id = ?",
        (sent_version, central_version, resolution, error, now, change_id),
    )


def mark_discarded(
    conn: sqlite3.Connection,
    change_id: int,
    *,
    central_version: int | None,
    resolution: Resolution,
    now: float,
) -> None:
    conn.execute(
        f"UPDATE changes SET status = '{ChangeState.DISCARDED}', "
        "central_version = coalesce(?, central_version), resolution = ?, finalized_at = ?, "
        "updated_at = ? WHERE id = ?",
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
        f"UPDATE changes SET status = '{PENDING}', base_version = ?, central_version = ?, "
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
        f"UPDATE changes SET status = '{PENDING}', attempts = attempts + ?, "
        "next_attempt_at = ?, last_error = ?, updated_at = ? "
        f"WHERE id = ? AND status = '{ChangeState.IN_FLIGHT}'",
        [
            (1 if count_attempt else 0, next_at, error, now, change_id)
            for change_id, next_at in retries
        ],
    )


# --- operator actions ------------------------------------------------------------------------


def _conflicted(conn: sqlite3.Connection, operation_id: str) -> sqlite3.Row:
    row = conn.execute(
        "SELECT id, sku, delta, status FROM changes WHERE operation_id = ?", (operation_id,)
    ).fetchone()
    if row is None:
        raise ChangeNotFound(operation_id)
    if row["status"] != ChangeState.CONFLICT:
        raise ChangeNotInConflict(operation_id, ChangeState(row["status"]))
    return row  # type: ignore[no-any-return]  # sqlite3 types fetchone() as Any


def retry_change(conn: sqlite3.Connection, operation_id: str, *, now: float) -> str:
    """conflict → pending, due now, with attempts and rebases reset; returns the SKU.

    first_sent_at is cleared too: a change parked in conflict was not applied by central
    (a conflict/refusal is never recorded under the key), except one parked because the
    idempotency window expired, where retrying is the operator's statement that they checked
    central's journal and the change is not there.
    """
    row = _conflicted(conn, operation_id)
    conn.execute(
        f"UPDATE changes SET status = '{PENDING}', attempts = 0, rebases = 0, "
        "next_attempt_at = ?, first_sent_at = NULL, resolution = ?, last_error = NULL, "
        "updated_at = ? WHERE id = ?",
        (now, Resolution.OPERATOR_RETRY, now, row["id"]),
    )
    return str(row["sku"])


def discard_change(conn: sqlite3.Connection, operation_id: str, *, now: float) -> tuple[str, int]:
    """conflict → discarded (final); returns the SKU and the delta that left its unapplied set,
    for the caller to recompute the SKU's local view."""
    row = _conflicted(conn, operation_id)
    mark_discarded(
        conn, row["id"], central_version=None, resolution=Resolution.OPERATOR_DISCARD, now=now
    )
    return str(row["sku"]), int(row["delta"])


# Only final changes have finalized_at (ix_changes_finalized_at holds nothing else); the status
# test stays as a guard. INDEXED BY: with `status IN (…)` SQLite picks the status index and reads
# every final change of the history to test finalized_at.
_PURGE = (
    "DELETE FROM changes WHERE id IN (SELECT id FROM changes "
    "INDEXED BY ix_changes_finalized_at WHERE finalized_at < ? "
    f"AND status IN {_FINAL} ORDER BY finalized_at LIMIT ?)"
)


def purge_final(conn: sqlite3.Connection, *, now: float, retention: float, limit: int) -> int:
    """Delete up to `limit` final changes older than the replay retention, oldest first (their
    operation_ids are freed); the caller repeats it in short transactions
    (`store_service/sync/purge.py`), so the API's writer never waits for a whole purge."""
    cursor = conn.execute(_PURGE, (now - retention, limit))
    return cursor.rowcount


# --- reads -----------------------------------------------------------------------------------


def unapplied_totals(conn: sqlite3.Connection, skus: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Per SKU, the sum and count of its deltas central has not applied, counted from the
    changes ((0, 0) when none): a scan of every unapplied change (no index by SKU), for checks
    and repairs. The hot paths keep these totals on the SKU's inventory_items row."""
    wanted = sorted(set(skus))
    totals = dict.fromkeys(wanted, (0, 0))
    rows = select_in(
        conn,
        f"SELECT sku, sum(delta), count(*) FROM changes WHERE sku IN ({{marks}}) "
        f"AND status IN {_UNAPPLIED} GROUP BY sku",
        wanted,
    )
    for sku, total, n in rows:
        totals[sku] = (int(total), int(n))
    return totals


_VIEW_COLUMNS = (
    "id, operation_id, sku, delta, status, attempts, last_error, next_attempt_at, "
    "central_version, resolution, created_at, updated_at, finalized_at"
)


def _view(row: sqlite3.Row) -> dict[str, Any]:
    view = dict(row)
    if view["status"] != PENDING:
        view["next_attempt_at"] = None  # only a pending change waits for a next attempt
    return view


def get_change(conn: sqlite3.Connection, operation_id: str) -> dict[str, Any] | None:
    """Where one change stands, as the API shows it."""
    row = conn.execute(
        f"SELECT {_VIEW_COLUMNS} FROM changes WHERE operation_id = ?",
        (operation_id,),
    ).fetchone()
    return None if row is None else _view(row)


SKU_SCAN_WINDOW = 5_000
"""Changes a SKU-filtered page looks through at most: there is no index by SKU (migration
0005), and the read runs on the event loop, so its cost must not grow with the outbox."""


def list_changes(
    conn: sqlite3.Connection,
    *,
    status: ChangeState | None,
    sku: str | None,
    after_id: int,
    limit: int,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of changes in outbox order, optionally of one status and/or one SKU, and the
    `after_id` of the next page (None at the end).

    With a SKU, the page looks through the next SKU_SCAN_WINDOW changes (of the status, if
    given) after `after_id` and returns the SKU's among them: it may hold fewer than `limit`, or
    none, while more follow; the next page starts after the last change looked at.
    """
    clauses = ["id > ?"]
    params: list[Any] = [after_id]
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    window_end = None
    if sku is not None:
        window_end = _window_end(conn, clauses, params)
        if window_end is not None:
            clauses.append("id <= ?")
            params.append(window_end)
        clauses.append("sku = ?")
        params.append(sku)
    rows = conn.execute(
        f"SELECT {_VIEW_COLUMNS} FROM changes WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?",
        [*params, limit],
    ).fetchall()
    items = [_view(row) for row in rows]
    if len(items) == limit:
        return items, int(items[-1]["id"])
    return items, window_end


def recent_changes(
    conn: sqlite3.Connection, *, status: ChangeState | None, sku: str | None, limit: int
) -> list[dict[str, Any]]:
    """The newest changes first (the console's list), optionally of one status and/or SKU.

    With a SKU, only the newest SKU_SCAN_WINDOW changes (of the status, if given) are looked
    through, as in `list_changes`: there is no index by SKU.
    """
    where, params = ("WHERE status = ?", [status]) if status is not None else ("", [])
    if sku is None:
        rows = conn.execute(
            f"SELECT {_VIEW_COLUMNS} FROM changes {where} ORDER BY id DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
    else:
        rows = conn.execute(
            f"SELECT * FROM (SELECT {_VIEW_COLUMNS} FROM changes {where} ORDER BY id DESC "
            "LIMIT ?) WHERE sku = ? ORDER BY id DESC LIMIT ?",
            [*params, SKU_SCAN_WINDOW, sku, limit],
        ).fetchall()
    return [_view(row) for row in rows]


def _window_end(conn: sqlite3.Connection, clauses: list[str], params: list[Any]) -> int | None:
    """The id of the SKU_SCAN_WINDOW-th change matching `clauses`, None if there are fewer."""
    row = conn.execute(
        f"SELECT id FROM changes WHERE {' AND '.join(clauses)} ORDER BY id LIMIT 1 OFFSET ?",
        [*params, SKU_SCAN_WINDOW - 1],
    ).fetchone()
    return None if row is None else int(row[0])


_OPEN_STATES = tuple(state for state in ChangeState if state not in FINAL_STATES)


def state_counts(conn: sqlite3.Connection) -> dict[ChangeState, int]:
    """Changes by state without walking the history: the final states from `change_counts`
    (kept by triggers, migration 0006), the others counted on the status index, where they lie
    apart from the final ones (so the cost follows the backlog, not the outbox's age)."""
    counts = dict.fromkeys(ChangeState, 0)
    for status, n in conn.execute("SELECT status, n FROM change_counts"):
        counts[ChangeState(status)] = int(n)
    for state in _OPEN_STATES:
        row = conn.execute("SELECT count(*) FROM changes WHERE status = ?", (state,)).fetchone()
        counts[state] = int(row[0])
    return counts


def queued_count(conn: sqlite3.Connection) -> int:
    """Changes the worker still has to send (pending or in flight)."""
    row = conn.execute(f"SELECT count(*) FROM changes WHERE status IN {_QUEUED}").fetchone()
    return int(row[0])


# Ids grow with created_at, so the oldest queued change is the one with the smallest id: one
# index step per state, where min(created_at) read every queued change from the table.
_OLDEST_QUEUED = "SELECT created_at FROM changes WHERE id = (SELECT min(id) FROM ({}))".format(
    " UNION ALL ".join(
        f"SELECT min(id) AS id FROM changes WHERE status = '{state}'" for state in QUEUED_STATES
    )
)


def oldest_queued_created_at(conn: sqlite3.Connection) -> float | None:
    row = conn.execute(_OLDEST_QUEUED).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def next_attempt_at(conn: sqlite3.Connection) -> float | None:
    """When the next pending change is due (None when nothing is pending)."""
    row = conn.execute(
        "SELECT min(next_attempt_at) FROM changes INDEXED BY ix_changes_pending_due "
        f"WHERE status = '{PENDING}'"
    ).fetchone()
    return None if row[0] is None else float(row[0])
