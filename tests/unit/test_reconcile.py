"""The local view after central's news: stored pending totals, less what the caller finalized."""

import sqlite3

import pytest
from structlog.testing import capture_logs

from store_service.local_view import reconcile, reconcile_many
from tests.support.store_db import assert_local_view_consistent, local_update


@pytest.fixture(autouse=True)
def _changes(conn: sqlite3.Connection) -> None:
    """Three changes pending on two SKUs."""
    local_update(conn, "A", -2, "a-1", now=100)
    local_update(conn, "A", 5, "a-2", now=101)
    local_update(conn, "B", 7, "b-1", now=102)


def test_centrals_stock_is_adopted_under_the_pending_deltas(conn: sqlite3.Connection) -> None:
    item = reconcile(conn, "A", central_quantity=40, central_version=9, now=200)
    assert (item.quantity, item.pending_delta, item.pending_count) == (43, 3, 2)
    assert (item.central_quantity, item.central_version) == (40, 9)
    assert_local_view_consistent(conn)


def test_finalized_deltas_leave_the_pending_totals(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE changes SET status = 'synced' WHERE operation_id IN ('a-1', 'b-1')")
    items = reconcile_many(
        conn,
        {"A": (38, 10), "B": (7, 1)},
        now=200,
        finalized={"A": (-2, 1), "B": (7, 1)},
    )
    assert (items["A"].quantity, items["A"].pending_delta, items["A"].pending_count) == (43, 5, 1)
    assert (items["B"].quantity, items["B"].pending_delta, items["B"].pending_count) == (7, 0, 0)
    assert_local_view_consistent(conn)


def test_a_sku_the_store_never_saw_has_nothing_pending(conn: sqlite3.Connection) -> None:
    item = reconcile(conn, "NEW", central_quantity=12, central_version=3, now=200)
    assert (item.quantity, item.pending_delta, item.pending_count) == (12, 0, 0)


def test_impossible_totals_are_recounted_from_the_changes(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE inventory_items SET pending_count = 0 WHERE sku = 'A'")
    with capture_logs() as logs:
        item = reconcile(
            conn, "A", central_quantity=40, central_version=9, finalized=(5, 1), now=200
        )
    # Finalizing one change of a stored count of 0 cannot be: the two pending changes are counted.
    assert (item.pending_delta, item.pending_count, item.quantity) == (3, 2, 43)
    assert [entry["event"] for entry in logs] == ["pending_totals_recounted"]
    assert logs[0]["skus"] == ["A"]


def test_a_delta_left_without_a_pending_change_is_recounted(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE inventory_items SET pending_count = 1, pending_delta = 9 WHERE sku = 'B'")
    with capture_logs() as logs:
        item = reconcile(
            conn, "B", central_quantity=0, central_version=1, finalized=(7, 1), now=200
        )
    # Stored 9 - 7 over 1 - 1 changes: a delta of 2 with nothing pending cannot be; B has one.
    assert (item.pending_delta, item.pending_count) == (7, 1)
    assert [entry["event"] for entry in logs] == ["pending_totals_recounted"]
