"""Read-only views of the outbox for the API: one change, and pages of changes by status."""

import sqlite3
from typing import Any

_COLUMNS = (
    "id, operation_id, sku, delta, status, attempts, last_error, next_attempt_at, "
    "central_version, resolution, created_at, updated_at, finalized_at"
)


def _view(row: sqlite3.Row) -> dict[str, Any]:
    view = dict(row)
    if view["status"] != "pending":
        view["next_attempt_at"] = None
    return view


def get_change(conn: sqlite3.Connection, operation_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM changes WHERE operation_id = ?",  # noqa: S608
        (operation_id,),
    ).fetchone()
    return None if row is None else _view(row)


SKU_SCAN_WINDOW = 5_000
"""Changes a SKU-filtered page looks through at most: there is no index by SKU (migration
0005), and the read runs on the event loop, so its cost must not grow with the outbox."""


def list_changes(
    conn: sqlite3.Connection, *, status: str | None, sku: str | None, after_id: int, limit: int
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
        f"SELECT {_COLUMNS} FROM changes WHERE {' AND '.join(clauses)} "  # noqa: S608
        "ORDER BY id LIMIT ?",
        [*params, limit],
    ).fetchall()
    items = [_view(row) for row in rows]
    if len(items) == limit:
        return items, items[-1]["id"]
    return items, window_end


def _window_end(conn: sqlite3.Connection, clauses: list[str], params: list[Any]) -> int | None:
    """The id of the SKU_SCAN_WINDOW-th change matching `clauses`, None if there are fewer."""
    row = conn.execute(
        f"SELECT id FROM changes WHERE {' AND '.join(clauses)} "  # noqa: S608
        "ORDER BY id LIMIT 1 OFFSET ?",
        [*params, SKU_SCAN_WINDOW - 1],
    ).fetchone()
    return None if row is None else int(row[0])
