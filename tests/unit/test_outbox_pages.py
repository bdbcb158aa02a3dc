"""Paging through the outbox: by status and by SKU, whose pages look through a bounded window."""

import sqlite3

import pytest

from store_service.domain import ChangeState
from store_service.storage import outbox
from tests.support.store_db import local_update


def _all_pages(
    conn: sqlite3.Connection, *, status: ChangeState | None = None, sku: str | None = None
) -> list[tuple[list[str], int | None]]:
    pages: list[tuple[list[str], int | None]] = []
    after_id: int | None = 0
    while after_id is not None and len(pages) < 50:
        items, after_id = outbox.list_changes(
            conn, status=status, sku=sku, after_id=after_id, limit=2
        )
        pages.append(([item["operation_id"] for item in items], after_id))
    return pages


def test_pages_by_status_are_full_until_the_last(conn: sqlite3.Connection) -> None:
    for n in range(5):
        local_update(conn, "A" if n % 2 else "B", 1, f"op-{n}", now=100 + n)
    pages = _all_pages(conn, status=ChangeState.PENDING)
    assert [ids for ids, _next in pages] == [["op-0", "op-1"], ["op-2", "op-3"], ["op-4"]]
    assert pages[-1][1] is None


def test_a_sku_page_looks_through_a_bounded_window_and_says_where_to_go_on(
    conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "SKU_SCAN_WINDOW", 3)
    # Ids 1-9: the SKU's changes are 1, 6, 7 and 9; 2-5 and 8 belong to others.
    skus = ["X", "O", "O", "O", "O", "X", "X", "O", "X"]
    for n, sku in enumerate(skus, start=1):
        local_update(conn, sku, 1, f"op-{n}", now=100 + n)
    pages = _all_pages(conn, sku="X")
    # Window 1-3 finds op-1; window 4-6 finds op-6; 7-9 fills a page (op-7, op-9).
    assert pages == [(["op-1"], 3), (["op-6"], 6), (["op-7", "op-9"], 9), ([], None)]
    found = [op for ids, _next in pages for op in ids]
    assert found == [f"op-{n}" for n, sku in enumerate(skus, start=1) if sku == "X"]


def test_a_sku_page_may_be_empty_while_more_follow(
    conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "SKU_SCAN_WINDOW", 2)
    for n, sku in enumerate(["O", "O", "O", "O", "X"], start=1):
        local_update(conn, sku, 1, f"op-{n}", now=100 + n)
    pages = _all_pages(conn, sku="X", status=ChangeState.PENDING)
    assert pages == [([], 2), ([], 4), (["op-5"], None)]


def test_a_sku_page_without_a_full_window_ends_the_listing(conn: sqlite3.Connection) -> None:
    for n, sku in enumerate(["X", "O", "X"], start=1):
        local_update(conn, sku, 1, f"op-{n}", now=100 + n)
    assert _all_pages(conn, sku="X", status=ChangeState.SYNCED) == [([], None)]
    assert _all_pages(conn, sku="X") == [(["op-1", "op-3"], 3), ([], None)]
