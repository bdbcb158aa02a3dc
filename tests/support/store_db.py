"""A store database for unit tests: the schema, settings pointing at it, local updates as the
API makes them, and readers and invariants for assertions."""

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from store_service.config import Settings
from store_service.domain import UNAPPLIED_STATES
from store_service.inventory import UpdateCommand, UpdateResult, apply_update
from store_service.local_view import reconcile
from store_service.storage.db import connect, sql_list, transaction
from store_service.storage.tables import metadata


def make_database(path: Path) -> sqlite3.Connection:
    """A store database with the current schema (create_all: faster than Alembic per test)."""
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()
    return connect(path)


def make_settings(path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite:///{path}",
        "data_dir": path.parent,
        "backoff_base_seconds": 1.0,
        "backoff_cap_seconds": 60.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def local_update(
    conn: sqlite3.Connection,
    sku: str,
    delta: int,
    operation_id: str,
    *,
    version: int | None = None,
    now: float | None = None,
) -> UpdateResult:
    """Apply one local change with its outbox row, as the API does."""
    with transaction(conn):
        return apply_update(
            conn,
            UpdateCommand(sku=sku, delta=delta, operation_id=operation_id, version=version),
            allow_negative=True,
            now=time.time() if now is None else now,
        )


def learn_central(conn: sqlite3.Connection, sku: str, quantity: int, version: int) -> None:
    """Fold central's stock into the SKU's local view, as a refresh does (versioned sends)."""
    with transaction(conn):
        reconcile(conn, sku, central_quantity=quantity, central_version=version, now=time.time())


def change_row(conn: sqlite3.Connection, operation_id: str) -> dict[str, Any]:
    """Every column of one change (assertions look past what the API shows)."""
    row = conn.execute("SELECT * FROM changes WHERE operation_id = ?", (operation_id,)).fetchone()
    assert row is not None, f"no change {operation_id}"
    return dict(row)


def status_of(conn: sqlite3.Connection, operation_id: str) -> str:
    return str(change_row(conn, operation_id)["status"])


def item_row(conn: sqlite3.Connection, sku: str) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM inventory_items WHERE sku = ?", (sku,)).fetchone()
    assert row is not None, f"no item {sku}"
    return dict(row)


_UNAPPLIED_TOTALS = (
    "SELECT coalesce(sum(delta), 0), count(*) FROM changes "  # noqa: S608 (a constant list)
    f"WHERE sku = ? AND status IN {sql_list(UNAPPLIED_STATES)}"
)


def assert_local_view_consistent(conn: sqlite3.Connection) -> None:
    """The invariant: pending sums match the outbox; quantity = central + pending."""
    for item in conn.execute("SELECT * FROM inventory_items"):
        total, count = conn.execute(_UNAPPLIED_TOTALS, (item["sku"],)).fetchone()
        sku = item["sku"]
        assert (item["pending_delta"], item["pending_count"]) == (total, count), sku
        assert item["quantity"] == (item["central_quantity"] or 0) + item["pending_delta"], sku
