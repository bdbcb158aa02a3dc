"""The single database writer: one thread, one connection, group commit.

Every write in the API process goes through here. Jobs queue up while the previous commit is
being fsynced; the thread then runs all queued jobs in ONE `BEGIN IMMEDIATE` transaction, each in
its own savepoint (a refused job leaves no trace, the others still commit), commits once and only
then answers every job. So each acknowledged change is durable, writers never see `database is
locked`, and concurrent requests for one SKU or one operation_id are serialized without retries.
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

log = structlog.get_logger(__name__)

_STOP = object()


class WriterClosed(RuntimeError):
    """The writer was stopped; nothing more is accepted."""


class Writer:
    """Runs `fn(conn, *args, **kwargs)` jobs in group-committed transactions on one thread."""

    def __init__(self, path: Path, *, max_batch: int = 512) -> None:
        self._path = path
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.commits = 0
        self.jobs = 0

    def start(self) -> "Writer":
        conn = connect(self._path)
        self._thread = threading.Thread(target=self._run, args=(conn,), name="db-writer")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Finish what is queued, then close."""
        if self._thread is None or self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

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
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, args, kwargs, _loop, _future in batch:
                conn.execute("SAVEPOINT job")
                try:
                    result = fn(conn, *args, **kwargs)
                except Exception as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((False, exc))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((True, result))
            conn.execute("COMMIT")
        except Exception as exc:
            # The commit itself failed (disk full, I/O error): nothing in the batch is durable.
            log.error("writer_commit_failed", error=repr(exc), jobs=len(batch))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(False, exc)] * len(batch)
        self.commits += 1
        self.jobs += len(batch)
        _deliver(batch, outcomes)


def _deliver(batch: list[Job], outcomes: list[tuple[bool, Any]]) -> None:
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
