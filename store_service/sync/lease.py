"""The sync lease: one row per named lease, so one sync run at a time per store.

A crashed holder's lease simply expires (`STORE_SYNC_LEASE_SECONDS`); a run renews it in the
transaction that records each batch, so a run that stalled past its lease never records over
the run that took over. Functions run inside the caller's transaction.

A holder's name says which process holds the lease (`holder_name`): when that process is gone
(killed, or the machine restarted), a run on the same host takes the lease at once instead of
waiting for it to expire, so a worker restarted after `kill -9` syncs within seconds, not
`STORE_SYNC_LEASE_SECONDS` later. A holder on another host, or a name without a process
(older runs, tests), is waited for as before.
"""

import os
import socket
import sqlite3
import uuid
from pathlib import Path

SYNC_LEASE = "sync"


def _started(pid: int) -> str | None:
    """The start time of a live process (clock ticks since boot), None when there is none."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def holder_name(prefix: str = "sync") -> str:
    """A unique holder name that says which process holds the lease: host, pid, start time."""
    pid = os.getpid()
    return f"{prefix}-{uuid.uuid4().hex[:12]}@{socket.gethostname()}:{pid}:{_started(pid)}"


def holder_is_dead(holder: str) -> bool:
    """True only when `holder` names a process on this host that no longer runs (its pid gone,
    or taken by a process started at another time): never for other hosts or plain names."""
    _, at, where = holder.rpartition("@")
    host, _, process = where.partition(":")
    pid, _, started = process.partition(":")
    if not at or host != socket.gethostname() or not pid.isdigit() or started == "None":
        return False
    if not Path("/proc/self/stat").exists():
        return False  # no way to tell here: wait for the lease to expire
    return _started(int(pid)) != started


def acquire(
    conn: sqlite3.Connection, *, holder: str, now: float, ttl: float, name: str = SYNC_LEASE
) -> bool:
    """Take the lease if it is free, expired, already ours, or held by a dead process here."""
    cursor = conn.execute(
        """
        INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
        WHERE leases.expires_at <= ? OR leases.holder = excluded.holder
        """,
        (name, holder, now + ttl, now),
    )
    if cursor.rowcount == 1:
        return True
    current = conn.execute("SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
    if current is None or not holder_is_dead(str(current[0])):
        return False
    cursor = conn.execute(
        "UPDATE leases SET holder = ?, expires_at = ? WHERE name = ? AND holder = ?",
        (holder, now + ttl, name, current[0]),
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
