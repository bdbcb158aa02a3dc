"""One sync run against an in-memory central: outcomes, strategies, failures, recovery."""

import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from store_service.config import Settings
from store_service.domain import ItemOutcome
from store_service.storage import outbox
from store_service.storage.db import transaction
from store_service.sync import lease, state
from store_service.sync.central import AuthFailure, TransientFailure
from store_service.sync.run import backoff_delay, run_sync
from tests.support.clock import Clock
from tests.support.fake_central import FakeCentral
from tests.support.store_db import (
    assert_local_view_consistent,
    change_row,
    item_row,
    learn_central,
    local_update,
    make_database,
    make_settings,
    status_of,
)


def test_every_change_is_synced_and_central_holds_the_sums(
    conn: sqlite3.Connection, settings: Settings
) -> None:
    central = FakeCentral()
    central.seed("B", 50, version=4)
    for i, (sku, delta) in enumerate([("A", 5), ("A", -2), ("B", 3), ("A", 1), ("B", -10)]):
        local_update(conn, sku, delta, f"op-{i}")
    report = run_sync(settings, client=central)
    assert report.stopped_reason == "drained"
    assert report.outcomes[ItemOutcome.APPLIED] == 5
    assert {status_of(conn, f"op-{i}") for i in range(5)} == {"synced"}
    assert central.levels() == {"A": (4, 3), "B": (43, 6)}
    assert (item_row(conn, "A")["quantity"], item_row(conn, "A")["central_version"]) == (4, 3)
    assert item_row(conn, "A")["last_synced_at"] is not None
    assert_local_view_consistent(conn)


def test_a_sku_never_refreshed_is_sent_unconditionally_then_with_versions(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "store.db", sync_batch_size=2)
    central = FakeCentral()
    central.seed("A", 100, version=7)
    for i in range(4):
        local_update(conn, "A", 1, f"op-{i}")
    report = run_sync(settings, client=central)
    assert report.batches == 2
    assert [item.version for item in central.calls[0]] == [None, None]
    assert [item.version for item in central.calls[1]] == [9, 10]
    assert central.levels()["A"] == (104, 11)
    assert_local_view_consistent(conn)


def test_a_transient_failure_puts_the_batch_back_with_backoff_and_stops_the_run(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "store.db", sync_batch_size=1, backoff_base_seconds=2)
    central = FakeCentral(script=[TransientFailure("server_error", "HTTP 503")])
    local_update(conn, "A", 1, "first")
    local_update(conn, "A", 1, "second")
    clock = Clock()
    report = run_sync(settings, client=central, now=clock, rng=lambda: 0.5)
    assert (report.stopped_reason, report.batches) == ("transient", 1)
    first = change_row(conn, "first")
    assert (first["status"], first["attempts"]) == ("pending", 1)
    assert first["next_attempt_at"] == pytest.approx(clock.now + 1.0)
    assert "server_error" in first["last_error"]
    assert status_of(conn, "second") == "pending"
    assert_local_view_consistent(conn)
    assert state.get(conn, state.Fact.LAST_SUCCESS_AT) is None


def test_backoff_grows_with_attempts_until_the_cap_and_honours_retry_after() -> None:
    top = [backoff_delay(n, base=1, cap=30, rng=lambda: 0.999999) for n in range(1, 8)]
    assert top == pytest.approx([1, 2, 4, 8, 16, 30, 30], rel=1e-3)
    assert backoff_delay(1, base=1, cap=30, rng=lambda: 0.0) == 0.0
    assert backoff_delay(1, base=1, cap=30, retry_after=12, rng=lambda: 0.0) == 12
    assert backoff_delay(1, base=1, cap=30, retry_after=3600, rng=lambda: 0.0) == 30


def test_a_lost_response_is_resent_and_applied_once(
    conn: sqlite3.Connection, settings: Settings
) -> None:
    central = FakeCentral(script=["drop_response"])
    central.seed("A", 10)
    local_update(conn, "A", 4, "op")
    clock = Clock()
    assert run_sync(settings, client=central, now=clock).stopped_reason == "transient"
    assert status_of(conn, "op") == "pending"
    clock.now += 3600
    report = run_sync(settings, client=central, now=clock)
    assert report.outcomes[ItemOutcome.DUPLICATE] == 1
    change = change_row(conn, "op")
    assert (change["status"], change["resolution"]) == ("synced", "duplicate")
    assert central.applied() == [("op", "A", 4)]
    assert item_row(conn, "A")["quantity"] == 14
    assert_local_view_consistent(conn)


def test_an_auth_failure_stops_the_run_and_is_remembered_until_a_success(
    conn: sqlite3.Connection, settings: Settings
) -> None:
    central = FakeCentral(script=[AuthFailure("refused")])
    local_update(conn, "A", 1, "op")
    report = run_sync(settings, client=central)
    assert report.stopped_reason == "auth_failed"
    change = change_row(conn, "op")
    assert (change["status"], change["attempts"]) == ("pending", 0)
    assert state.get(conn, state.Fact.AUTH_FAILED)["detail"] == "refused"
    assert run_sync(settings, client=central).stopped_reason == "drained"
    assert state.get(conn, state.Fact.AUTH_FAILED) is None
    assert status_of(conn, "op") == "synced"


def test_rebase_resends_on_top_of_centrals_version_within_the_run(
    conn: sqlite3.Connection, settings: Settings
) -> None:
    central = FakeCentral(conflict_next={"A": 1})
    central.seed("A", 10, version=1)
    learn_central(conn, "A", 10, 1)  # central checks the version only when one is sent
    local_update(conn, "A", -3, "op-1")
    local_update(conn, "A", -2, "op-2")
    run_sync(settings, client=central)
    assert status_of(conn, "op-1") == "synced"
    assert status_of(conn, "op-2") == "synced"
    # Only the first conflict counts: the second item conflicted because the first did.
    assert (change_row(conn, "op-1")["rebases"], change_row(conn, "op-2")["rebases"]) == (1, 0)
    # The competing writer moved the version, not the stock (as central_sim's knob does).
    assert central.levels()["A"] == (10 - 5, 4)
    assert item_row(conn, "A")["quantity"] == 5
    assert_local_view_consistent(conn)


def test_rebase_gives_up_after_the_configured_attempts(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "store.db", rebase_max_attempts=2)
    central = FakeCentral(conflict_next={"A": 100})
    central.seed("A", 0, version=1)
    learn_central(conn, "A", 0, 1)
    local_update(conn, "A", 5, "op")
    report = run_sync(settings, client=central)
    change = change_row(conn, "op")
    assert (change["status"], change["resolution"], change["rebases"]) == (
        "conflict",
        "rebase_exhausted",
        2,
    )
    assert report.batches == 3
    item = item_row(conn, "A")
    assert item["quantity"] == item["central_quantity"] + 5
    assert_local_view_consistent(conn)


@pytest.mark.parametrize(
    ("strategy", "status", "resolution", "local"),
    [
        # central_wins drops the local delta: the local view is central's stock alone.
        ("central_wins", "discarded", "central_wins", (20, 0)),
        # manual parks it: it still counts in the local view until an operator decides.
        ("manual", "conflict", "manual", (25, 1)),
    ],
)
def test_a_conflict_is_resolved_by_the_configured_strategy(
    conn: sqlite3.Connection,
    tmp_path: Path,
    strategy: str,
    status: str,
    resolution: str,
    local: tuple[int, int],
) -> None:
    settings = make_settings(tmp_path / "store.db", conflict_strategy=strategy)
    central = FakeCentral(conflict_next={"A": 1})
    central.seed("A", 20, version=3)
    learn_central(conn, "A", 20, 3)
    local_update(conn, "A", 5, "op")
    run_sync(settings, client=central)
    change = change_row(conn, "op")
    assert (change["status"], change["resolution"]) == (status, resolution)
    item = item_row(conn, "A")
    assert (item["quantity"], item["pending_count"]) == local
    assert_local_view_consistent(conn)


def test_business_refusals_park_and_bad_items_are_rejected(
    conn: sqlite3.Connection, settings: Settings
) -> None:
    central = FakeCentral()
    central.seed("A", 1)
    local_update(conn, "A", -5, "too-many")
    local_update(conn, "bad sku", 1, "invalid")  # central's SKU rule has no spaces
    report = run_sync(settings, client=central)
    assert report.outcomes[ItemOutcome.PARKED] == 1
    assert report.outcomes[ItemOutcome.REJECTED] == 1
    parked = change_row(conn, "too-many")
    assert (parked["status"], parked["resolution"]) == ("conflict", "insufficient_stock")
    rejected = change_row(conn, "invalid")
    assert (rejected["status"], rejected["resolution"]) == ("rejected", "invalid_item")
    assert item_row(conn, "bad sku")["pending_count"] == 0
    assert_local_view_consistent(conn)


def test_a_busy_lease_means_no_run(conn: sqlite3.Connection, settings: Settings) -> None:
    central = FakeCentral()
    local_update(conn, "A", 1, "op")
    clock = Clock()
    with transaction(conn):
        lease.acquire(conn, holder="other", now=clock.now, ttl=300)
    report = run_sync(settings, client=central, now=clock)
    assert report.stopped_reason == "lease_busy"
    assert central.calls == []
    assert status_of(conn, "op") == "pending"


def test_a_crashed_runs_changes_are_recovered_once_its_lease_expires(
    conn: sqlite3.Connection, settings: Settings
) -> None:
    central = FakeCentral()
    local_update(conn, "A", 2, "op")
    clock = Clock()
    with transaction(conn):
        lease.acquire(conn, holder="crashed", now=clock.now - 1_000, ttl=300)
        assert outbox.claim_due(conn, now=clock.now, limit=10, window=86_400)[0]
    report = run_sync(settings, client=central, now=clock)
    assert report.recovered == 1
    assert status_of(conn, "op") == "synced"
    assert_local_view_consistent(conn)


def test_changes_older_than_the_idempotency_window_are_parked_not_resent(
    conn: sqlite3.Connection, settings: Settings
) -> None:
    central = FakeCentral()
    local_update(conn, "A", 2, "op", now=1_000)
    conn.execute("UPDATE changes SET first_sent_at = 1000")
    report = run_sync(settings, client=central, now=Clock(start=1_000 + 90_000))
    assert report.parked_expired == 1
    assert central.calls == []
    assert change_row(conn, "op")["resolution"] == "idempotency_window_expired"
    assert_local_view_consistent(conn)


def test_a_large_backlog_stops_at_the_time_budget(conn: sqlite3.Connection, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "store.db", sync_batch_size=1, sync_time_budget_seconds=10)
    for i in range(10):
        local_update(conn, "A", 1, f"op-{i}")
    report = run_sync(settings, client=FakeCentral(), now=Clock(step=1.0))
    assert report.stopped_reason == "time_budget"
    assert 0 < report.batches < 10
    assert state.get(conn, state.Fact.LAST_SUCCESS_AT) is not None
    assert_local_view_consistent(conn)


def test_a_run_records_its_report_and_releases_the_lease(
    conn: sqlite3.Connection, settings: Settings
) -> None:
    local_update(conn, "A", 1, "op")
    report = run_sync(settings, client=FakeCentral())
    last = state.get(conn, state.Fact.LAST_RUN)
    assert last["holder"] == report.holder
    assert last["outcomes"] == {"applied": 1}
    assert lease.holder(conn, now=report.started_at) is None


def _conflicting_drain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> dict:
    """Five changes of one SKU, the store two central versions behind, in batches of 5,
    claimed and recorded in transactions of `chunk` changes; what came of it."""
    from store_service.sync import run as run_module

    monkeypatch.setattr(run_module, "CHUNK_ROWS", chunk)
    opened = 0

    def counting(c: sqlite3.Connection) -> AbstractContextManager[sqlite3.Connection]:
        nonlocal opened
        opened += 1
        return transaction(c)

    monkeypatch.setattr(run_module, "transaction", counting)
    (tmp_path / f"chunk-{chunk}").mkdir()
    path = tmp_path / f"chunk-{chunk}" / "store.db"
    settings = make_settings(path, sync_batch_size=5, rebase_max_attempts=1)
    conn = make_database(path)
    central = FakeCentral()
    central.seed("A", 100, version=5)
    learn_central(conn, "A", 100, 3)
    for i in range(5):
        local_update(conn, "A", 1, f"op-{i}")
    report = run_sync(settings, client=central)
    assert_local_view_consistent(conn)
    rows = [change_row(conn, f"op-{i}") for i in range(5)]
    conn.close()
    return {
        "outcomes": dict(report.outcomes),
        "states": [(r["status"], r["rebases"]) for r in rows],
        "central": central.levels(),
        "batches": report.batches,
        "transactions": opened,
    }


def test_a_batch_is_claimed_and_recorded_in_bounded_transactions_with_the_same_outcomes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claiming and recording a batch in transactions of CHUNK_ROWS changes (so the API's
    commits never wait for a whole batch) gives what one transaction gives, conflicts
    included: those caused by an earlier item of the batch still do not count against the
    rebase budget."""
    whole = _conflicting_drain(tmp_path, monkeypatch, 1000)
    chunked = _conflicting_drain(tmp_path, monkeypatch, 2)
    assert whole["outcomes"][ItemOutcome.REBASED] > 0  # the scenario does cross chunks
    assert {k: v for k, v in chunked.items() if k != "transactions"} == {
        k: v for k, v in whole.items() if k != "transactions"
    }
    # The first batch of 5 alone takes 3 claim and 3 record transactions instead of 1 and 1.
    assert chunked["transactions"] >= whole["transactions"] + 4


def _claim_in_chunks_of_two(monkeypatch: pytest.MonkeyPatch, between: Callable[[], None]) -> None:
    """Claims of 2 changes per transaction; `between()` runs where the run yields between two."""
    from store_service.sync import run as run_module

    monkeypatch.setattr(run_module, "CHUNK_ROWS", 2)
    monkeypatch.setattr(run_module, "yield_write_turn", between)


def test_a_change_due_between_two_claim_chunks_is_sent_in_id_order(
    conn: sqlite3.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path / "store.db", sync_batch_size=5)
    central = FakeCentral()
    central.seed("A", 100, version=3)
    learn_central(conn, "A", 100, 3)
    for i in range(5):
        local_update(conn, "A", 1, f"op-{i}")
    clock = Clock()
    # op-0 (the oldest) is not due when the first chunk is claimed, and is by the second.
    conn.execute(
        "UPDATE changes SET next_attempt_at = ? WHERE operation_id = 'op-0'", (clock.now + 1,)
    )
    _claim_in_chunks_of_two(monkeypatch, lambda: clock.advance(2))
    report = run_sync(settings, client=central, now=clock)
    assert [item.operation_id for item in central.calls[0]] == [f"op-{i}" for i in range(5)]
    assert [item.version for item in central.calls[0]] == [3, 4, 5, 6, 7]
    assert report.outcomes == {ItemOutcome.APPLIED: 5}
    assert_local_view_consistent(conn)


def test_a_lease_lost_between_claim_chunks_sends_nothing_and_records_nothing(
    conn: sqlite3.Connection, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    central = FakeCentral()
    for i in range(5):
        local_update(conn, "A", 1, f"op-{i}")

    def taken_over() -> None:
        # The run's lease expires; another run takes it and puts back what was claimed.
        with transaction(conn):
            now = time.time()
            conn.execute("UPDATE leases SET expires_at = ?", (now - 1,))
            assert lease.acquire(conn, holder="other", now=now, ttl=300)
            outbox.recover_in_flight(conn, now=now)

    _claim_in_chunks_of_two(monkeypatch, taken_over)
    report = run_sync(settings, client=central)
    assert report.stopped_reason == "lease_lost"
    assert central.calls == []
    assert {status_of(conn, f"op-{i}") for i in range(5)} == {"pending"}


def test_a_claim_that_fails_midway_puts_back_what_it_had_claimed(
    conn: sqlite3.Connection, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    central = FakeCentral()
    for i in range(5):
        local_update(conn, "A", 1, f"op-{i}")
    claims = 0
    real_claim_due = outbox.claim_due

    def failing_second(*args: object, **kwargs: object) -> object:
        nonlocal claims
        claims += 1
        if claims == 2:
            raise sqlite3.OperationalError("database is locked")
        return real_claim_due(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox, "claim_due", failing_second)
    _claim_in_chunks_of_two(monkeypatch, lambda: None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        run_sync(settings, client=central)
    assert central.calls == []
    rows = [change_row(conn, f"op-{i}") for i in range(5)]
    assert [(r["status"], r["attempts"]) for r in rows] == [("pending", 0)] * 5
    assert "claim failed" in rows[0]["last_error"]
    assert lease.holder(conn, now=time.time()) is None
