"""The purge of expired final changes, in short transactions with pauses between them.

A purge can meet a great many expired changes at once (a store that was off for a while, or a
shortened retention). Deleting them in one transaction held the database's write lock for the
whole of it: a million changes with random (UUIDv4) operation_ids took 26 s, and every update
the API took meanwhile waited. Here each transaction deletes at most `BATCH` changes, and after
each one the purge sleeps for as long as the transaction took (at least `MIN_PAUSE`), so the
write lock is free at least half of the time and the API's writer (which goes first when it
waits: storage/db.py, WriteTurn) waits for one small batch at most. The purge takes longer
in all; nothing waits for it. Measured in docs/performance.md, "(g) Growth".
"""

import sqlite3
import time
from collections.abc import Callable

from store_service.storage import outbox
from store_service.storage.db import transaction

BATCH = 500  # changes per transaction: each leaves three indexes, one of them random (v4 ids)
MIN_PAUSE = 0.01  # seconds between transactions, at least
MAX_SECONDS = 60.0  # per call: the rest waits for the next run (beat or a trigger)


def purge_expired(
    conn: sqlite3.Connection,
    *,
    retention: float,
    now: Callable[[], float] = time.time,
    batch: int = BATCH,
    max_seconds: float = MAX_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Delete final changes older than `retention`, `batch` per transaction; returns how many."""
    purged = 0
    deadline = time.monotonic() + max_seconds
    while True:
        started = time.monotonic()
        with transaction(conn):
            deleted = outbox.purge_final(conn, now=now(), retention=retention, limit=batch)
        purged += deleted
        if deleted < batch or time.monotonic() >= deadline:
            return purged
        sleep(max(MIN_PAUSE, time.monotonic() - started))
