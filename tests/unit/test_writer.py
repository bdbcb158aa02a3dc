"""The single writer: group commit, isolation between jobs, durability of acknowledged work."""

import asyncio
import sqlite3
from pathlib import Path

import pytest

from store_service.db import connect
from store_service.writer import Writer, WriterClosed


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
def writer(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "w.db"
    _make_table(path)
    w = Writer(path).start()
    yield w, path
    w.stop()


async def test_concurrent_jobs_share_commits_and_all_land(writer) -> None:  # type: ignore[no-untyped-def]
    w, path = writer
    keys = await asyncio.gather(*(w.run(_insert, f"k{i}", i) for i in range(300)))
    assert sorted(keys) == sorted(f"k{i}" for i in range(300))
    assert w.commits < 300, "jobs queued together should share a commit"
    rows = sqlite3.connect(path).execute("SELECT count(*), sum(v) FROM t").fetchone()
    assert rows == (300, sum(range(300)))


async def test_a_failing_job_leaves_no_trace_and_does_not_sink_its_batch(writer) -> None:  # type: ignore[no-untyped-def]
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


async def test_a_constraint_violation_is_returned_to_its_caller_only(writer) -> None:  # type: ignore[no-untyped-def]
    w, _path = writer
    await w.run(_insert, "dup", 1)
    with pytest.raises(sqlite3.IntegrityError):
        await w.run(_insert, "dup", 2)
    assert await w.run(_insert, "after", 3) == "after"


def test_blocking_callers_are_served_too(writer) -> None:  # type: ignore[no-untyped-def]
    w, path = writer
    assert w.run_blocking(_insert, "x", 9) == "x"
    assert sqlite3.connect(path).execute("SELECT v FROM t WHERE k='x'").fetchone() == (9,)


def test_a_stopped_writer_refuses_work(writer) -> None:  # type: ignore[no-untyped-def]
    w, _path = writer
    w.stop()
    with pytest.raises(WriterClosed):
        w.run_blocking(_insert, "late", 1)


def test_the_database_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    conn = connect(tmp_path / "p.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
