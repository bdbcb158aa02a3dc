"""The purge of expired final changes runs in small transactions with pauses between them."""

import sqlite3

from store_service.sync.purge import purge_expired
from tests.support.store_db import local_update


def _final(conn: sqlite3.Connection, n: int, *, finalized_at: float) -> None:
    for i in range(n):
        local_update(conn, "A", 1, f"op-{finalized_at}-{i}", now=1)
    conn.execute(
        "UPDATE changes SET status = 'synced', finalized_at = ? WHERE finalized_at IS NULL",
        (finalized_at,),
    )


def test_everything_expired_goes_in_batches_with_a_pause_between(
    conn: sqlite3.Connection,
) -> None:
    _final(conn, 7, finalized_at=100)
    _final(conn, 2, finalized_at=9_000)  # within the retention: stays
    pauses: list[float] = []
    commits: list[int] = []
    conn.set_trace_callback(lambda sql: commits.append(1) if sql == "COMMIT" else None)
    purged = purge_expired(conn, retention=5_000, now=lambda: 10_000, batch=3, sleep=pauses.append)
    conn.set_trace_callback(None)
    assert purged == 7
    assert len(commits) == 3  # 3 + 3 + 1: one transaction per batch
    assert len(pauses) == 2  # none after the last, short batch
    assert all(pause > 0 for pause in pauses)
    assert conn.execute("SELECT count(*) FROM changes").fetchone()[0] == 2
    assert conn.execute("SELECT n FROM change_counts WHERE status = 'synced'").fetchone()[0] == 2


def test_a_long_purge_stops_at_its_time_limit_and_leaves_the_rest(
    conn: sqlite3.Connection,
) -> None:
    _final(conn, 5, finalized_at=100)
    purged = purge_expired(
        conn, retention=5_000, now=lambda: 10_000, batch=2, max_seconds=0, sleep=lambda _s: None
    )
    assert purged == 2
    assert conn.execute("SELECT count(*) FROM changes").fetchone()[0] == 3
