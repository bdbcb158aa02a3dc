"""Outbox SQL: claiming oldest first, putting back, recovery, parking, operator actions, purge."""

import sqlite3

import pytest

from store_service.domain import (
    FINAL_STATES,
    QUEUED_STATES,
    UNAPPLIED_STATES,
    ChangeNotFound,
    ChangeNotInConflict,
    ChangeState,
)
from store_service.storage import outbox
from store_service.sync import state
from store_service.sync.status import summary
from tests.support.store_db import change_row, local_update, status_of

WINDOW = 86_400.0  # central's idempotency window: far away unless a test says otherwise


def claim(conn: sqlite3.Connection, *, now: float, limit: int) -> list[outbox.ClaimedChange]:
    claimed, parked = outbox.claim_due(conn, now=now, limit=limit, window=WINDOW)
    assert parked == 0
    return claimed


def _set(conn: sqlite3.Connection, operation_id: str, **columns: object) -> None:
    assignments = ", ".join(f"{name} = ?" for name in columns)
    conn.execute(
        f"UPDATE changes SET {assignments} WHERE operation_id = ?",  # noqa: S608
        (*columns.values(), operation_id),
    )


def test_every_state_is_either_unapplied_or_final() -> None:
    assert set(UNAPPLIED_STATES) | set(FINAL_STATES) == set(ChangeState)
    assert not set(UNAPPLIED_STATES) & set(FINAL_STATES)
    assert set(QUEUED_STATES) < set(UNAPPLIED_STATES)


def test_due_changes_are_claimed_oldest_first_up_to_the_limit(conn: sqlite3.Connection) -> None:
    for i in range(5):
        local_update(conn, "A", 1, f"op-{i}", now=100 + i)
    claimed = claim(conn, now=200, limit=3)
    assert [c.operation_id for c in claimed] == ["op-0", "op-1", "op-2"]
    assert [status_of(conn, f"op-{i}") for i in range(5)] == ["in_flight"] * 3 + ["pending"] * 2


def test_changes_not_yet_due_wait(conn: sqlite3.Connection) -> None:
    local_update(conn, "A", 1, "later", now=100)
    _set(conn, "later", next_attempt_at=500)
    assert claim(conn, now=200, limit=10) == []
    assert outbox.next_attempt_at(conn) == 500
    assert [c.operation_id for c in claim(conn, now=500, limit=10)] == ["later"]


def test_first_sent_at_is_kept_from_the_first_claim(conn: sqlite3.Connection) -> None:
    local_update(conn, "A", 1, "op", now=100)
    claim(conn, now=200, limit=10)
    outbox.put_back(conn, [(1, 200)], error="x", count_attempt=True, now=200)
    claim(conn, now=300, limit=10)
    assert change_row(conn, "op")["first_sent_at"] == 200


def test_transient_put_back_counts_the_attempt_and_sets_the_next_time(
    conn: sqlite3.Connection,
) -> None:
    local_update(conn, "A", 1, "op", now=100)
    (claimed,) = claim(conn, now=200, limit=10)
    outbox.put_back(conn, [(claimed.id, 260)], error="timeout: slow", count_attempt=True, now=200)
    view = change_row(conn, "op")
    assert (view["status"], view["attempts"], view["next_attempt_at"]) == ("pending", 1, 260)
    assert view["last_error"] == "timeout: slow"


def test_in_flight_changes_of_a_crashed_run_are_recovered(conn: sqlite3.Connection) -> None:
    local_update(conn, "A", 1, "op", now=100)
    claim(conn, now=200, limit=10)
    assert outbox.recover_in_flight(conn, now=900) == 1
    assert status_of(conn, "op") == "pending"
    assert outbox.next_attempt_at(conn) == 900


def test_a_change_first_sent_before_the_idempotency_window_is_parked(
    conn: sqlite3.Connection,
) -> None:
    local_update(conn, "A", 1, "old", now=100)
    local_update(conn, "A", 1, "never-sent", now=100)
    local_update(conn, "A", 1, "recent", now=100)
    _set(conn, "old", first_sent_at=1_000)
    _set(conn, "recent", first_sent_at=90_000)
    assert outbox.park_expired(conn, now=100_000, window=86_400) == 1
    view = change_row(conn, "old")
    assert (view["status"], view["resolution"]) == ("conflict", "idempotency_window_expired")
    assert status_of(conn, "never-sent") == "pending"
    assert status_of(conn, "recent") == "pending"


def test_operator_retry_returns_a_conflict_to_pending_with_counters_reset(
    conn: sqlite3.Connection,
) -> None:
    local_update(conn, "A", 1, "op", now=100)
    _set(conn, "op", status="conflict", attempts=4, rebases=5, first_sent_at=150)
    assert outbox.retry_change(conn, "op", now=300) == "A"
    view = change_row(conn, "op")
    assert (view["status"], view["attempts"], view["rebases"]) == ("pending", 0, 0)
    assert view["first_sent_at"] is None
    assert view["next_attempt_at"] == 300


def test_operator_discard_finalizes_a_conflict(conn: sqlite3.Connection) -> None:
    local_update(conn, "A", 3, "op", now=100)
    _set(conn, "op", status="conflict")
    assert outbox.discard_change(conn, "op", now=300) == ("A", 3)
    view = change_row(conn, "op")
    assert (view["status"], view["resolution"], view["finalized_at"]) == (
        "discarded",
        "operator_discard",
        300,
    )


@pytest.mark.parametrize("action", [outbox.retry_change, outbox.discard_change])
def test_operator_actions_need_a_conflict(conn: sqlite3.Connection, action) -> None:
    local_update(conn, "A", 1, "op", now=100)
    with pytest.raises(ChangeNotInConflict):
        action(conn, "op", now=300)
    with pytest.raises(ChangeNotFound):
        action(conn, "unknown", now=300)


def test_purge_removes_only_old_final_changes(conn: sqlite3.Connection) -> None:
    for op in ("old-synced", "new-synced", "old-conflict", "old-pending"):
        local_update(conn, "A", 1, op, now=100)
    _set(conn, "old-synced", status="synced", finalized_at=1_000)
    _set(conn, "new-synced", status="synced", finalized_at=9_500)
    _set(conn, "old-conflict", status="conflict")
    assert outbox.purge_final(conn, now=10_000, retention=5_000, limit=100) == 1
    remaining = {row["operation_id"] for row in conn.execute("SELECT operation_id FROM changes")}
    assert remaining == {"new-synced", "old-conflict", "old-pending"}


def test_summary_counts_states_and_ages(conn: sqlite3.Connection) -> None:
    local_update(conn, "A", 1, "a", now=100)
    local_update(conn, "A", 1, "b", now=150)
    _set(conn, "b", status="synced")
    state.put(conn, state.Fact.LAST_SUCCESS_AT, 180.0, now=180)
    glance = summary(conn, now=200)
    assert glance["counts"][ChangeState.PENDING] == 1
    assert glance["counts"][ChangeState.SYNCED] == 1
    assert glance["oldest_pending_age_seconds"] == 100
    assert glance["last_success_at"] == 180.0
    assert glance["auth_failed"] is None
    assert outbox.unapplied_totals(conn, ["A", "B"]) == {"A": (1, 1), "B": (0, 0)}


def test_purge_deletes_at_most_limit_oldest_first(conn: sqlite3.Connection) -> None:
    for i in range(5):
        local_update(conn, "A", 1, f"op-{i}", now=100)
        _set(conn, f"op-{i}", status="synced", finalized_at=1_000 - i)
    assert outbox.purge_final(conn, now=10_000, retention=5_000, limit=2) == 2
    remaining = {row[0] for row in conn.execute("SELECT operation_id FROM changes")}
    assert remaining == {"op-0", "op-1", "op-2"}  # op-4 and op-3 were finalized first


def test_counts_by_state_follow_every_insert_move_and_delete(conn: sqlite3.Connection) -> None:
    """The final states' counts are kept by triggers (migration 0006), not counted."""

    def counted() -> dict[ChangeState, int]:
        actual = dict.fromkeys(ChangeState, 0)
        for status, n in conn.execute("SELECT status, count(*) FROM changes GROUP BY status"):
            actual[ChangeState(status)] = n
        return actual

    for i in range(6):
        local_update(conn, "A", 1, f"op-{i}", now=100)
    _set(conn, "op-0", status="synced", finalized_at=100)
    _set(conn, "op-1", status="synced", finalized_at=100)
    _set(conn, "op-2", status="rejected", finalized_at=100)
    _set(conn, "op-3", status="conflict")
    _set(conn, "op-3", status="discarded", finalized_at=200)
    _set(conn, "op-4", status="in_flight")
    _set(conn, "op-1", status="synced")  # no move: no count
    conn.execute(
        "INSERT INTO changes (operation_id, sku, delta, status, next_attempt_at, created_at, "
        "updated_at, response_status, response_body, finalized_at) "
        "VALUES ('restored', 'A', 1, 'synced', 0, 0, 0, 200, '{}', 50)"
    )
    assert outbox.state_counts(conn) == counted()
    assert outbox.state_counts(conn)[ChangeState.SYNCED] == 3
    assert outbox.purge_final(conn, now=10_000, retention=5_000, limit=100) == 5
    assert outbox.state_counts(conn) == counted()
    assert outbox.state_counts(conn)[ChangeState.SYNCED] == 0


def test_the_oldest_queued_change_is_found_among_pending_and_in_flight(
    conn: sqlite3.Connection,
) -> None:
    assert outbox.oldest_queued_created_at(conn) is None
    for i, op in enumerate(("done", "flying", "waiting")):
        local_update(conn, "A", 1, op, now=100 + i)
    _set(conn, "done", status="synced", finalized_at=200)
    assert outbox.oldest_queued_created_at(conn) == 101
    _set(conn, "flying", status="in_flight")
    assert outbox.oldest_queued_created_at(conn) == 101
    _set(conn, "flying", status="synced", finalized_at=200)
    assert outbox.oldest_queued_created_at(conn) == 102
