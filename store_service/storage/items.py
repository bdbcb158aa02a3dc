"""All SQL on `inventory_items`: the local view of each SKU.

Functions run inside the caller's transaction (the API's writer, or `db.transaction`).
"""

import sqlite3
from collections.abc import Iterable
from typing import Any

from store_service.domain import ItemState
from store_service.storage.db import select_in

# One upsert for every writer of the local view. `last_synced_at` moves only with news from
# central (a non-null value); a local update passes null and keeps it.
_UPSERT = """
    INSERT INTO inventory_items (sku, quantity, version, pending_delta, pending_count,
        central_quantity, central_version, last_synced_at, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (sku) DO UPDATE SET
        quantity = excluded.quantity, version = excluded.version,
        pending_delta = excluded.pending_delta, pending_count = excluded.pending_count,
        central_quantity = excluded.central_quantity,
        central_version = excluded.central_version, updated_at = excluded.updated_at,
        last_synced_at = coalesce(excluded.last_synced_at, inventory_items.last_synced_at)
"""

_COLUMNS = (
    "sku, quantity, version, pending_delta, pending_count, central_quantity, central_version, "
    "last_synced_at, updated_at"
)

ItemWrite = tuple[ItemState, float, float, float | None]
"""An item to save: (state, time of its first write, time of its last write, time of the news
from central that it folds in, or None)."""


def _params(item: ItemState, created_at: float, updated_at: float, synced_at: float | None) -> Any:
    return (
        item.sku,
        item.quantity,
        item.version,
        item.pending_delta,
        item.pending_count,
        item.central_quantity,
        item.central_version,
        synced_at,
        created_at,
        updated_at,
    )


def save_item(
    conn: sqlite3.Connection, item: ItemState, now: float, *, synced_at: float | None = None
) -> None:
    """Insert or update one item's local view."""
    conn.execute(_UPSERT, _params(item, now, now, synced_at))


def save_items(conn: sqlite3.Connection, writes: Iterable[ItemWrite]) -> None:
    """`save_item` for many items in one statement."""
    conn.executemany(_UPSERT, [_params(*write) for write in writes])


def load_items(conn: sqlite3.Connection, skus: Iterable[str]) -> dict[str, ItemState]:
    """The stored local view of each SKU that has one (one query per 500 SKUs)."""
    rows = select_in(
        conn,
        "SELECT sku, quantity, version, pending_delta, pending_count, central_quantity, "
        "central_version FROM inventory_items WHERE sku IN ({marks})",
        skus,
    )
    return {row[0]: ItemState(*row) for row in rows}


def get_item(conn: sqlite3.Connection, sku: str) -> dict[str, Any] | None:
    """One item as the API shows it."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM inventory_items WHERE sku = ?",
        (sku,),
    ).fetchone()
    return None if row is None else dict(row)


def list_items(conn: sqlite3.Connection, *, after: str | None, limit: int) -> list[dict[str, Any]]:
    """One page of items in SKU order, after the given SKU (keyset paging)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM inventory_items WHERE sku > ? ORDER BY sku LIMIT ?",
        (after or "", limit),
    ).fetchall()
    return [dict(row) for row in rows]


def known_skus(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT sku FROM inventory_items ORDER BY sku")]
