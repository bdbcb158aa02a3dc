"""The sync lease: one holder at a time, and a crashed holder's lease expires."""

import os
import socket
import sqlite3
import subprocess
import sys

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


def test_a_lease_held_by_a_dead_process_on_this_host_is_taken_at_once(
    conn: sqlite3.Connection,
) -> None:
    # A real process that has exited: its pid no longer runs (or runs something started later).
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(child.stdout)
    dead = f"sync-x@{socket.gethostname()}:{pid}:1"
    lease.acquire(conn, holder=dead, now=100, ttl=300)
    assert lease.holder_is_dead(dead)
    assert lease.acquire(conn, holder="b", now=101, ttl=300)
    assert lease.holder(conn, now=101) == "b"


def test_a_lease_held_by_a_live_process_or_another_host_is_waited_for(
    conn: sqlite3.Connection,
) -> None:
    alive = lease.holder_name()  # this very process: a concurrent run in the same worker
    assert not lease.holder_is_dead(alive)
    lease.acquire(conn, holder=alive, now=100, ttl=300)
    assert not lease.acquire(conn, holder="b", now=101, ttl=300)
    elsewhere = f"sync-x@not-{socket.gethostname()}:{os.getpid() + 10**7}:1"
    for name in (elsewhere, "crashed", "sync-1234@"):
        assert not lease.holder_is_dead(name)
