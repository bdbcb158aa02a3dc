"""Crashes and restarts: a worker SIGKILLed mid-batch, RabbitMQ restarted, beat on a timer."""

from collections.abc import Iterator

import pytest

from harness.store import launch_beat
from tests.support.services import rabbitmq_restart
from tests.support.stack import Stack, start_stack, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, rabbitmq_url: str) -> Iterator[Stack]:
    stack = start_stack(
        tmp_path_factory.mktemp("sync-recovery"),
        rabbitmq_url,
        STORE_SYNC_BATCH_SIZE="4",
        STORE_SYNC_LEASE_SECONDS="3",
    )
    yield stack
    stack.stop()


def test_a_worker_killed_mid_batch_converges_exactly_once_after_restart(stack: Stack) -> None:
    stack.clear_faults()
    stack.faults(latency_ms=1500)  # each batch waits at central: time to kill the worker
    ops = [stack.update("SKU-KILL", 1) for _ in range(12)]
    stack.trigger()
    wait_for("a batch in flight", lambda: stack.change(ops[0])["status"] == "in_flight")
    assert stack.worker is not None
    stack.worker.kill()  # SIGKILL: no cleanup, the lease and in_flight rows stay behind
    assert stack.change(ops[0])["status"] == "in_flight"
    stack.clear_faults()
    stack.start_worker("worker-2")
    changes = stack.wait_settled(ops, timeout=40)
    assert {change["status"] for change in changes} == {"synced"}
    stack.assert_applied_exactly_once(ops)
    assert stack.central_item("SKU-KILL")[0] == 12
    stack.assert_local_equals_central_plus_pending("SKU-KILL")


def test_a_rabbitmq_restart_loses_nothing_and_triggers_work_again(stack: Stack) -> None:
    ops = [stack.update("SKU-MQ", 2) for _ in range(3)]
    rabbitmq_restart()
    # The node takes a moment to accept connections again: a trigger may answer 503 (nothing
    # is lost) until it does. The dead pooled connection itself is retried on a fresh one
    # (tests/integration/test_broker_restart.py).
    wait_for("a trigger accepted", lambda: stack.trigger().status_code == 202, timeout=60)
    changes = stack.wait_settled(ops, timeout=60)
    assert {change["status"] for change in changes} == {"synced"}
    stack.assert_applied_exactly_once(ops)
    stack.assert_local_equals_central_plus_pending("SKU-MQ")


def test_beat_schedules_sync_runs_on_its_interval(stack: Stack) -> None:
    beat = launch_beat({**stack.env, "STORE_SYNC_INTERVAL_SECONDS": "1"}, stack.log_dir)
    stack.extra.append(beat)
    try:
        ops = [stack.update("SKU-BEAT", 1) for _ in range(3)]
        # No trigger: only beat enqueues runs.
        wait_for(
            "beat-driven sync",
            lambda: all(stack.change(op)["status"] == "synced" for op in ops),
            timeout=30,
            every=0.5,
        )
        stack.assert_applied_exactly_once(ops)
    finally:
        beat.stop()
