"""What the store runs against its database when it starts, step by step: each step's SQL (as
the real functions send it, caught with a trace callback), its query plan, and its time.

    uv run python -m loadtests.startup_audit PATH/TO/store.db

Every step runs in a transaction that is rolled back, so the database is left as it was. The
unit test tests/unit/test_startup_plans.py runs the same steps on a small database and fails
when a plan walks `changes` (`SCAN changes`): a start-up read must not grow with the history.
"""

import argparse
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Step = Callable[[sqlite3.Connection, float], object]
SKIPPED = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|PRAGMA)\b", re.IGNORECASE)
# A plan line that walks the outbox: the table itself or its alias in the update's lookup.
WALKS_CHANGES = re.compile(r"\bSCAN (changes|c)\b")
WINDOW = 86_400.0  # central's idempotency window, as the settings default it


def _steps() -> dict[str, Step]:
    from store_service.inventory import UpdateCommand, apply_update
    from store_service.storage import items, outbox
    from store_service.sync import heartbeat, lease, status
    from store_service.sync.purge import BATCH

    def first_update(conn: sqlite3.Connection, now: float) -> object:
        command = UpdateCommand("SKU-00001", -1, f"audit-{now}", None)
        return apply_update(conn, command, allow_negative=True, now=now)

    def claim(conn: sqlite3.Connection, now: float) -> object:
        claimed, _ = outbox.claim_due(conn, now=now, limit=1000, window=WINDOW)
        return items.load_items(conn, sorted({change.sku for change in claimed}))

    return {
        "api: first update (lookup, item, insert)": first_update,
        "api/health/metrics: sync summary": lambda conn, now: status.summary(conn, now=now),
        "health: worker heartbeat": lambda conn, _now: heartbeat.read(conn),
        "api: sync trigger's queued count": lambda conn, _now: outbox.queued_count(conn),
        "worker: take the lease": lambda conn, now: lease.acquire(
            conn, holder="audit", now=now, ttl=300
        ),
        "worker: recover in-flight changes": lambda conn, now: outbox.recover_in_flight(
            conn, now=now
        ),
        "worker: park expired changes": lambda conn, now: outbox.park_expired(
            conn, now=now, window=WINDOW
        ),
        "worker: first claim (1,000) and its items": claim,
        "worker: purge, one batch": lambda conn, now: outbox.purge_final(
            conn, now=now, retention=7 * 86_400, limit=BATCH
        ),
    }


@dataclass
class StepAudit:
    name: str
    seconds: float
    statements: list[str] = field(default_factory=list)
    plans: list[list[str]] = field(default_factory=list)

    @property
    def walks_changes(self) -> bool:
        return any(WALKS_CHANGES.search(line) for plan in self.plans for line in plan)


def _plan(conn: sqlite3.Connection, sql: str) -> list[str]:
    return [str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]


def audit(conn: sqlite3.Connection, *, now: float | None = None) -> list[StepAudit]:
    """Run every start-up step on `conn` (each rolled back): its statements, plans and time."""
    now = time.time() if now is None else now
    results = []
    for name, step in _steps().items():
        statements: list[str] = []
        conn.execute("BEGIN IMMEDIATE")
        conn.set_trace_callback(statements.append)
        started = time.perf_counter()
        try:
            step(conn, now)
            seconds = time.perf_counter() - started
        finally:
            conn.set_trace_callback(None)
            conn.execute("ROLLBACK")
        # Once each, in order: a statement is traced again for every trigger run it causes.
        sqls = list(dict.fromkeys(" ".join(s.split()) for s in statements))
        sqls = [s for s in sqls if not SKIPPED.match(s) and not s.startswith("--")]
        results.append(StepAudit(name, seconds, sqls, [_plan(conn, s) for s in sqls]))
    return results


def render(results: list[StepAudit]) -> str:
    lines = []
    for result in results:
        flag = "  WALKS changes" if result.walks_changes else ""
        lines.append(f"{result.seconds * 1000:10.1f} ms  {result.name}{flag}")
        for sql, plan in zip(result.statements, result.plans, strict=True):
            lines.append(f"{'':16}{sql[:150]}")
            lines.extend(f"{'':20}{line}" for line in plan)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.startup_audit")
    parser.add_argument("database", type=Path)
    args = parser.parse_args(argv)
    from store_service.storage.db import connect

    conn = connect(args.database)
    try:
        print(render(audit(conn)))
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
