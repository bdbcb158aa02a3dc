"""The single database writer: one connection, one transaction at a time, group commit.

Every write in the API process goes through here. Jobs queue up while the previous commit is
being fsynced; then ONE `BEGIN IMMEDIATE` transaction runs all queued jobs, each in its own
savepoint (a refused job leaves no trace, the others still commit), commits once and only then
answers every job. So each acknowledged change is durable, writers never see `database is
locked`, and concurrent requests for one SKU or one operation_id are serialized without retries.

Who runs what (measured: see docs/performance.md). The writer thread owns the transaction
boundaries, the parts that block: `BEGIN IMMEDIATE` (may wait for another process's lock) and
`COMMIT` (the fsync). The jobs' statements themselves are short, CPU-only work on pages already
in memory; jobs submitted with `run()` execute them on their own event loop, in one callback per
batch, while the writer thread waits. Running them on the writer thread instead made the two
threads fight over the GIL at every statement (sqlite3 releases it around each call), and that
convoy, not SQLite, was the hot path's largest cost. Jobs from `run_blocking()` (commands,
tests: no event loop) run on the writer thread. Either way the connection is used by one thread
at a time, and the transaction is the same.
"""

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import structlog

from store_service.db import connect

T = TypeVar("T")
Job = tuple[
    Callable[..., Any], tuple[Any, ...], dict[str, Any], "asyncio.AbstractEventLoop | None", Any
]
Outcome = tuple[bool, Any]

log = structlog.get_logger(__name__)

_STOP = object()
# How long the writer waits for an event loop to run its share of a batch before failing those
# jobs (a loop that stopped running without closing). Far above any real batch (milliseconds).
LOOP_HANDOFF_TIMEOUT = 30.0


class WriterClosed(RuntimeError):
    """The writer was stopped; nothing more is accepted."""


class WriterTimeout(RuntimeError):
    """An event loop did not run its jobs in time; they were not applied."""


class _Handoff:
    """One loop's share of a batch: run on that loop exactly once, or abandoned by the writer."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self.outcomes: list[Outcome] | None = None
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._state = "posted"

    def run(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if self._state != "posted":
                return  # already run, or abandoned by the writer
            self._state = "running"
        try:
            self.outcomes = _run_jobs(conn, self.jobs)
        finally:
            self.done.set()

    def abandon(self) -> bool:
        """Give up if the loop has not started; False if it is running (then wait for it)."""
        with self._lock:
            if self._state == "posted":
                self._state = "abandoned"
                return True
            return False


class Writer:
    """Runs `fn(conn, *args, **kwargs)` jobs in group-committed transactions on one connection."""

    def __init__(self, path: Path, *, max_batch: int = 512) -> None:
        self._path = path
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._posted: dict[asyncio.AbstractEventLoop, _Handoff] = {}
        self._closed = False
        self.commits = 0
        self.jobs = 0

    def start(self) -> "Writer":
        self._conn = connect(self._path)
        self._thread = threading.Thread(target=self._run, args=(self._conn,), name="db-writer")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Finish what is queued, then close."""
        if self._thread is None or self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        # Called on an event loop (a lifespan): that loop is blocked here, so run whatever the
        # writer hands to it from here, or the writer would wait for it forever.
        for _ in range(int(30 / 0.02)):
            if loop is not None and (handoff := self._posted.get(loop)) is not None:
                assert self._conn is not None
                handoff.run(self._conn)
            self._thread.join(timeout=0.02)
            if not self._thread.is_alive():
                break

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, *args, **kwargs)` in the next group transaction; return once committed."""
        if self._closed:
            raise WriterClosed("the database writer is stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, args, kwargs, loop, future))
        return await future

    def run_blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """The same as `run`, for callers outside an event loop (commands, tests)."""
        if self._closed:
            raise WriterClosed("the database writer is stopped")
        future: Future[T] = Future()
        self._queue.put((fn, args, kwargs, None, future))
        return future.result()

    def _run(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch: list[Job] = [first]
                stop_after = False
                while len(batch) < self._max_batch:
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is _STOP:
                        stop_after = True
                        break
                    batch.append(job)
                self._commit_batch(conn, batch)
                if stop_after:
                    return
        finally:
            conn.close()

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[Job]) -> None:
        outcomes: dict[int, Outcome] = {}
        try:
            conn.execute("BEGIN IMMEDIATE")
            by_loop: dict[asyncio.AbstractEventLoop | None, list[int]] = {}
            for index, job in enumerate(batch):
                by_loop.setdefault(job[3], []).append(index)
            for loop, indexes in by_loop.items():
                jobs = [batch[i] for i in indexes]
                results = _run_jobs(conn, jobs) if loop is None else self._on_loop(loop, jobs)
                outcomes.update(zip(indexes, results, strict=True))
            conn.execute("COMMIT")
        except Exception as exc:
            # The commit itself failed (disk full, I/O error): nothing in the batch is durable.
            log.error("writer_commit_failed", error=repr(exc), jobs=len(batch))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = dict.fromkeys(range(len(batch)), (False, exc))
        self.commits += 1
        self.jobs += len(batch)
        _deliver(batch, [outcomes[i] for i in range(len(batch))])

    def _on_loop(self, loop: asyncio.AbstractEventLoop, jobs: list[Job]) -> list[Outcome]:
        """Have `loop` run these jobs on this connection now, and wait until it has."""
        handoff = _Handoff(jobs)
        self._posted[loop] = handoff
        try:
            try:
                loop.call_soon_threadsafe(handoff.run, self._conn)
            except RuntimeError:  # a closed loop: its callers are gone
                handoff.abandon()
                return [(False, WriterClosed("the caller's event loop is closed"))] * len(jobs)
            if not handoff.done.wait(LOOP_HANDOFF_TIMEOUT) and handoff.abandon():
                error = WriterTimeout("the event loop did not run its database jobs")
                return [(False, error)] * len(jobs)
            handoff.done.wait()
            assert handoff.outcomes is not None
            return handoff.outcomes
        finally:
            self._posted.pop(loop, None)


def _run_jobs(conn: sqlite3.Connection, jobs: list[Job]) -> list[Outcome]:
    """Run each job in its own savepoint inside the open transaction."""
    outcomes: list[Outcome] = []
    execute = conn.execute
    for fn, args, kwargs, _loop, _future in jobs:
        execute("SAVEPOINT job")
        try:
            result = fn(conn, *args, **kwargs)
        except Exception as exc:
            execute("ROLLBACK TO job")
            execute("RELEASE job")
            outcomes.append((False, exc))
        else:
            execute("RELEASE job")
            outcomes.append((True, result))
    return outcomes


def _deliver(batch: list[Job], outcomes: list[Outcome]) -> None:
    """Answer every job; one wake-up per event loop rather than one per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, bool, Any]]] = {}
    for (_fn, _args, _kwargs, loop, future), (ok, value) in zip(batch, outcomes, strict=True):
        if loop is None:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        else:
            by_loop.setdefault(loop, []).append((future, ok, value))
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: its callers are gone
            loop.call_soon_threadsafe(_settle, items)


def _settle(items: list[tuple[Any, bool, Any]]) -> None:
    for future, ok, value in items:
        if future.done():
            continue  # the caller was cancelled; the write is committed all the same
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
