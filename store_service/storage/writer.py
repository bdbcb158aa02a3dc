"""The single database writer: one connection, one transaction at a time, group commit.

Every write in the API process goes through here. Jobs queue up while the previous commit is
being fsynced; then ONE `BEGIN IMMEDIATE` transaction runs all queued jobs, each in its own
savepoint (a refused job leaves no trace, the others still commit), commits once and only then
answers every job. So each acknowledged change is durable, writers never see `database is
locked`, and concurrent requests for one SKU or one operation_id are serialized without retries.

Who runs what (measured: see docs/performance.md). Jobs submitted with `run()` are batched on
their own event loop: one flush, a loop callback, opens the transaction, runs every waiting job
and hands the COMMIT (the fsync, the one slow part) to the writer thread, which answers the
batch back on the loop; jobs arriving meanwhile wait for the next flush. The statements are
short, CPU-only work on cached pages, so the loop runs them without waiting on anything:
running them on the thread made the two threads fight over the GIL at every statement (sqlite3
releases it around each call), and every extra hop between thread and loop added a loop turn to
each request's latency. The loop never waits for the write lock either: if another process holds
it (the sync worker recording outcomes), the batch goes to the thread, which waits, runs and
commits it there. Jobs from `run_blocking()` (commands, tests: no event loop) run on the thread.
A lock says who owns the transaction, so the connection is used by one thread at a time.

WAL checkpoints (copying committed pages from the WAL back into the database file) run on a
thread and connection of their own, a few times a second while commits happen, so a group
commit is the WAL append and its fsync only: inside a commit, SQLite's automatic checkpoint
made every ~14th commit 3-8 times longer than the others, and the requests waiting on it the
slowest (docs/performance.md, "The update path: decisions and their reasons"). The writer's
automatic checkpoint stays as a backstop at a larger WAL: it copies only what the background
checkpoints have not, and lets the WAL start over should they never catch up between two commits.
"""

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog

from store_service.domain import SqliteSynchronous
from store_service.storage.db import (
    begin_immediate,
    begin_without_waiting,
    connect,
    is_busy,
    write_turn,
)
from store_service.storage.faults import StorageFaults, classify

T = TypeVar("T")
Job = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]
Outcome = tuple[bool, Any]
Call = tuple[tuple[Any, ...], dict[str, Any]]  # one job's (args, kwargs)
LoopBatch = list[tuple[Job, "asyncio.Future[Any]"]]

log = structlog.get_logger(__name__)

_STOP = "stop"
_COMMIT = "commit"  # a loop's batch, run and waiting for its COMMIT on the thread
_LOOP_BATCH = "loop-batch"  # a loop's batch that found the write lock taken: the thread runs it
_BLOCKING = "blocking"  # one job from run_blocking()
# How long a loop's flush waits before trying again when the thread holds the transaction.
RETRY_FLUSH_SECONDS = 0.001
# At most one background checkpoint per this many seconds, while commits happen.
CHECKPOINT_EVERY_SECONDS = 0.25
# The writer connection's own automatic checkpoint, in WAL frames (SQLite's default is 1,000).
BACKSTOP_CHECKPOINT_FRAMES = 4_000


@dataclass(frozen=True, slots=True)
class Batchable(Generic[T]):
    """A job that can also run many of its calls at once.

    `one(conn, *args, **kwargs)` is the job itself (calling a Batchable calls it); `many(conn,
    calls)` runs consecutive calls of the same Batchable in a batch together and returns one
    outcome per call, `(True, result)` or `(False, refusal)`, writing nothing for a refused
    call and giving exactly the outcomes `one` would give in order. If `many` raises, the
    batch is undone and every job runs again on its own.
    """

    one: Callable[..., T]
    many: Callable[[sqlite3.Connection, Sequence[Call]], list[Outcome]]

    def __call__(self, conn: sqlite3.Connection, *args: Any, **kwargs: Any) -> T:
        return self.one(conn, *args, **kwargs)


class WriterClosed(RuntimeError):
    """The writer was stopped; nothing more is accepted."""


class _LoopBatcher:
    """The jobs of one event loop waiting for its next flush. Used only on that loop."""

    def __init__(self, writer: "Writer", loop: asyncio.AbstractEventLoop) -> None:
        self.writer = writer
        self.loop = loop
        self.pending: LoopBatch = []
        self.busy = False  # a flush is scheduled, or its batch is not committed yet

    def submit(self, job: Job, future: "asyncio.Future[Any]") -> None:
        self.pending.append((job, future))
        if not self.busy:
            self.busy = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        size = self.writer.max_batch
        batch, self.pending = self.pending[:size], self.pending[size:]
        if batch:
            self.writer._flush_on_loop(self, batch)
        else:
            self.busy = False

    def retry_later(self, batch: LoopBatch) -> None:
        self.pending[:0] = batch
        self.loop.call_later(RETRY_FLUSH_SECONDS, self.flush)

    def committed(self, batch: LoopBatch, outcomes: list[Outcome]) -> None:
        """Called on the loop once the batch's transaction ended: answer, then flush the next."""
        _settle([future for _job, future in batch], self.writer._checked(outcomes))
        self.busy = False
        if self.pending:
            self.busy = True
            self.flush()


class Writer:
    """Runs `fn(conn, *args, **kwargs)` jobs in group-committed transactions on one connection."""

    def __init__(
        self,
        path: Path,
        *,
        max_batch: int = 512,
        synchronous: SqliteSynchronous = SqliteSynchronous.FULL,
    ) -> None:
        self._path = path
        self._synchronous = synchronous
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._txn = threading.Lock()  # held from BEGIN until COMMIT/ROLLBACK, by loop or thread
        self._batchers: dict[asyncio.AbstractEventLoop, _LoopBatcher] = {}
        self._closed = False
        self._checkpoint_due = threading.Event()  # set after each commit
        self._checkpoints_stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self.commits = 0
        self.jobs = 0
        self.checkpoints = 0
        self.faults = StorageFaults()  # a full disk, a read-only or vanished file
        self._changes_seen = 0

    def start(self) -> "Writer":
        self._conn = connect(self._path, synchronous=self._synchronous)
        self._conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_CHECKPOINT_FRAMES}")
        turn = write_turn(self._conn)
        if turn is not None:
            turn.first = True  # a waiting till goes before the worker's next transaction
        # Before any thread starts: a failure stops here.
        checkpoint_conn = connect(self._path, synchronous=self._synchronous)
        self._thread = threading.Thread(target=self._run, args=(self._conn,), name="db-writer")
        self._thread.daemon = True
        self._thread.start()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_run, args=(checkpoint_conn,), name="db-checkpoint"
        )
        self._checkpointer.daemon = True
        self._checkpointer.start()
        return self

    def stop(self) -> None:
        """Finish what is queued, then close."""
        if self._thread is None or self._closed:
            return
        self._closed = True
        self._queue.put((_STOP,))
        self._thread.join(timeout=30)
        self._batchers.clear()
        if self._checkpointer is not None:
            self._checkpoints_stop.set()
            self._checkpoint_due.set()
            self._checkpointer.join(timeout=30)

    # --- on the checkpoint thread --------------------------------------------------------

    def _checkpoint_run(self, conn: sqlite3.Connection) -> None:
        """PASSIVE checkpoints after commits, at most one per CHECKPOINT_EVERY_SECONDS. PASSIVE
        never waits for or blocks the writer: it copies what is committed and stops."""
        try:
            while True:
                self._checkpoint_due.wait()
                if self._checkpoints_stop.is_set():
                    return
                self._checkpoint_due.clear()
                try:
                    busy, _frames, _copied = conn.execute(
                        "PRAGMA wal_checkpoint(PASSIVE)"
                    ).fetchone()
                    if not busy:  # busy: another connection was checkpointing; next time
                        self.checkpoints += 1
                except sqlite3.Error as exc:  # the writer's backstop checkpoint still runs
                    if classify(exc) is None:  # a full disk is reported by the writes it fails
                        log.warning("wal_checkpoint_failed", error=repr(exc))
                if self._checkpoints_stop.wait(CHECKPOINT_EVERY_SECONDS):
                    return
        finally:
            conn.close()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, *args, **kwargs)` in the next group transaction; return once committed."""
        if self._closed:
            raise WriterClosed("the database writer is stopped")
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = _LoopBatcher(self, loop)
        future: asyncio.Future[T] = loop.create_future()
        batcher.submit((fn, args, kwargs), future)
        return await future

    def run_blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """The same as `run`, for callers outside an event loop (commands, tests)."""
        if self._closed:
            raise WriterClosed("the database writer is stopped")
        future: Future[T] = Future()
        self._queue.put((_BLOCKING, (fn, args, kwargs), future))
        return future.result()

    # --- on the event loop ---------------------------------------------------------------

    def _flush_on_loop(self, batcher: _LoopBatcher, batch: LoopBatch) -> None:
        if self._closed:
            closed = (False, WriterClosed("the database writer is stopped"))
            batcher.committed(batch, [closed] * len(batch))
            return
        if not self._txn.acquire(blocking=False):
            batcher.retry_later(batch)  # the thread is in a transaction: rare, and short
            return
        conn = self._conn
        assert conn is not None
        turn = write_turn(conn)
        if turn is not None and not turn.try_acquire():
            # Another process writes: the thread waits for its turn (the loop never blocks).
            self._txn.release()
            self._queue.put((_LOOP_BATCH, batcher, batch, time.perf_counter()))
            return
        try:
            begin_without_waiting(conn)
        except Exception as exc:
            self._release(conn)
            if is_busy(exc):  # a writer without a turn (a migration, a tool): the thread waits
                self._queue.put((_LOOP_BATCH, batcher, batch, time.perf_counter()))
            else:
                batcher.committed(batch, [(False, exc)] * len(batch))
            return
        outcomes = _run_batch(conn, [job for job, _future in batch])
        if not conn.in_transaction:  # the batch was given up: nothing to commit
            self._release(conn)
            batcher.committed(batch, outcomes)
            return
        self._queue.put((_COMMIT, batcher, batch, outcomes))

    # --- on the writer thread ------------------------------------------------------------

    def _run(self, conn: sqlite3.Connection) -> None:
        backlog: deque[tuple[Any, ...]] = deque()
        stopping = False
        try:
            while True:
                if backlog:
                    item = backlog.popleft()
                elif stopping:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        # Wait out a loop's batch still on its way to COMMIT, then keep the
                        # lock: nothing may open a transaction on the closing connection.
                        self._acquire_transaction(backlog)
                        if not backlog:
                            return
                        self._txn.release()
                        continue
                else:
                    item = self._queue.get()
                if item[0] == _STOP:
                    stopping = True
                    continue
                # Blocking calls queued together share one transaction.
                items = [item]
                while item[0] == _BLOCKING and backlog and backlog[0][0] == _BLOCKING:
                    items.append(backlog.popleft())
                try:
                    self._serve(conn, items, backlog)
                except Exception as exc:
                    # A bug, not a storage condition (those are outcomes): answer the items'
                    # callers with it and keep serving, rather than leave them waiting and every
                    # later write with a dead thread.
                    log.exception("writer_item_failed", kind=item[0])
                    for served in items:
                        _fail(served, exc)
        finally:
            conn.close()

    def _serve(
        self,
        conn: sqlite3.Connection,
        items: list[tuple[Any, ...]],
        backlog: deque[tuple[Any, ...]],
    ) -> None:
        """One commit, one loop batch, or a run of blocking calls (`items`)."""
        kind, *rest = items[0]
        if kind == _COMMIT:
            self._commit_loop_batch(conn, *rest)
        elif kind == _LOOP_BATCH:
            batcher, batch, busy_since = rest
            self._acquire_transaction(backlog)
            jobs = [job for job, _future in batch]
            outcomes = self._run_in_transaction(conn, jobs, busy_since=busy_since)
            _answer_loop(batcher, batch, outcomes)
        else:
            self._acquire_transaction(backlog)
            outcomes = self._run_in_transaction(conn, [job for _k, job, _f in items])
            _settle([future for _kind, _job, future in items], self._checked(outcomes))

    def _checked(self, outcomes: list[Outcome]) -> list[Outcome]:
        """The outcomes with storage failures (disk full, read-only, vanished file, I/O error)
        as `StorageUnavailable`, recorded in `faults`; a batch that wrote and committed clears
        any condition. Runs on whichever thread answers the batch."""
        storage_failed = False
        checked: list[Outcome] = []
        for ok, value in outcomes:
            if not ok and classify(value) is not None:
                value = self.faults.failed(value)
                storage_failed = True
            checked.append((ok, value))
        conn = self._conn
        if conn is None:
            return checked
        try:
            changes = conn.total_changes
        except sqlite3.ProgrammingError:  # closed by stop(): nothing more to learn
            return checked
        before = self._changes_seen
        self._changes_seen = changes
        # Only a batch that wrote rows and committed them proves the disk takes writes again
        # (a replay or a refusal writes nothing).
        wrote = changes != before and any(ok for ok, _value in outcomes)
        if wrote and not storage_failed:
            self.faults.succeeded()
        return checked

    def _acquire_transaction(self, backlog: deque[tuple[Any, ...]]) -> None:
        """Take the transaction lock. A loop may hold it with its COMMIT queued behind whatever
        the thread is doing: serve commits while waiting, keep everything else for later."""
        while not self._txn.acquire(timeout=0.005):
            try:
                item = self._queue.get(timeout=0.005)
            except queue.Empty:
                continue
            if item[0] == _COMMIT:
                assert self._conn is not None
                self._commit_loop_batch(self._conn, item[1], item[2], item[3])
            else:
                backlog.append(item)

    def _commit_loop_batch(
        self,
        conn: sqlite3.Connection,
        batcher: _LoopBatcher,
        batch: LoopBatch,
        outcomes: list[Outcome],
    ) -> None:
        try:
            outcomes = _commit(conn, outcomes)
        finally:
            self._release(conn)
        self._transaction_ended(len(batch))
        _answer_loop(batcher, batch, outcomes)

    def _transaction_ended(self, jobs: int) -> None:
        """Count a group transaction and wake the checkpoint thread: called after every one."""
        self._checkpoint_due.set()
        self.commits += 1
        self.jobs += jobs

    def _run_in_transaction(
        self, conn: sqlite3.Connection, jobs: list[Job], *, busy_since: float | None = None
    ) -> list[Outcome]:
        """BEGIN (waiting for the lock), run, COMMIT: all on this thread; the caller holds _txn.
        `busy_since`: when the loop found the lock taken (the wait is measured from then)."""
        try:
            begin_immediate(conn, turn=write_turn(conn), busy_since=busy_since)
        except Exception as exc:
            self._txn.release()  # begin_immediate let go of the turn
            return [(False, exc)] * len(jobs)
        try:
            outcomes = _run_batch(conn, jobs)
            if conn.in_transaction:
                outcomes = _commit(conn, outcomes)
        finally:
            self._release(conn)
        self._transaction_ended(len(jobs))
        return outcomes

    def _release(self, conn: sqlite3.Connection) -> None:
        """The transaction is over (committed or rolled back): let go of the database's write
        turn, then of the transaction lock."""
        turn = write_turn(conn)
        if turn is not None:
            turn.release()
        self._txn.release()


def _commit(conn: sqlite3.Connection, outcomes: list[Outcome]) -> list[Outcome]:
    """COMMIT the open transaction; if that fails nothing in it is durable, so every job fails."""
    try:
        conn.execute("COMMIT")
    except Exception as exc:
        # The commit itself failed (disk full, I/O error): nothing in the batch is durable.
        if classify(exc) is None:  # storage conditions are logged once, by Writer.faults
            log.error("writer_commit_failed", error=repr(exc), jobs=len(outcomes))
        if conn.in_transaction:
            # Best effort: the COMMIT's error is the one the jobs get.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        return [(False, exc)] * len(outcomes)
    return outcomes


def _run_batch(conn: sqlite3.Connection, jobs: list[Job]) -> list[Outcome]:
    """`_run_jobs` in the open transaction, for the loop and the thread alike. If the batch's
    own statements fail (a savepoint's I/O error), the transaction is rolled back and every
    job fails with that error; callers see it as `conn.in_transaction` being false."""
    try:
        return _run_jobs(conn, jobs)
    except Exception as exc:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        return [(False, exc)] * len(jobs)


def _run_jobs(conn: sqlite3.Connection, jobs: list[Job]) -> list[Outcome]:
    """Run each job inside the open transaction; a failed job leaves nothing behind.

    Jobs run without a savepoint each: a job that refuses (stale version, reused id) raises
    before it writes, so there is nothing to undo, and two statements per job are saved; a run
    of consecutive calls to one Batchable goes to its `many` in one go. Only if a job raised
    after writing (the connection's change count moved), or a `many` raised, is the batch undone
    to its start and run again with a savepoint per job.
    """
    conn.execute("SAVEPOINT batch")
    outcomes: list[Outcome] = []
    index = 0
    while index < len(jobs):
        fn, args, kwargs = jobs[index]
        end = index + 1
        if isinstance(fn, Batchable):
            while end < len(jobs) and jobs[end][0] is fn:
                end += 1
        before = conn.total_changes
        try:
            if end - index > 1:
                assert isinstance(fn, Batchable)
                outcomes.extend(fn.many(conn, [(a, k) for _fn, a, k in jobs[index:end]]))
            else:
                outcomes.append((True, fn(conn, *args, **kwargs)))
        except Exception as exc:
            if not conn.in_transaction:  # the error ended the transaction (e.g. disk full)
                return [(False, exc)] * len(jobs)
            if end - index > 1 or conn.total_changes != before:
                conn.execute("ROLLBACK TO batch")
                outcomes = _run_jobs_with_savepoints(conn, jobs)
                break
            outcomes.append((False, exc))
        index = end
    conn.execute("RELEASE batch")
    return outcomes


def _run_jobs_with_savepoints(conn: sqlite3.Connection, jobs: list[Job]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    execute = conn.execute
    for fn, args, kwargs in jobs:
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


def _fail(item: tuple[Any, ...], exc: Exception) -> None:
    """Answer every caller of a queued item with `exc` (a loop batch, or one blocking call)."""
    if item[0] in (_COMMIT, _LOOP_BATCH):
        _answer_loop(item[1], item[2], [(False, exc)] * len(item[2]))
    else:
        _settle([item[2]], [(False, exc)])


def _answer_loop(batcher: _LoopBatcher, batch: LoopBatch, outcomes: list[Outcome]) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: its callers are gone
        batcher.loop.call_soon_threadsafe(batcher.committed, batch, outcomes)


def _settle(futures: list["asyncio.Future[Any] | Future[Any]"], outcomes: list[Outcome]) -> None:
    for future, (ok, value) in zip(futures, outcomes, strict=True):
        if future.done():
            continue  # the caller was cancelled; the write is committed all the same
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
