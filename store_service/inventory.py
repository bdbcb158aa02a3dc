"""Inventory use cases: read the local view, apply an update together with its outbox row."""

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from store_service import domain
from store_service.domain import ItemState

PENDING_STATES = ("pending", "in_flight", "conflict")
"""States whose delta central has not applied yet: they count in the local view."""


@dataclass(frozen=True, slots=True)
class UpdateCommand:
    sku: str
    delta: int
    operation_id: str
    version: int | None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """The HTTP status and JSON body of the first answer; `replayed` for a retried request."""

    status: int
    body: bytes
    replayed: bool


class OperationReused(Exception):
    """The operation_id is already taken by a change with a different payload."""

    def __init__(self, operation_id: str, stored: Mapping[str, Any]) -> None:
        super().__init__(f"operation_id {operation_id!r} was already used with another payload")
        self.operation_id = operation_id
        self.stored = stored


def _item_from_row(row: sqlite3.Row) -> ItemState:
    return ItemState(
        sku=row["sku"],
        quantity=row["quantity"],
        version=row["version"],
        pending_delta=row["pending_delta"],
        pending_count=row["pending_count"],
        central_quantity=row["central_quantity"],
        central_version=row["central_version"],
    )


def load_item(conn: sqlite3.Connection, sku: str) -> ItemState | None:
    row = conn.execute("SELECT * FROM inventory_items WHERE sku = ?", (sku,)).fetchone()
    return None if row is None else _item_from_row(row)


def save_item(conn: sqlite3.Connection, item: ItemState, now: float) -> None:
    """Insert or update one item's local view."""
    conn.execute(
        """
        INSERT INTO inventory_items (sku, quantity, version, pending_delta, pending_count,
            central_quantity, central_version, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (sku) DO UPDATE SET
            quantity = excluded.quantity, version = excluded.version,
            pending_delta = excluded.pending_delta, pending_count = excluded.pending_count,
            central_quantity = excluded.central_quantity,
            central_version = excluded.central_version, updated_at = excluded.updated_at
        """,
        (
            item.sku,
            item.quantity,
            item.version,
            item.pending_delta,
            item.pending_count,
            item.central_quantity,
            item.central_version,
            now,
            now,
        ),
    )


_LOOKUP = """
    SELECT c.sku, c.delta, c.expected_version, c.response_status, c.response_body,
        i.quantity, i.version, i.pending_delta, i.pending_count, i.central_quantity,
        i.central_version
    FROM (SELECT ? AS operation_id, ? AS sku) AS k
    LEFT JOIN changes AS c ON c.operation_id = k.operation_id
    LEFT JOIN inventory_items AS i ON i.sku = k.sku
"""


def apply_update(
    conn: sqlite3.Connection, command: UpdateCommand, *, allow_negative: bool, now: float
) -> UpdateResult:
    """Apply one delta and queue it for central, in the caller's transaction.

    Replays a known operation_id (same payload) without touching anything, and refuses one
    reused with another payload. Refusals (stale version, insufficient stock) are not stored:
    the client may fix and resend under the same operation_id.
    """
    # One statement for both lookups (the replay check and the item): on the hot path each
    # statement's fixed cost in the sqlite3 module is larger than the index lookups themselves.
    row = conn.execute(_LOOKUP, (command.operation_id, command.sku)).fetchone()
    if row[0] is not None:
        stored = {"sku": row[0], "delta": row[1], "expected_version": row[2]}
        if (row[0], row[1], row[2]) != (command.sku, command.delta, command.version):
            raise OperationReused(command.operation_id, stored)
        return UpdateResult(row[3], row[4].encode(), True)

    item = (
        domain.new_item(command.sku)
        if row[5] is None
        else ItemState(command.sku, row[5], row[6], row[7], row[8], row[9], row[10])
    )
    updated = domain.apply_delta(
        item, delta=command.delta, expected_version=command.version, allow_negative=allow_negative
    )
    save_item(conn, updated, now)
    body = orjson.dumps(
        {
            "sku": command.sku,
            "quantity": updated.quantity,
            "version": updated.version,
            "operation_id": command.operation_id,
            "delta": command.delta,
            "sync_status": "pending",
        }
    )
    conn.execute(
        """
        INSERT INTO changes (operation_id, sku, delta, expected_version, status, attempts,
            next_attempt_at, base_version, created_at, updated_at, request_id,
            response_status, response_body)
        VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?, 200, ?)
        """,
        (
            command.operation_id,
            command.sku,
            command.delta,
            command.version,
            now,
            item.central_version,
            now,
            now,
            command.request_id,
            body.decode(),
        ),
    )
    return UpdateResult(200, body, False)


def item_view(row: sqlite3.Row) -> dict[str, Any]:
    """The API's view of one inventory row."""
    return {
        "sku": row["sku"],
        "quantity": row["quantity"],
        "version": row["version"],
        "pending_delta": row["pending_delta"],
        "pending_count": row["pending_count"],
        "central_quantity": row["central_quantity"],
        "central_version": row["central_version"],
        "last_synced_at": row["last_synced_at"],
        "updated_at": row["updated_at"],
    }


def get_item(conn: sqlite3.Connection, sku: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM inventory_items WHERE sku = ?", (sku,)).fetchone()
    return None if row is None else item_view(row)


def list_items(conn: sqlite3.Connection, *, after: str | None, limit: int) -> list[dict[str, Any]]:
    """One page of items in SKU order, after the given SKU (keyset paging)."""
    rows = conn.execute(
        "SELECT * FROM inventory_items WHERE sku > ? ORDER BY sku LIMIT ?", (after or "", limit)
    ).fetchall()
    return [item_view(row) for row in rows]
