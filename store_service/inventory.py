"""Inventory use cases: read the local view, apply an update together with its outbox row."""

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from store_service import domain
from store_service.domain import ItemState
from store_service.storage.db import select_in
from store_service.storage.writer import Batchable, Call, Outcome

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


_UPSERT_ITEM = """
    INSERT INTO inventory_items (sku, quantity, version, pending_delta, pending_count,
        central_quantity, central_version, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (sku) DO UPDATE SET
        quantity = excluded.quantity, version = excluded.version,
        pending_delta = excluded.pending_delta, pending_count = excluded.pending_count,
        central_quantity = excluded.central_quantity,
        central_version = excluded.central_version, updated_at = excluded.updated_at
"""

_INSERT_CHANGE = """
    INSERT INTO changes (operation_id, sku, delta, expected_version, status, attempts,
        next_attempt_at, base_version, created_at, updated_at, request_id,
        response_status, response_body)
    VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?, 200, ?)
"""

_LOOKUP = """
    SELECT c.sku, c.delta, c.expected_version, c.response_status, c.response_body,
        i.quantity, i.version, i.pending_delta, i.pending_count, i.central_quantity,
        i.central_version
    FROM (SELECT ? AS operation_id, ? AS sku) AS k
    LEFT JOIN changes AS c ON c.operation_id = k.operation_id
    LEFT JOIN inventory_items AS i ON i.sku = k.sku
"""


def _item_params(item: ItemState, created_at: float, updated_at: float) -> tuple[Any, ...]:
    return (
        item.sku,
        item.quantity,
        item.version,
        item.pending_delta,
        item.pending_count,
        item.central_quantity,
        item.central_version,
        created_at,
        updated_at,
    )


def save_item(conn: sqlite3.Connection, item: ItemState, now: float) -> None:
    """Insert or update one item's local view."""
    conn.execute(_UPSERT_ITEM, _item_params(item, now, now))


@dataclass(frozen=True, slots=True)
class _Stored:
    """What the store holds for an operation_id already applied: its payload and first answer."""

    sku: str
    delta: int
    expected_version: int | None
    status: int
    body: bytes


def _decide(
    command: UpdateCommand, stored: _Stored | None, item: ItemState, *, allow_negative: bool
) -> tuple[UpdateResult, ItemState | None]:
    """The answer to one update given what the store holds, and the item to write if it applies.

    Raises the refusals (reused operation_id, stale version, insufficient stock); a known
    operation_id with the same payload is answered with its first answer and writes nothing.
    """
    if stored is not None:
        if (stored.sku, stored.delta, stored.expected_version) != (
            command.sku,
            command.delta,
            command.version,
        ):
            payload = {
                "sku": stored.sku,
                "delta": stored.delta,
                "expected_version": stored.expected_version,
            }
            raise OperationReused(command.operation_id, payload)
        return UpdateResult(stored.status, stored.body, True), None
    updated = domain.apply_delta(
        item, delta=command.delta, expected_version=command.version, allow_negative=allow_negative
    )
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
    return UpdateResult(200, body, False), updated


def _change_params(
    command: UpdateCommand, before: ItemState, body: bytes, now: float
) -> tuple[Any, ...]:
    return (
        command.operation_id,
        command.sku,
        command.delta,
        command.version,
        now,
        before.central_version,
        now,
        now,
        command.request_id,
        body.decode(),
    )


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
    stored = None if row[0] is None else _Stored(row[0], row[1], row[2], row[3], row[4].encode())
    item = (
        domain.new_item(command.sku)
        if row[5] is None
        else ItemState(command.sku, row[5], row[6], row[7], row[8], row[9], row[10])
    )
    result, updated = _decide(command, stored, item, allow_negative=allow_negative)
    if updated is not None:
        save_item(conn, updated, now)
        conn.execute(_INSERT_CHANGE, _change_params(command, item, result.body, now))
    return result


def apply_updates(conn: sqlite3.Connection, calls: Sequence[Call]) -> list[Outcome]:
    """`apply_update` for a whole group-commit batch, with the same answers in the same order.

    Each call is `((command,), {"allow_negative": ..., "now": ...})`; each outcome is
    (True, UpdateResult) or (False, the refusal). Lookups are one query per 500 operation ids
    and per 500 SKUs, writes one `executemany` for the new changes and one row per touched SKU
    (its final state): on the hot path a statement costs more than the work in it. Calls are
    decided one after another against the batch's own writes (a later call sees the item an
    earlier one updated; a repeated operation_id replays the earlier answer), so the outcome is
    that of running `apply_update` for each in order. A refused call writes nothing.
    """
    commands: list[UpdateCommand] = [args[0] for args, _kwargs in calls]
    stored = _stored_changes(conn, [command.operation_id for command in commands])
    items = load_items(conn, [command.sku for command in commands])
    outcomes: list[Outcome] = []
    new_changes: list[tuple[Any, ...]] = []
    touched: dict[str, tuple[float, float]] = {}  # sku -> (first, last) time of its writes
    for command, (_args, kwargs) in zip(commands, calls, strict=True):
        item = items.get(command.sku) or domain.new_item(command.sku)
        try:
            result, updated = _decide(
                command,
                stored.get(command.operation_id),
                item,
                allow_negative=kwargs["allow_negative"],
            )
        except Exception as exc:
            outcomes.append((False, exc))
            continue
        if updated is not None:
            now = kwargs["now"]
            items[command.sku] = updated
            touched[command.sku] = (touched.get(command.sku, (now, now))[0], now)
            stored[command.operation_id] = _Stored(
                command.sku, command.delta, command.version, result.status, result.body
            )
            new_changes.append(_change_params(command, item, result.body, now))
        outcomes.append((True, result))
    if touched:
        conn.executemany(
            _UPSERT_ITEM,
            [_item_params(items[sku], first, last) for sku, (first, last) in touched.items()],
        )
        conn.executemany(_INSERT_CHANGE, new_changes)
    return outcomes


def _stored_changes(conn: sqlite3.Connection, operation_ids: list[str]) -> dict[str, _Stored]:
    rows = select_in(
        conn,
        "SELECT operation_id, sku, delta, expected_version, response_status, response_body "
        "FROM changes WHERE operation_id IN ({marks})",
        operation_ids,
    )
    return {row[0]: _Stored(row[1], row[2], row[3], row[4], row[5].encode()) for row in rows}


def load_items(conn: sqlite3.Connection, skus: Iterable[str]) -> dict[str, ItemState]:
    """The stored local view of each SKU that has one (one query per 500 SKUs)."""
    rows = select_in(
        conn,
        "SELECT sku, quantity, version, pending_delta, pending_count, central_quantity, "
        "central_version FROM inventory_items WHERE sku IN ({marks})",
        skus,
    )
    return {row[0]: ItemState(*row) for row in rows}


apply_update_job = Batchable(one=apply_update, many=apply_updates)
"""What the update route submits to the writer: one call, or a whole batch of them at once."""


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
