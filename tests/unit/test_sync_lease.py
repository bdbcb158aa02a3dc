"""The sync lease: one holder at a time, and a crashed holder's lease expires."""

import sqlite3

from store_service.sync import lease


def test_a_free_lease_is_taken(conn: sqlite3.Connection) -> None:
    assert lease.acquire(conn, holder="a", now=100, ttl=30)
    assert lease.holder(conn, now=100) == "a"


def test_a_held_lease_is_refused_to_another_holder(conn: sqlite3.Connection) -> None:
    lease.acquire(conn, holder="a", now=100, ttl=30)
    assert not lease.acquire(conn, holder="b", now=120, ttl=30)
    assert lease.holder(conn, now=120) == "a"


def test_the_holder_may_take_its_own_lease_again(conn: sqlite3.Connection) -> None:
    lease.acquire(conn, holder="a", now=100, ttl=30)
    assert lease.acquire(conn, holder="a", now=110, ttl=30)


def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_renew(
    conn: sqlite3.Connection,
) -> None:
    lease.acquire(conn, holder="crashed", now=100, ttl=30)
    assert lease.acquire(conn, holder="b", now=131, ttl=30)
    assert not lease.renew(conn, holder="crashed", now=132, ttl=30)
    assert lease.renew(conn, holder="b", now=132, ttl=30)


def test_release_frees_the_lease_only_for_its_holder(conn: sqlite3.Connection) -> None:
    lease.acquire(conn, holder="a", now=100, ttl=30)
    lease.release(conn, holder="b")
    assert lease.holder(conn, now=101) == "a"
    lease.release(conn, holder="a")
    assert lease.holder(conn, now=101) is None
    assert lease.acquire(conn, holder="b", now=101, ttl=30)
