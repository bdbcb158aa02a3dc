"""The sync lease: one holder at a time, and a crashed holder's lease expires."""

import sqlite3
from pathlib import Path

import pytest

from store_service.storage import outbox
from tests.support.sync_fakes import make_database


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return make_database(tmp_path / "store.db")


def test_a_free_lease_is_taken(conn: sqlite3.Connection) -> None:
    assert outbox.acquire_lease(conn, holder="a", now=100, ttl=30)
    assert outbox.lease_holder(conn, now=100) == "a"


def test_a_held_lease_is_refused_to_another_holder(conn: sqlite3.Connection) -> None:
    outbox.acquire_lease(conn, holder="a", now=100, ttl=30)
    assert not outbox.acquire_lease(conn, holder="b", now=120, ttl=30)
    assert outbox.lease_holder(conn, now=120) == "a"


def test_the_holder_may_take_its_own_lease_again(conn: sqlite3.Connection) -> None:
    outbox.acquire_lease(conn, holder="a", now=100, ttl=30)
    assert outbox.acquire_lease(conn, holder="a", now=110, ttl=30)


def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_renew(
    conn: sqlite3.Connection,
) -> None:
    outbox.acquire_lease(conn, holder="crashed", now=100, ttl=30)
    assert outbox.acquire_lease(conn, holder="b", now=131, ttl=30)
    assert not outbox.renew_lease(conn, holder="crashed", now=132, ttl=30)
    assert outbox.renew_lease(conn, holder="b", now=132, ttl=30)


def test_release_frees_the_lease_only_for_its_holder(conn: sqlite3.Connection) -> None:
    outbox.acquire_lease(conn, holder="a", now=100, ttl=30)
    outbox.release_lease(conn, holder="b")
    assert outbox.lease_holder(conn, now=101) == "a"
    outbox.release_lease(conn, holder="a")
    assert outbox.lease_holder(conn, now=101) is None
    assert outbox.acquire_lease(conn, holder="b", now=101, ttl=30)
