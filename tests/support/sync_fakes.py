"""Unit-test helpers for the sync engine: a store database, local updates, an in-memory central.

`FakeCentral` follows the bulk-sync contract (SPEC §4) closely enough for the sync run's unit
tests; the integration tests use the real central_sim over HTTP instead.
"""

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine

from store_service.config import Settings
from store_service.inventory import UpdateCommand, UpdateResult, apply_update
from store_service.storage.db import connect
from store_service.storage.outbox import transaction
from store_service.storage.tables import metadata
from store_service.sync.central import (
    AuthFailure,
    BulkOutcome,
    BulkResults,
    ItemResult,
    ItemStatus,
    SyncItem,
    TransientFailure,
)


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


def status_of(conn: sqlite3.Connection, operation_id: str) -> str:
    row = conn.execute(
        "SELECT status FROM changes WHERE operation_id = ?", (operation_id,)
    ).fetchone()
    return str(row["status"])


def assert_local_view_consistent(conn: sqlite3.Connection) -> None:
    """The invariant: pending sums match the outbox; quantity = central + pending."""
    for item in conn.execute("SELECT * FROM inventory_items"):
        total, count = conn.execute(
            "SELECT coalesce(sum(delta), 0), count(*) FROM changes "
            "WHERE sku = ? AND status IN ('pending', 'in_flight', 'conflict')",
            (item["sku"],),
        ).fetchone()
        sku = item["sku"]
        assert (item["pending_delta"], item["pending_count"]) == (total, count), sku
        assert item["quantity"] == (item["central_quantity"] or 0) + item["pending_delta"], sku


@dataclass
class FakeCentral:
    """In-memory central: versions, idempotency keys, conflicts on demand, scripted failures."""

    stock: dict[str, tuple[int, int]] = field(default_factory=dict)
    keys: dict[str, tuple[str, int, int, int]] = field(default_factory=dict)
    # Script of whole-call outcomes for the next calls (None = behave normally).
    script: list[TransientFailure | AuthFailure | str | None] = field(default_factory=list)
    # The next N writes to a SKU conflict as if another writer had just moved it.
    conflict_next: dict[str, int] = field(default_factory=dict)
    calls: list[list[SyncItem]] = field(default_factory=list)
    journal: list[tuple[str, str, int]] = field(default_factory=list)

    def seed(self, sku: str, quantity: int, version: int = 1) -> None:
        self.stock[sku] = (quantity, version)

    def bulk_sync(self, items: Sequence[SyncItem]) -> BulkOutcome:
        self.calls.append(list(items))
        step = self.script.pop(0) if self.script else None
        if isinstance(step, TransientFailure | AuthFailure):
            return step
        results = [self._apply(item) for item in items]
        if step == "drop_response":
            return TransientFailure("server_error", "HTTP 502")
        return BulkResults(results)

    def _apply(self, item: SyncItem) -> ItemResult:
        if item.operation_id in self.keys:
            sku, _delta, quantity, version = self.keys[item.operation_id]
            return ItemResult(item.operation_id, sku, ItemStatus.DUPLICATE, quantity, version)
        quantity, version = self.stock.get(item.sku, (0, 0))
        if self.conflict_next.get(item.sku, 0) > 0:
            self.conflict_next[item.sku] -= 1
            # Another writer moved the SKU: +1 unit, +1 version.
            quantity, version = quantity + 1, version + 1
            self.stock[item.sku] = (quantity, version)
            return ItemResult(item.operation_id, item.sku, ItemStatus.CONFLICT, quantity, version)
        if item.sku.startswith("bad"):
            return ItemResult(
                item.operation_id, item.sku, ItemStatus.REJECTED, None, None, "invalid_item"
            )
        if item.version is not None and item.version != version:
            return ItemResult(item.operation_id, item.sku, ItemStatus.CONFLICT, quantity, version)
        if quantity + item.delta < 0:
            return ItemResult(
                item.operation_id,
                item.sku,
                ItemStatus.REJECTED,
                quantity,
                version,
                "insufficient_stock",
            )
        quantity, version = quantity + item.delta, version + 1
        self.stock[item.sku] = (quantity, version)
        self.keys[item.operation_id] = (item.sku, item.delta, quantity, version)
        self.journal.append((item.operation_id, item.sku, item.delta))
        return ItemResult(item.operation_id, item.sku, ItemStatus.APPLIED, quantity, version)
