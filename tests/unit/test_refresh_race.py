"""A refresh racing a sync batch never counts a change twice in the local view.

The hazard: a batch claims a change (in_flight), central applies it, and a refresh fetches
central's figures, which include it, before the batch records the result. Adopting them then
would count the change twice: once in central's quantity, once as pending. The refresh leaves
the SKU's central figures alone while one of its changes is in flight, checked in the write
transaction that would adopt them; the batch's own record step moves them on. The same holds
after a lost answer: the change is pending again, central may hold it, and only its resend
(a duplicate) settles it.

On a real SQLite file: the sync run on its own connection, the refresh on another. The truth
at any moment is central's quantity plus the store's changes central has not applied.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

from store_service.config import Settings
from store_service.domain import UNAPPLIED_STATES
from store_service.storage.db import connect, sql_list
from store_service.sync import refresh
from store_service.sync.central import BulkOutcome, CentralClient, SyncItem
from store_service.sync.run import run_sync
from tests.support.fake_central import FakeCentral
from tests.support.store_db import (
    assert_local_view_consistent,
    item_row,
    learn_central,
    local_update,
    make_database,
    make_settings,
)

SKU = "RACE-1"
RACE_ITERATIONS = 60  # sync runs in the threaded race (bounded: seconds)
RACE_SECONDS = 30.0  # and bounded in time whatever the machine's load

_UNAPPLIED = (
    "SELECT operation_id, delta FROM changes "  # noqa: S608 (a constant list)
    f"WHERE sku = ? AND status IN {sql_list(UNAPPLIED_STATES)}"
)


class CentralReads:
    """central's GET /v1/inventory/{sku} over the fake's stock (what `refresh.fetch` calls)."""

    def __init__(self, central: FakeCentral, lock: threading.Lock | None = None) -> None:
        self.central = central
        self.lock = lock or threading.Lock()

    def get_inventory(self, sku: str) -> SimpleNamespace | None:
        with self.lock:
            stock = self.central.stock.get(sku)
        if stock is None or not stock.known:
            return None
        return SimpleNamespace(quantity=stock.quantity, version=stock.version)


def refresh_now(
    conn: sqlite3.Connection, central: FakeCentral, lock: threading.Lock | None = None
) -> None:
    reads: CentralClient = CentralReads(central, lock)  # type: ignore[assignment]
    refresh.refresh_sku(conn, reads, SKU)


def truth(conn: sqlite3.Connection, central: FakeCentral) -> int:
    """What the store should show: central's stock plus the changes central has not applied."""
    applied = {operation_id for operation_id, _sku, _delta in central.applied()}
    rows = conn.execute(_UNAPPLIED, (SKU,)).fetchall()
    pending = sum(delta for operation_id, delta in rows if operation_id not in applied)
    return central.stock[SKU].quantity + pending


def local_quantity(conn: sqlite3.Connection) -> int:
    return int(item_row(conn, SKU)["quantity"])


class RefreshMidBatch:
    """central that applies a batch, then lets a refresh run before the store records it."""

    def __init__(self, central: FakeCentral, db_path: Path) -> None:
        self.central = central
        self.db_path = db_path
        self.seen: list[tuple[str, int, int]] = []  # (step, local quantity, truth)

    def bulk_sync(self, items: Sequence[SyncItem]) -> BulkOutcome:
        outcome = self.central.bulk_sync(items)
        conn = connect(self.db_path)
        try:
            self.seen.append(("central applied", local_quantity(conn), truth(conn, self.central)))
            refresh_now(conn, self.central)
            self.seen.append(("refreshed", local_quantity(conn), truth(conn, self.central)))
        finally:
            conn.close()
        return outcome


def test_a_refresh_between_central_applying_and_the_batch_record_counts_once(
    conn: sqlite3.Connection, settings: Settings, db_path: Path
) -> None:
    central = FakeCentral()
    central.seed(SKU, 10, version=1)
    learn_central(conn, SKU, 10, 1)
    local_update(conn, SKU, -3, "sale-1")
    assert local_quantity(conn) == truth(conn, central) == 7

    mid_batch = RefreshMidBatch(central, db_path)
    report = run_sync(settings, client=mid_batch)  # claim -> central applies -> refresh -> record

    assert report.stopped_reason == "drained"
    assert mid_batch.seen == [("central applied", 7, 7), ("refreshed", 7, 7)]
    assert local_quantity(conn) == truth(conn, central) == 7
    assert item_row(conn, SKU)["central_version"] == 2  # the batch's record moved it on
    assert_local_view_consistent(conn)
    # With nothing in flight, a refresh adopts central's figures again.
    central.seed(SKU, 20, version=5)
    refresh_now(conn, central)
    assert (local_quantity(conn), item_row(conn, SKU)["central_version"]) == (20, 5)


class LockedCentral:
    """The fake central behind a lock, slow like a network round trip after applying, so a
    refresh often lands between central applying a batch and the store recording it."""

    def __init__(self, central: FakeCentral, lock: threading.Lock) -> None:
        self.central = central
        self.lock = lock

    def bulk_sync(self, items: Sequence[SyncItem]) -> BulkOutcome:
        with self.lock:
            outcome = self.central.bulk_sync(items)
        time.sleep(0.003)
        return outcome


def test_refreshes_racing_sync_runs_never_double_count(tmp_path: Path) -> None:
    db_path = tmp_path / "store.db"
    setup = make_database(db_path)
    central = FakeCentral()
    central.seed(SKU, 1_000, version=1)
    learn_central(setup, SKU, 1_000, 1)
    setup.close()
    settings = make_settings(db_path)
    lock = threading.Lock()
    done = threading.Event()
    deadline = time.monotonic() + RACE_SECONDS
    wrong: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    reads = 0

    def sync_loop() -> None:
        conn = connect(db_path)
        try:
            for i in range(RACE_ITERATIONS):
                if time.monotonic() > deadline:
                    break
                local_update(conn, SKU, -1 if i % 3 else 2, f"op-{i}")
                run_sync(settings, client=LockedCentral(central, lock))
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()
            done.set()

    def refresh_loop() -> None:
        nonlocal reads
        conn = connect(db_path)
        try:
            while not done.is_set() and time.monotonic() < deadline:
                refresh_now(conn, central, lock)
                with lock:  # central stands still while the store is read in one snapshot
                    conn.execute("BEGIN")
                    try:
                        shown, expected = local_quantity(conn), truth(conn, central)
                    finally:
                        conn.execute("COMMIT")
                reads += 1
                if shown != expected:
                    wrong.append((shown, expected))
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=sync_loop), threading.Thread(target=refresh_loop)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RACE_SECONDS + 10)
    assert not errors, errors
    assert reads > 0
    assert not wrong, f"{len(wrong)} of {reads} reads counted a change twice, e.g. {wrong[:3]}"
    check = connect(db_path)
    try:
        assert local_quantity(check) == truth(check, central)
        assert_local_view_consistent(check)
    finally:
        check.close()


def test_a_refresh_after_a_lost_answer_waits_for_the_resend(
    conn: sqlite3.Connection, settings: Settings
) -> None:
    """central applies a batch and its answer is lost: the change is pending again, and
    central's quantity already includes it. A refresh then must not adopt central's figures
    (the store cannot tell whether central applied it) until the resend settles it."""
    central = FakeCentral(script=["drop_response"])
    central.seed(SKU, 10, version=1)
    learn_central(conn, SKU, 10, 1)
    local_update(conn, SKU, -3, "sale-1")

    report = run_sync(settings, client=central)  # applied at central, the answer lost
    assert report.stopped_reason != "drained"
    assert [op for op, _sku, _delta in central.applied()] == ["sale-1"]
    assert local_quantity(conn) == truth(conn, central) == 7

    refresh_now(conn, central)
    assert local_quantity(conn) == truth(conn, central) == 7
    assert item_row(conn, SKU)["central_version"] == 1  # not adopted

    conn.execute("UPDATE changes SET next_attempt_at = 0")  # the backoff is over
    assert run_sync(settings, client=central).stopped_reason == "drained"  # a duplicate
    assert local_quantity(conn) == truth(conn, central) == 7
    refresh_now(conn, central)  # settled: adopted again
    assert (local_quantity(conn), item_row(conn, SKU)["central_version"]) == (7, 2)
    assert_local_view_consistent(conn)


def test_the_refresh_check_reads_two_small_index_slices_not_the_backlog(
    conn: sqlite3.Connection,
) -> None:
    """It runs inside a write transaction: a walk of a million pending changes there would hold
    the API's writer for a second."""
    from store_service.storage.outbox import _UNSETTLED

    plans = [
        " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", (SKU,)))
        for sql in _UNSETTLED
    ]
    assert "ix_changes_status_id (status=?)" in plans[0]
    assert "ix_changes_pending_first_sent" in plans[1]
    assert not any("SCAN" in plan for plan in plans)
