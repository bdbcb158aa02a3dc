"""The single writer: group commit, isolation between jobs, durability of acknowledged work."""

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from store_service.storage import writer as writer_module
from store_service.storage.db import WriteTurn, connect
from store_service.storage.writer import Batchable, Writer, WriterClosed


def _make_table(path: Path) -> None:
    conn = connect(path)
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
    conn.close()


def _insert(conn: sqlite3.Connection, key: str, value: int) -> str:
    conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (key, value))
    return key


def _insert_then_fail(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("INSERT INTO t (k, v) VALUES (?, 1)", (key,))
    raise ValueError("refused after writing")


@pytest.fixture
def writer(tmp_path: Path):
    path = tmp_path / "w.db"
    _make_table(path)
    w = Writer(path).start()
    yield w, path
    w.stop()


async def test_concurrent_jobs_share_commits_and_all_land(writer) -> None:
    w, path = writer
    keys = await asyncio.gather(*(w.run(_insert, f"k{i}", i) for i in range(300)))
    assert sorted(keys) == sorted(f"k{i}" for i in range(300))
    assert w.commits < 300, "jobs queued together should share a commit"
    rows = sqlite3.connect(path).execute("SELECT count(*), sum(v) FROM t").fetchone()
    assert rows == (300, sum(range(300)))


async def test_a_failing_job_leaves_no_trace_and_does_not_sink_its_batch(writer) -> None:
    w, path = writer
    results = await asyncio.gather(
        w.run(_insert, "a", 1),
        w.run(_insert_then_fail, "b"),
        w.run(_insert, "c", 3),
        return_exceptions=True,
    )
    assert results[0] == "a"
    assert isinstance(results[1], ValueError)
    assert results[2] == "c"
    keys = {row[0] for row in sqlite3.connect(path).execute("SELECT k FROM t")}
    assert keys == {"a", "c"}


async def test_a_constraint_violation_is_returned_to_its_caller_only(writer) -> None:
    w, _path = writer
    await w.run(_insert, "dup", 1)
    with pytest.raises(sqlite3.IntegrityError):
        await w.run(_insert, "dup", 2)
    assert await w.run(_insert, "after", 3) == "after"


def test_blocking_callers_are_served_too(writer) -> None:
    w, path = writer
    assert w.run_blocking(_insert, "x", 9) == "x"
    assert sqlite3.connect(path).execute("SELECT v FROM t WHERE k='x'").fetchone() == (9,)


def test_an_unexpected_error_on_the_thread_answers_its_caller_and_the_thread_goes_on(
    writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug inside the writer thread (here: its outcome check raising once) reaches the callers
    it was serving; the thread keeps serving the writes after it."""
    w, path = writer
    real = w._checked
    calls = 0

    def broken_once(outcomes: list[Any]) -> list[Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug")
        return real(outcomes)

    monkeypatch.setattr(w, "_checked", broken_once)
    with pytest.raises(RuntimeError, match="a bug"):
        w.run_blocking(_insert, "first", 1)
    assert w.run_blocking(_insert, "second", 2) == "second"
    assert sqlite3.connect(path).execute("SELECT v FROM t WHERE k='second'").fetchone() == (2,)


def test_a_stopped_writer_refuses_work(writer) -> None:
    w, _path = writer
    w.stop()
    with pytest.raises(WriterClosed):
        w.run_blocking(_insert, "late", 1)


def test_the_database_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    conn = connect(tmp_path / "p.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


async def test_loop_jobs_wait_out_another_process_holding_the_write_lock(writer) -> None:
    """The loop never sleeps on the lock: the batch moves to the writer thread, which waits."""
    w, path = writer
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (k, v) VALUES ('other', 0)")
    jobs = asyncio.gather(*(w.run(_insert, f"late{i}", i) for i in range(20)))
    # Had the loop waited for the lock itself, it could not get here to release it (the
    # other connection is on this thread): the jobs would fail after the 30 s busy timeout.
    await asyncio.sleep(0.2)
    assert not jobs.done()
    other.execute("COMMIT")
    keys = await asyncio.wait_for(jobs, timeout=10)
    assert sorted(keys) == sorted(f"late{i}" for i in range(20))
    count = sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone()[0]
    assert count == 21


async def test_loop_jobs_wait_for_another_process_holding_the_write_turn(writer) -> None:
    """The worker's transactions hold the database's write turn: the API's batches wait for it
    (on the writer thread) instead of writing in between, then all land."""
    w, path = writer
    other = WriteTurn(path)
    assert other.try_acquire()
    jobs = asyncio.gather(*(w.run(_insert, f"turn{i}", i) for i in range(20)))
    await asyncio.sleep(0.2)
    assert not jobs.done()
    other.release()
    keys = await asyncio.wait_for(jobs, timeout=10)
    assert sorted(keys) == sorted(f"turn{i}" for i in range(20))
    other.close()


async def test_blocking_and_loop_callers_at_once_all_land(writer) -> None:
    w, path = writer

    def blocking_callers() -> list[str]:
        return [w.run_blocking(_insert, f"b{i}", i) for i in range(100)]

    thread_side = asyncio.to_thread(blocking_callers)
    loop_side = asyncio.gather(*(w.run(_insert, f"l{i}", i) for i in range(300)))
    blocking_keys, loop_keys = await asyncio.wait_for(
        asyncio.gather(thread_side, loop_side), timeout=60
    )
    assert len(blocking_keys) == 100
    assert len(loop_keys) == 300
    rows = sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone()
    assert rows == (400,)


async def test_stop_answers_every_job_it_took(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _make_table(path)
    w = Writer(path).start()
    jobs = [asyncio.ensure_future(w.run(_insert, f"k{i}", i)) for i in range(50)]
    await asyncio.sleep(0)  # the first flush runs; the rest queue behind its commit
    w.stop()
    results = await asyncio.wait_for(asyncio.gather(*jobs, return_exceptions=True), timeout=30)
    landed = {row[0] for row in sqlite3.connect(path).execute("SELECT k FROM t")}
    for i, result in enumerate(results):
        if isinstance(result, WriterClosed):
            assert f"k{i}" not in landed
        else:
            assert result == f"k{i}"
            assert result in landed


def _insert_many_then_fail(conn: sqlite3.Connection, calls: object) -> list[tuple[bool, object]]:
    conn.execute("INSERT INTO t (k, v) VALUES ('half-done', 0)")
    raise RuntimeError("a bug half-way through the batch")


async def test_a_failing_batched_call_falls_back_to_one_job_at_a_time(writer) -> None:
    w, path = writer
    job = Batchable(one=_insert, many=_insert_many_then_fail)
    keys = await asyncio.gather(*(w.run(job, f"b{i}", i) for i in range(30)))
    assert sorted(keys) == sorted(f"b{i}" for i in range(30))
    keys_in_db = {row[0] for row in sqlite3.connect(path).execute("SELECT k FROM t")}
    assert keys_in_db == {f"b{i}" for i in range(30)}, "the half-done batch left nothing"


def test_a_failed_batch_on_the_thread_fails_its_jobs_and_the_writer_goes_on(
    writer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w, path = writer
    real_run_jobs = writer_module._run_jobs
    failures = iter([sqlite3.OperationalError("disk I/O error")])

    def run_jobs_failing_once(conn: sqlite3.Connection, jobs: list) -> list:
        error = next(failures, None)
        if error is not None:
            conn.execute("SAVEPOINT batch")
            conn.execute("INSERT INTO t (k, v) VALUES ('half-done', 0)")
            raise error
        return real_run_jobs(conn, jobs)

    monkeypatch.setattr(writer_module, "_run_jobs", run_jobs_failing_once)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        w.run_blocking(_insert, "lost", 1)
    assert w.run_blocking(_insert, "after", 2) == "after", "the writer thread must survive"
    keys = {row[0] for row in sqlite3.connect(path).execute("SELECT k FROM t")}
    assert keys == {"after"}, "the failed batch was rolled back"


def _rows_in_database_file(path: Path, tmp_path: Path) -> int:
    """Rows that reached the database file itself: a copy without its WAL holds only those."""
    copy = tmp_path / "file-only.db"
    copy.write_bytes(path.read_bytes())
    conn = sqlite3.connect(copy)
    try:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    except sqlite3.DatabaseError:  # copied while a checkpoint was writing it: not there yet
        return -1
    finally:
        conn.close()


async def test_commits_reach_the_database_file_through_background_checkpoints(
    writer,
    tmp_path: Path,
) -> None:
    w, path = writer
    # A few commits, far below the writer's own automatic checkpoint (BACKSTOP_CHECKPOINT_FRAMES).
    for n in range(3):
        await asyncio.gather(*(w.run(_insert, f"k{n}-{i}", i) for i in range(10)))
    for _ in range(100):  # up to 5 s: checkpoints run at most every CHECKPOINT_EVERY_SECONDS
        if _rows_in_database_file(path, tmp_path) == 30:
            break
        await asyncio.sleep(0.05)
    assert _rows_in_database_file(path, tmp_path) == 30
    assert w.checkpoints >= 1


def test_stop_ends_the_checkpoint_thread(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    _make_table(path)
    w = Writer(path).start()
    w.run_blocking(_insert, "a", 1)
    w.stop()
    assert not [t for t in threading.enumerate() if t.name == "db-checkpoint" and t.is_alive()]
