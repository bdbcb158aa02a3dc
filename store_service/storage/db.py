"""SQLite connections with the pragmas that make a commit durable, transactions, and the
migration entry point."""

import asyncio
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from store_service.config import Settings
from store_service.domain import SqliteSynchronous

if TYPE_CHECKING:
    from alembic.config import Config

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30_000  # how long a statement waits for another connection's write lock
IN_CHUNK = 500  # values per `IN (...)` list: far below SQLite's 32,766 host parameters


def async_url(url: str) -> str:
    """The aiosqlite form of a SQLite URL (what Alembic's async environment connects with)."""
    from sqlalchemy.engine import make_url  # here: SQLAlchemy is slow to import, needed to migrate

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
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


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
