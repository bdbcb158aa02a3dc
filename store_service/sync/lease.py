"""The sync lease: one row per named lease, so one sync run at a time per store.

A crashed holder's lease simply expires (`STORE_SYNC_LEASE_SECONDS`); a run renews it in the
transaction that records each batch, so a run that stalled past its lease never records over
the run that took over. Functions run inside the caller's transaction.
"""

import sqlite3

SYNC_LEASE = "sync"


def acquire(
    conn: sqlite3.Connection, *, holder: str, now: float, ttl: float, name: str = SYNC_LEASE
) -> bool:
    """Take the lease if it is free, expired, or already ours."""
    cursor = conn.execute(
        """
        INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
        WHERE leases.expires_at <= ? OR leases.holder = excluded.holder
        """,
        (name, holder, now + ttl, now),
    )
    return cursor.rowcount == 1


def renew(
    conn: sqlite3.Connection, *, holder: str, now: float, ttl: float, name: str = SYNC_LEASE
) -> bool:
    """Extend our lease; False when it expired and someone else took it (stop working then)."""
    cursor = conn.execute(
        "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?",
        (now + ttl, name, holder),
    )
    return cursor.rowcount == 1


def release(conn: sqlite3.Connection, *, holder: str, name: str = SYNC_LEASE) -> None:
    conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


def holder(conn: sqlite3.Connection, *, now: float, name: str = SYNC_LEASE) -> str | None:
    """Who holds the lease now (None when it is free or expired)."""
    row = conn.execute(
        "SELECT holder FROM leases WHERE name = ? AND expires_at > ?", (name, now)
    ).fetchone()
    return None if row is None else str(row[0])
