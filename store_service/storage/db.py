"""SQLite connections with the pragmas that make a commit durable, transactions, and the
migration entry point."""

import asyncio
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import Histogram
from sqlalchemy.engine import make_url

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
    parsed = make_url(url)
    return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)


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
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
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
    begin_immediate(conn)
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


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
        and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
    )


def begin_immediate(conn: sqlite3.Connection, *, busy_since: float | None = None) -> None:
    """BEGIN IMMEDIATE, waiting for the write lock if another connection holds it; a wait is
    observed in WRITE_LOCK_WAIT (from `busy_since`, when the caller already found it taken)."""
    if busy_since is None:
        try:
            begin_without_waiting(conn)
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        busy_since = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
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


def migrate(settings: Settings) -> None:
    """Bring the database named by the settings to the newest schema."""
    from alembic import command

    settings.database_path.parent.mkdir(parents=True, exist_ok=True)
    config = alembic_config(settings.database_url)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(config, "head")
        return
    raise RuntimeError("migrate() runs Alembic's own event loop: call it via asyncio.to_thread")
