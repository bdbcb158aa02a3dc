"""The purge of expired final changes, in short transactions.

A purge can meet a great many expired changes at once (a store that was off for a while, or a
shortened retention). Deleting them in one transaction held the database's write lock for the
whole of it, and every update the API took meanwhile waited; here each transaction deletes at
most `BATCH` changes, so the API's writer waits for one batch at most. Measured in
docs/performance.md, "(g) Growth".
"""

import sqlite3
import time
from collections.abc import Callable

from store_service.storage import outbox
from store_service.storage.db import transaction

BATCH = 2_000  # changes per transaction (each also leaves three indexes)
MAX_SECONDS = 60.0  # per call: the rest waits for the next run (beat or a trigger)


def purge_expired(
    conn: sqlite3.Connection,
    *,
    retention: float,
    now: Callable[[], float] = time.time,
    batch: int = BATCH,
    max_seconds: float = MAX_SECONDS,
) -> int:
    """Delete final changes older than `retention`, `batch` per transaction; returns how many."""
    purged = 0
    deadline = time.monotonic() + max_seconds
    while True:
        with transaction(conn):
            deleted = outbox.purge_final(conn, now=now(), retention=retention, limit=batch)
        purged += deleted
        if deleted < batch or time.monotonic() >= deadline:
            return purged
