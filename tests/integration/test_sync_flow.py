"""Sync through real processes: store API → RabbitMQ → Celery worker → central_sim over HTTP."""

from collections.abc import Iterator

import pytest

from tests.support.stack import Stack, start_stack, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory: pytest.TempPathFactory, rabbitmq_url: str) -> Iterator[Stack]:
    """One stack for the module (process start-up dominates); tests use their own SKUs."""
    stack = start_stack(
        tmp_path_factory.mktemp("sync-flow"), rabbitmq_url, STORE_SYNC_BATCH_SIZE="2"
    )
    yield stack
    stack.stop()


@pytest.fixture
def stack(module_stack: Stack) -> Iterator[Stack]:
    module_stack.clear_faults()
    yield module_stack
    module_stack.clear_faults()


def test_updates_then_trigger_sync_every_change_and_central_holds_the_sums(
    stack: Stack,
) -> None:
    stack.seed("SKU-A", 100)
    stack.refresh("SKU-A")
    deltas = {"SKU-A": [-3, -1, 5, -2], "SKU-B": [10, -4, 1]}
    ops = [stack.update(sku, delta) for sku, values in deltas.items() for delta in values]
    response = stack.trigger()
    assert response.status_code == 202
    assert response.json()["pending_count"] == len(ops)
    changes = stack.wait_settled(ops)
    assert {change["status"] for change in changes} == {"synced"}
    assert stack.central_item("SKU-A")[0] == 100 + sum(deltas["SKU-A"])
    assert stack.central_item("SKU-B")[0] == sum(deltas["SKU-B"])
    stack.assert_applied_exactly_once(ops)
    for sku in deltas:
        stack.assert_local_equals_central_plus_pending(sku)
        assert stack.item(sku)["pending_count"] == 0
    assert stack.summary()["last_success_at"] is not None


def test_central_down_keeps_changes_pending_with_backoff_until_it_returns(
    stack: Stack,
) -> None:
    ops = [stack.update("SKU-D", 1) for _ in range(4)]
    stack.central.stop()
    attempts_seen: list[int] = []

    def attempts_grew() -> bool:
        stack.trigger()
        change = stack.change(ops[0])
        assert change["status"] in {"pending", "in_flight"}
        if change["status"] == "pending" and change["attempts"] not in attempts_seen:
            attempts_seen.append(change["attempts"])
        return len([a for a in attempts_seen if a > 0]) >= 2

    try:
        wait_for("two failed attempts", attempts_grew, timeout=30, every=0.5)
        # A run the last trigger started may hold it in flight: read it once it is back.
        change = wait_for(
            "the change back in pending",
            lambda: (c := stack.change(ops[0]))["status"] == "pending" and c,
            timeout=30,
        )
        assert change["last_error"].startswith(("connect", "timeout"))
        assert change["next_attempt_at"] is not None
        assert stack.item("SKU-D")["pending_count"] == 4
    finally:
        # Central comes back even if an assertion failed: the module's other tests use it.
        stack.central.restart()
    changes = stack.wait_settled(ops)
    assert {change["status"] for change in changes} == {"synced"}
    assert stack.central_item("SKU-D")[0] == 4
    stack.assert_applied_exactly_once(ops)
    stack.assert_local_equals_central_plus_pending("SKU-D")


def test_a_lost_response_is_resent_and_applied_once(stack: Stack) -> None:
    stack.faults(drop_response_rate=1.0)
    ops = [stack.update("SKU-L", 2) for _ in range(3)]
    stack.trigger()
    wait_for(
        "a failed attempt",
        lambda: stack.change(ops[0])["attempts"] >= 1,
        timeout=20,
    )
    # Central applied the batch but the store never heard: still pending locally.
    assert stack.change(ops[0])["status"] == "pending"
    stack.faults(drop_response_rate=0.0)
    changes = stack.wait_settled(ops)
    assert {change["status"] for change in changes} == {"synced"}
    assert changes[0]["resolution"] == "duplicate"
    stack.assert_applied_exactly_once(ops)
    assert stack.central_item("SKU-L")[0] == 6
    stack.assert_local_equals_central_plus_pending("SKU-L")


def test_signing_key_rotation_mid_run_renews_the_token_and_the_run_succeeds(
    stack: Stack,
) -> None:
    stack.faults(latency_ms=250)
    ops = [stack.update("SKU-K", 1) for _ in range(10)]
    stack.trigger()
    wait_for("the run under way", lambda: stack.change(ops[1])["status"] == "synced")
    stack.rotate_key()
    changes = stack.wait_settled(ops, timeout=30)
    assert {change["status"] for change in changes} == {"synced"}
    summary = stack.summary()
    assert summary["auth_failed"] is None
    assert summary["last_run"]["stopped_reason"] == "drained"
    stack.assert_applied_exactly_once(ops)
