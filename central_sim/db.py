"""The simulator's SQLite file: connection with durable pragmas, schema, one serialized writer.

Plain sqlite3 rather than SQLAlchemy: the hot path is a handful of statements per batch and the
simulator must drain thousands of changes per second. All access goes through one connection
guarded by a lock, so in-process writers never contend for SQLite's lock (no `database is
locked`); `BEGIN IMMEDIATE` plus busy_timeout still protect against a second process.
"""

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS inventory (
    sku TEXT PRIMARY KEY,
    quantity INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    operation_id TEXT,
    service TEXT NOT NULL,
    sku TEXT NOT NULL,
    delta INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    version INTEGER NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_sku ON journal (sku);
CREATE TABLE IF NOT EXISTS idempotency (
    service TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    sku TEXT NOT NULL,
    delta INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    version INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (service, key)
);
CREATE INDEX IF NOT EXISTS idempotency_created_at ON idempotency (created_at);
CREATE TABLE IF NOT EXISTS stats (
    service TEXT NOT NULL,
    outcome TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (service, outcome)
);
CREATE TABLE IF NOT EXISTS sim_state (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class Database:
    """One SQLite connection and the lock that serializes every use of it."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
        self.conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self.lock = threading.Lock()
        self.conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed change (and the 200 that follows) survives power loss.
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(SCHEMA)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: lock, BEGIN IMMEDIATE, commit on success, roll back on error."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read: same connection, same lock, a deferred transaction."""
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                self.conn.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.conn.close()
