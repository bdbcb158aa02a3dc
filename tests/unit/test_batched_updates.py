"""`apply_updates` (a whole group-commit batch at once) answers and writes exactly what
`apply_update` does when the same calls run one after another."""

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store_service.config import Settings
from store_service.inventory import UpdateCommand, apply_update, apply_update_job, apply_updates
from store_service.storage import db
from store_service.storage.writer import Batchable, Writer

SKUS = [f"SKU-{n:05d}" for n in range(1, 6)]


def _database(path: Path) -> sqlite3.Connection:
    db.migrate(Settings(database_url=f"sqlite:///{path}", data_dir=path.parent))
    conn = db.connect(path)
    # Some SKUs already exist, some with central's view, so every branch is reached.
    conn.execute(
        "INSERT INTO inventory_items (sku, quantity, version, pending_delta, pending_count, "
        "central_quantity, central_version, created_at, updated_at) VALUES "
        "('SKU-00001', 5, 3, 0, 0, 5, 9, 0, 0), ('SKU-00002', 0, 1, 0, 0, NULL, NULL, 0, 0)"
    )
    return conn


def _calls(seed: int, count: int) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Random updates with the awkward cases mixed in: repeated operation ids (same payload:
    replays; other payload: reuse), versions right and wrong, sells below zero."""
    rng = random.Random(seed)
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    used: list[UpdateCommand] = []
    for n in range(count):
        roll = rng.random()
        if used and roll < 0.15:
            command = rng.choice(used)  # a retry: replay
        elif used and roll < 0.25:
            earlier = rng.choice(used)  # the same id, another payload: reuse
            other_delta = earlier.delta + 1 or 2  # never 0: the API refuses that before here
            command = UpdateCommand(earlier.sku, other_delta, earlier.operation_id, None)
        else:
            command = UpdateCommand(
                sku=rng.choice(SKUS),
                delta=rng.choice([-3, -2, -1, 1, 2, 5]),
                operation_id=f"op-{seed}-{n}",
                version=rng.choice([None, None, 0, 1, 2, 3, 4]),
                request_id=f"req-{n}",
            )
            used.append(command)
        allow_negative = rng.random() < 0.3
        calls.append(((command,), {"allow_negative": allow_negative, "now": 1000.0 + n}))
    return calls


def _answer(outcome: tuple[bool, Any]) -> tuple[Any, ...]:
    ok, value = outcome
    if ok:
        return ("ok", value.status, value.body, value.replayed)
    return ("refused", type(value).__name__, str(value))


def _state(conn: sqlite3.Connection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    items = conn.execute("SELECT * FROM inventory_items ORDER BY sku").fetchall()
    changes = conn.execute("SELECT * FROM changes ORDER BY id").fetchall()
    return [tuple(row) for row in items], [tuple(row) for row in changes]


def _one_by_one(conn: sqlite3.Connection, calls: list[Any]) -> list[tuple[Any, ...]]:
    answers = []
    conn.execute("BEGIN IMMEDIATE")
    for args, kwargs in calls:
        conn.execute("SAVEPOINT one")
        try:
            answers.append(_answer((True, apply_update(conn, *args, **kwargs))))
        except Exception as exc:
            answers.append(_answer((False, exc)))
        conn.execute("RELEASE one")
    conn.execute("COMMIT")
    return answers


@pytest.mark.parametrize("seed", range(12))
def test_a_batch_answers_and_writes_what_the_calls_one_by_one_would(
    tmp_path: Path, seed: int
) -> None:
    calls = _calls(seed, count=60)
    one_by_one = _database(tmp_path / "one.db")
    batched = _database(tmp_path / "batch.db")

    expected = _one_by_one(one_by_one, calls)
    batched.execute("BEGIN IMMEDIATE")
    answers = [_answer(outcome) for outcome in apply_updates(batched, calls)]
    batched.execute("COMMIT")

    assert answers == expected
    assert {answer[0] for answer in expected} == {"ok", "refused"}  # both kinds were exercised
    assert _state(batched) == _state(one_by_one)


async def test_the_writer_groups_concurrent_updates_and_keeps_each_answer(
    tmp_path: Path,
) -> None:
    # Migrations run Alembic's own event loop: off this one.
    conn = await asyncio.to_thread(_database, tmp_path / "w.db")
    conn.close()
    calls = _calls(99, count=200)
    reference = await asyncio.to_thread(_database, tmp_path / "ref.db")
    expected = _one_by_one(reference, calls)

    batches: list[int] = []

    def counted_many(conn: sqlite3.Connection, group: Any) -> Any:
        outcomes = apply_updates(conn, group)  # raising would send the batch to the fallback
        batches.append(len(group))
        return outcomes

    job = Batchable(one=apply_update_job.one, many=counted_many)
    writer = Writer(tmp_path / "w.db").start()
    try:
        results = await asyncio.gather(
            *(writer.run(job, *args, **kwargs) for args, kwargs in calls),
            return_exceptions=True,
        )
    finally:
        writer.stop()
    answers = [_answer((False, r) if isinstance(r, Exception) else (True, r)) for r in results]
    assert answers == expected
    assert writer.commits < len(calls) / 4, "concurrent updates should share transactions"
    assert sum(batches) == len(calls), "every call went through the batched path"
    assert _state(sqlite3.connect(tmp_path / "w.db")) == _state(reference)
