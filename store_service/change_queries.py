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


def list_changes(
    conn: sqlite3.Connection, *, status: str | None, sku: str | None, after_id: int, limit: int
) -> list[dict[str, Any]]:
    """One page of changes in outbox order, optionally of one status and/or one SKU."""
    clauses = ["id > ?"]
    params: list[Any] = [after_id]
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    if sku is not None:
        clauses.append("sku = ?")
        params.append(sku)
    params.append(limit)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM changes WHERE {' AND '.join(clauses)} "  # noqa: S608
        "ORDER BY id LIMIT ?",
        params,
    ).fetchall()
    return [_view(row) for row in rows]
