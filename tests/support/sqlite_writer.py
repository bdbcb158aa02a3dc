"""A SQLite writer and checker to run as child processes on a LazyFS mount, so a test can
SIGKILL the writer as the harness kills the store.

    python -m tests.support.sqlite_writer setup --db PATH
    python -m tests.support.sqlite_writer write --db PATH --sync FULL|OFF --first N --rows N
    python -m tests.support.sqlite_writer check --db PATH

`setup` makes the database (WAL mode, synchronous=FULL) and exits. `write` commits one row per
transaction with the given synchronous setting, prints each row's id once its COMMIT returned
(the acknowledgement), prints `done`, then waits on stdin until killed. `check` prints one
JSON line: the integrity check's answer and the ids present.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Sequence

BUSY_TIMEOUT_MS = 10_000
PAYLOAD = bytes(range(256)) * 4  # 1 KiB a row: each commit appends a WAL frame or two


def _connect(db: str) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def setup(db: str) -> None:
    conn = _connect(db)
    conn.execute("PRAGMA synchronous = FULL")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        raise SystemExit(f"journal_mode is {mode}, not wal")
    conn.execute("CREATE TABLE IF NOT EXISTS item (id INTEGER PRIMARY KEY, payload BLOB)")
    conn.close()


def write(db: str, sync: str, first: int, rows: int) -> None:
    conn = _connect(db)
    conn.execute(f"PRAGMA synchronous = {sync}")
    for row_id in range(first, first + rows):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO item (id, payload) VALUES (?, ?)", (row_id, PAYLOAD))
        conn.execute("COMMIT")
        print(row_id, flush=True)
    print("done", flush=True)
    # Keep the connection (and the -shm mapping) open until the test kills this process.
    sys.stdin.read()


def check(db: str) -> None:
    conn = _connect(db)
    integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    ids = [row[0] for row in conn.execute("SELECT id FROM item")] if "item" in tables else []
    conn.close()
    print(json.dumps({"integrity": integrity, "tables": tables, "ids": ids}))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.sqlite_writer")
    parser.add_argument("command", choices=["setup", "write", "check"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--sync", choices=["FULL", "OFF"], default="FULL")
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--rows", type=int, default=10)
    args = parser.parse_args(argv)
    if args.command == "setup":
        setup(args.db)
    elif args.command == "write":
        write(args.db, args.sync, args.first, args.rows)
    else:
        check(args.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
