"""Every SQL statement of the simulator: stock, journal, idempotency records, stats, sim state.

Functions take an open connection inside a transaction (see `db.Database`); they never commit.
"""

import json
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from central_sim.ledger import AppliedRecord, JournalEntry, Stock

Row = dict[str, Any]


def utc_iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds")


def _chunks(values: list[str], size: int = 900) -> Iterable[list[str]]:
    # Stay far below SQLite's bound-parameter limit whatever the batch size.
    for start in range(0, len(values), size):
        yield values[start : start + size]


def load_stock(conn: sqlite3.Connection, skus: Iterable[str]) -> dict[str, Stock]:
    wanted = sorted(set(skus))
    stock: dict[str, Stock] = {}
    for chunk in _chunks(wanted):
        marks = ",".join("?" * len(chunk))
        for sku, quantity, version in conn.execute(
            f"SELECT sku, quantity, version FROM inventory WHERE sku IN ({marks})",  # noqa: S608
            chunk,
        ):
            stock[sku] = Stock(quantity, version, known=True)
    return stock


def load_records(
    conn: sqlite3.Connection, *, service: str, keys: Iterable[str], not_before: float
) -> dict[str, AppliedRecord]:
    """Idempotency records of `service` for `keys`, ignoring those past retention."""
    wanted = sorted(set(keys))
    records: dict[str, AppliedRecord] = {}
    for chunk in _chunks(wanted):
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT key, fingerprint, sku, delta, quantity, version, created_at "  # noqa: S608
            f"FROM idempotency WHERE service = ? AND created_at >= ? AND key IN ({marks})",
            [service, not_before, *chunk],
        )
        for key, *fields in rows:
            records[key] = AppliedRecord(*fields)
    return records


def save_stock(conn: sqlite3.Connection, stock: Mapping[str, Stock], skus: Iterable[str]) -> None:
    conn.executemany(
        "INSERT INTO inventory (sku, quantity, version) VALUES (?, ?, ?) "
        "ON CONFLICT (sku) DO UPDATE SET quantity = excluded.quantity, version = excluded.version",
        [(sku, stock[sku].quantity, stock[sku].version) for sku in skus],
    )


def append_journal(conn: sqlite3.Connection, entries: Iterable[JournalEntry], at: str) -> None:
    conn.executemany(
        "INSERT INTO journal (kind, operation_id, service, sku, delta, quantity, version, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (e.kind.value, e.operation_id, e.service, e.sku, e.delta, e.quantity, e.version, at)
            for e in entries
        ],
    )


def save_records(
    conn: sqlite3.Connection, *, service: str, records: Mapping[str, AppliedRecord]
) -> None:
    # REPLACE: a key past retention may be reused, and its fresh record supersedes the old one.
    conn.executemany(
        "INSERT OR REPLACE INTO idempotency "
        "(service, key, fingerprint, sku, delta, quantity, version, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (service, key, r.fingerprint, r.sku, r.delta, r.quantity, r.version, r.created_at)
            for key, r in records.items()
        ],
    )


def purge_records(conn: sqlite3.Connection, *, older_than: float) -> int:
    return conn.execute("DELETE FROM idempotency WHERE created_at < ?", (older_than,)).rowcount


def add_stats(conn: sqlite3.Connection, service: str, counts: Mapping[str, int]) -> None:
    conn.executemany(
        "INSERT INTO stats (service, outcome, count) VALUES (?, ?, ?) "
        "ON CONFLICT (service, outcome) DO UPDATE SET count = count + excluded.count",
        [(service, outcome, n) for outcome, n in counts.items() if n],
    )


def read_stats(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    per_service: dict[str, dict[str, int]] = {}
    for service, outcome, count in conn.execute(
        "SELECT service, outcome, count FROM stats ORDER BY service, outcome"
    ):
        per_service.setdefault(service, {})[outcome] = count
    return per_service


def get_stock(conn: sqlite3.Connection, sku: str) -> Stock | None:
    row = conn.execute("SELECT quantity, version FROM inventory WHERE sku = ?", (sku,)).fetchone()
    return None if row is None else Stock(row[0], row[1], known=True)


def list_stock(conn: sqlite3.Connection, *, after_sku: str | None, limit: int) -> list[Row]:
    rows = conn.execute(
        "SELECT sku, quantity, version FROM inventory WHERE sku > ? ORDER BY sku LIMIT ?",
        (after_sku or "", limit),
    )
    return [{"sku": s, "quantity": q, "version": v} for s, q, v in rows]


def read_journal(
    conn: sqlite3.Connection, *, after_seq: int, limit: int, sku: str | None = None
) -> list[Row]:
    columns = "seq, kind, operation_id, service, sku, delta, quantity, version, at"
    if sku is None:
        cursor = conn.execute(
            f"SELECT {columns} FROM journal WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
            (after_seq, limit),
        )
    else:
        cursor = conn.execute(
            f"SELECT {columns} FROM journal WHERE seq > ? AND sku = ? "  # noqa: S608
            "ORDER BY seq LIMIT ?",
            (after_seq, sku, limit),
        )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def read_journal_tail(conn: sqlite3.Connection, *, limit: int) -> list[Row]:
    """The newest `limit` journal entries, newest first (the panel's tail)."""
    cursor = conn.execute(
        "SELECT seq, kind, operation_id, service, sku, delta, quantity, version, at "
        "FROM journal ORDER BY seq DESC LIMIT ?",
        (limit,),
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    skus, journal = conn.execute(
        "SELECT (SELECT COUNT(*) FROM inventory), (SELECT COUNT(*) FROM journal)"
    ).fetchone()
    return {"skus": skus, "journal_entries": journal}


def clear_all(conn: sqlite3.Connection) -> None:
    """Forget inventory, journal, idempotency and stats. Journal seq keeps counting up (the
    AUTOINCREMENT high-water mark survives) so a reader paging by after_seq never re-reads."""
    for table in ("inventory", "journal", "idempotency", "stats"):
        conn.execute(f"DELETE FROM {table}")  # noqa: S608


def get_state(conn: sqlite3.Connection, name: str) -> Any | None:
    row = conn.execute("SELECT value FROM sim_state WHERE name = ?", (name,)).fetchone()
    return None if row is None else json.loads(row[0])


def put_state(conn: sqlite3.Connection, name: str, value: Any) -> None:
    conn.execute(
        "INSERT INTO sim_state (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, json.dumps(value)),
    )


def delete_state(conn: sqlite3.Connection, name: str) -> None:
    conn.execute("DELETE FROM sim_state WHERE name = ?", (name,))
