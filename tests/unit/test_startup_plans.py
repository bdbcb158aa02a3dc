"""Start-up must not walk the outbox history: every statement the store runs when it starts
(the API's first update, health, metrics and the summary, the worker's lease, recovery,
parking, first claim and purge) is planned on an index, never as `SCAN changes`.

The statements are the real functions' (traced), planned by SQLite on a migrated database
without statistics, as a store runs (nothing runs ANALYZE).
"""

import sqlite3
from pathlib import Path

import pytest

from loadtests.startup_audit import StepAudit, audit
from store_service.config import Settings
from store_service.storage import db
from tests.support.store_db import local_update


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> list[StepAudit]:
    path: Path = tmp_path_factory.mktemp("startup") / "store.db"
    db.migrate(Settings(database_url=f"sqlite:///{path}"))
    conn = db.connect(path)
    try:
        for i in range(20):  # a few rows of each kind, so no step is trivially empty
            local_update(conn, f"SKU-{i % 3:05d}", 1, f"op-{i}", now=100 + i)
        conn.execute("UPDATE changes SET status = 'synced', finalized_at = 150 WHERE id <= 10")
        return audit(conn, now=1_000_000.0)
    finally:
        conn.close()


def _plans(steps: list[StepAudit], name: str) -> str:
    (step,) = [s for s in steps if s.name.startswith(name)]
    return "\n".join(line for plan in step.plans for line in plan)


def test_no_start_up_statement_scans_the_changes(steps: list[StepAudit]) -> None:
    assert len(steps) >= 9
    walking = {step.name: step.plans for step in steps if step.walks_changes}
    assert walking == {}


@pytest.mark.parametrize(
    ("step", "index"),
    [
        # Each of these once walked every pending or every final change on the status index.
        ("worker: park expired", "ix_changes_pending_first_sent"),
        ("worker: purge", "ix_changes_finalized_at"),
        ("worker: first claim", "ix_changes_status_id (status=?)"),
        ("api: first update", "sqlite_autoindex_changes_1 (operation_id=?)"),
    ],
)
def test_the_steps_that_could_walk_the_history_use_their_index(
    steps: list[StepAudit], step: str, index: str
) -> None:
    assert index in _plans(steps, step)


def test_counting_by_state_reads_the_kept_counts_for_the_final_states(
    steps: list[StepAudit],
) -> None:
    (summary,) = [s for s in steps if s.name.startswith("api/health/metrics")]
    counted = [sql for sql in summary.statements if "count(*)" in sql]
    assert counted
    assert all("'synced'" not in sql and "GROUP BY" not in sql for sql in counted)
    assert any("change_counts" in sql for sql in summary.statements)


def test_the_check_sees_a_scan() -> None:
    # The detector itself: a plan of the old count by state is flagged.
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE changes (id INTEGER PRIMARY KEY, status TEXT)")
    plan = [row[3] for row in conn.execute(
        "EXPLAIN QUERY PLAN SELECT status, count(*) FROM changes GROUP BY status")]  # fmt: skip
    assert StepAudit("old count", 0.0, ["…"], [plan]).walks_changes
