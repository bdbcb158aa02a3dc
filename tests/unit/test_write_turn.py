"""The write turn: every store connection that writes holds it from BEGIN to COMMIT, and a
writer that finds it taken waits (bounded, as busy_timeout is), then goes (its wait observed as
a metric)."""

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from store_service.storage.db import WRITE_LOCK_WAIT, WriteTurn, connect, is_busy, transaction


def _table(path: Path) -> None:
    conn = connect(path)
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    conn.close()


def _observed() -> float:
    return next(
        s.value for m in WRITE_LOCK_WAIT.collect() for s in m.samples if s.name.endswith("_count")
    )


def test_a_transaction_holds_the_write_turn_until_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _table(path)
    conn, other = connect(path), WriteTurn(path)
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES ('a')")
        assert not other.try_acquire()
    assert other.try_acquire()
    other.release()
    other.close()
    conn.close()


def test_a_failed_transaction_lets_go_of_the_turn_too(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _table(path)
    conn, other = connect(path), WriteTurn(path)
    try:
        with transaction(conn):
            conn.execute("INSERT INTO t VALUES ('a')")
            conn.execute("INSERT INTO t VALUES ('a')")
    except sqlite3.IntegrityError:
        pass
    assert other.try_acquire()
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    other.close()
    conn.close()


def test_a_writer_waits_for_the_turn_then_writes_and_its_wait_is_observed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _table(path)
    holder = WriteTurn(path)
    assert holder.try_acquire()
    before = _observed()
    conn = connect(path)

    def write() -> None:
        with transaction(conn):
            conn.execute("INSERT INTO t VALUES ('late')")

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(0.3)
    assert thread.is_alive(), "the writer went ahead while another held the turn"
    holder.release()
    thread.join(10)
    assert not thread.is_alive()
    assert [tuple(r) for r in conn.execute("SELECT k FROM t")] == [("late",)]
    assert _observed() == before + 1
    holder.close()
    conn.close()


def test_a_read_only_connection_takes_no_turn(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _table(path)
    reader = connect(path, readonly=True)
    assert getattr(reader, "write_turn", None) is None
    reader.close()


def test_a_turn_held_for_ever_fails_the_wait_as_sqlite_busy(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _table(path)
    holder, waiter = WriteTurn(path), WriteTurn(path)
    assert holder.try_acquire()
    with pytest.raises(sqlite3.OperationalError) as failed:
        waiter.acquire(timeout=0.2)
    assert is_busy(failed.value)
    holder.release()
    waiter.acquire(timeout=0.2)
    waiter.release()
    holder.close()
    waiter.close()


def test_a_waiting_first_writer_goes_before_the_others_next_transaction(tmp_path: Path) -> None:
    """The API's writer waits for the worker's transaction to end, then writes before the
    worker's next one: the worker cannot take the turn back while the API is waiting."""
    path = tmp_path / "s.db"
    _table(path)
    worker, api = WriteTurn(path), WriteTurn(path)
    api.first = True
    assert worker.try_acquire()
    waiting = threading.Thread(target=api.acquire)
    waiting.start()
    try:
        time.sleep(0.05)  # the API is waiting now
        worker.release()
        # At once: the API holds the turn already, or still says it is waiting.
        again = worker.try_acquire()
        waiting.join(5)
        assert not waiting.is_alive()
        assert not again, "the worker took the turn back from a waiting first writer"
    finally:
        api.release()
        worker.close()
        api.close()
