"""SQLite connections with the pragmas that make a commit durable, transactions, and the
migration entry point."""

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import Histogram

from store_service.config import Settings
from store_service.domain import SqliteSynchronous

if TYPE_CHECKING:
    from alembic.config import Config

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30_000  # how long a statement waits for another connection's write lock
IN_CHUNK = 500  # values per `IN (...)` list: far below SQLite's 32,766 host parameters

# Registered by each process's metrics (the API's /metrics, the worker's port): one process,
# one writer role, so no label. Only acquisitions that found the lock taken are observed.
WRITE_LOCK_WAIT = Histogram(
    "store_sqlite_write_lock_wait_seconds",
    "Time a write transaction waited for the SQLite write lock another connection held.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=None,
)


def async_url(url: str) -> str:
    """The aiosqlite form of a SQLite URL (what Alembic's async environment connects with)."""
    from sqlalchemy.engine import make_url  # here: SQLAlchemy is slow to import, needed to migrate

    parsed = make_url(url)
    return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)


class WriteTurn:
    """Whose turn it is to write: an exclusive `flock` on a file beside the database, which
    every store connection that writes holds from BEGIN IMMEDIATE to COMMIT.

    Why: SQLite's own write lock has no queue. A connection that finds it taken sleeps in
    SQLite's busy handler (1, 2, 5, 10 ... up to 100 ms between tries) and only gets it if it
    happens to try in a gap; under a busy API the sync worker starved, and the API's commits
    waited out those sleeps behind the worker's transactions (docs/performance.md, (e)). A
    process waiting for the turn tries again within a millisecond of the holder letting go,
    and the API's writer (`first`) goes first: while it waits it holds a shared lock on a
    second file, and the others take no new turn until it has had its own, so a till waits
    for at most the worker's current transaction, not for its next ones too.
    SQLite's lock still decides correctness: a connection that does not take the turn
    (migrations, tools) is waited for with busy_timeout as before.

    A holder stopped mid-transaction (SIGSTOP) holds the turn until it continues or dies, as it
    holds SQLite's lock; a waiter gives up after busy_timeout's 30 s either way, and the kernel
    releases both when a process dies.
    """

    def __init__(self, database: Path) -> None:
        self._fd: int | None = os.open(
            f"{database}-writeturn", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        # Held shared by a first writer while it waits: the others let it go first.
        self._want: int | None = os.open(
            f"{database}-writewant", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        # The API's writer: its commits answer tills, the worker's can wait a transaction.
        self.first = False

    def try_acquire(self) -> bool:
        if self._fd is None:
            return True
        if not self.first and not self._nobody_waiting_first():
            return False
        return _try_flock(self._fd, fcntl.LOCK_EX)

    def _nobody_waiting_first(self) -> bool:
        assert self._want is not None
        if not _try_flock(self._want, fcntl.LOCK_EX):
            return False
        fcntl.flock(self._want, fcntl.LOCK_UN)
        return True

    def acquire(self, timeout: float = BUSY_TIMEOUT_MS / 1000) -> None:
        """Wait for the turn, at most `timeout` seconds (as SQLite's busy_timeout bounds its
        own wait), then fail as SQLite does: `database is locked` (SQLITE_BUSY). Polled with
        short sleeps, not a blocking flock: a holder stopped mid-transaction (SIGSTOP, a hung
        disk) must not hold the waiter for ever. A first writer says it is waiting, so the
        others' next transaction waits until it has had its turn."""
        if self._fd is None:
            return
        deadline = time.monotonic() + timeout
        if not self.first:
            _poll(self.try_acquire, deadline, most=0.001)
            return
        want = self._want
        assert want is not None
        _poll(lambda: _try_flock(want, fcntl.LOCK_SH), deadline, most=0.0002)
        try:
            _poll(self.try_acquire, deadline, most=0.0002)
        finally:
            fcntl.flock(want, fcntl.LOCK_UN)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        for fd in (self._fd, self._want):
            if fd is not None:
                os.close(fd)  # also lets go of its lock
        self._fd = self._want = None


def _try_flock(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _poll(attempt: Callable[[], bool], deadline: float, *, most: float) -> None:
    """Call `attempt` until it succeeds, sleeping 0.05 ms doubling to `most` between tries;
    past `deadline` fail as SQLite does when its busy_timeout runs out."""
    pause = 0.00005
    while not attempt():
        if time.monotonic() >= deadline:
            busy = sqlite3.OperationalError("database is locked (write turn)")
            busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
            busy.sqlite_errorname = "SQLITE_BUSY"
            raise busy
        time.sleep(pause)
        pause = min(pause * 2, most)


class StoreConnection(sqlite3.Connection):
    """A store connection; one that writes carries the database's WriteTurn."""

    write_turn: WriteTurn | None = None

    def close(self) -> None:
        super().close()
        if self.write_turn is not None:
            self.write_turn.close()


def open_write_turn(path: Path) -> WriteTurn | None:
    """The database's WriteTurn, or None where the file cannot be made (a read-only or
    vanished directory): writes then wait on SQLite's lock alone, and fail as they would."""
    try:
        return WriteTurn(path)
    except OSError:
        return None


def connect(
    path: Path,
    *,
    readonly: bool = False,
    synchronous: SqliteSynchronous = SqliteSynchronous.FULL,
) -> sqlite3.Connection:
    """Open the store database in WAL mode with synchronous=FULL.

    FULL fsyncs the WAL on every commit, so an acknowledged change survives power loss, not
    only a process crash (NORMAL in WAL mode may lose the last commits on power loss). Every
    connection of a process takes the same `synchronous` (`Settings.sqlite_synchronous`): a
    read-only one too, since the last connection to close checkpoints with its own setting.
    `isolation_level=None` leaves transactions to explicit BEGIN IMMEDIATE, which takes the
    write lock up front and so never fails half-way with `database is locked`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        timeout=BUSY_TIMEOUT_MS / 1000,
        factory=StoreConnection,
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.write_turn = open_write_turn(path)
    conn.execute(f"PRAGMA synchronous = {synchronous.pragma}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def warn_if_unsafe(synchronous: SqliteSynchronous) -> None:
    """Say loudly, once per process at start, that commits are not made durable."""
    if synchronous is not SqliteSynchronous.FULL:
        structlog.get_logger(__name__).warning(
            "sqlite_synchronous_unsafe",
            setting=synchronous.value,
            effect="commits are not fsynced: power loss loses acknowledged changes (tests only)",
        )


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT: takes the write lock up front (waits on busy_timeout).

    For connections outside the API's writer (the worker, commands, tests): the worker wraps
    a few calls in one, so the API's writer waits for milliseconds, not for a central round
    trip.
    """
    turn = write_turn(conn)
    begin_immediate(conn, turn=turn)
    try:
        yield conn
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:  # the body raised, or COMMIT failed: nothing of it is kept
            with contextlib.suppress(sqlite3.Error):  # the error that got here stands
                conn.execute("ROLLBACK")
        if turn is not None:
            turn.release()


def write_turn(conn: sqlite3.Connection) -> WriteTurn | None:
    return getattr(conn, "write_turn", None)


def begin_without_waiting(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE that fails at once (SQLITE_BUSY) instead of sleeping for the lock."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def is_busy(exc: BaseException) -> bool:
    return (
        isinstance(exc, sqlite3.OperationalError)
        # The primary code: SQLITE_BUSY_SNAPSHOT, _RECOVERY and _TIMEOUT are busy too.
        and (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_BUSY
    )


def begin_immediate(
    conn: sqlite3.Connection, *, turn: WriteTurn | None = None, busy_since: float | None = None
) -> None:
    """Take `turn` (if any), then BEGIN IMMEDIATE, waiting if another connection writes; a wait
    is observed in WRITE_LOCK_WAIT (from `busy_since` when the caller found the lock taken).
    On failure the turn is let go again."""
    if busy_since is not None:  # the caller found it taken: wait for the turn, then the lock
        if turn is not None:
            turn.acquire()
    elif turn is not None and not turn.try_acquire():
        busy_since = time.perf_counter()
        turn.acquire()
    else:  # the turn is ours (or there is none): the lock is free unless a turnless writer has it
        try:
            begin_without_waiting(conn)
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                if turn is not None:
                    turn.release()
                raise
        busy_since = time.perf_counter()
    try:
        conn.execute("BEGIN IMMEDIATE")
    except BaseException:
        if turn is not None:
            turn.release()
        raise
    WRITE_LOCK_WAIT.observe(time.perf_counter() - busy_since)


def sql_list(values: Iterable[StrEnum]) -> str:
    """`('a','b')`: a vocabulary as an SQL list literal, for the statements built at import."""
    return "(" + ",".join(f"'{value.value}'" for value in values) + ")"


def select_in(conn: sqlite3.Connection, sql: str, values: Iterable[Any]) -> Iterator[Any]:
    """The rows of `sql`, whose `{marks}` stands for an `IN (...)` list, for the distinct
    `values`: one query per IN_CHUNK of them."""
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), IN_CHUNK):
        chunk = unique[start : start + IN_CHUNK]
        yield from conn.execute(sql.format(marks=",".join("?" * len(chunk))), chunk)


def alembic_config(database_url: str) -> "Config":
    from alembic.config import Config  # imported here: Alembic is slow to import, needed once

    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    return config


SCHEMA_REVISION = "0006"
"""The newest migration's revision (tests/unit/test_migrations.py holds it to Alembic's head)."""


def schema_revision(path: Path) -> str | None:
    """The revision the database at `path` is at (None: no file, or never migrated)."""
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()
    return None if row is None else str(row[0])


def migrate(settings: Settings) -> None:
    """Bring the database named by the settings to the newest schema.

    At the newest already, it returns without importing Alembic and SQLAlchemy, which took
    over a second of every start (docs/performance.md, "(f) Recovery").
    """
    if schema_revision(settings.database_path) == SCHEMA_REVISION:
        return
    from alembic import command

    settings.database_path.parent.mkdir(parents=True, exist_ok=True)
    config = alembic_config(settings.database_url)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(config, "head")
        return
    raise RuntimeError("migrate() runs Alembic's own event loop: call it via asyncio.to_thread")
