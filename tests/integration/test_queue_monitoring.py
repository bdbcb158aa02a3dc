"""The sync queue as the real RabbitMQ sees it: with no worker, a trigger's message waits with
no consumer and the store says so (health, metrics, healthcheck); a worker drains it."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.store import start_worker
from tests.support.metrics import scrape
from tests.support.stack import Stack, start_stack, wait_for

pytestmark = pytest.mark.integration

HEALTHCHECK = Path(sys.executable).parent / "store-worker-healthcheck"


@pytest.fixture
def stack(tmp_path: Path, rabbitmq_url: str) -> Iterator[Stack]:
    """central_sim and the store API on their own queue; no worker yet."""
    started = start_stack(tmp_path, rabbitmq_url, worker=False, STORE_HEALTH_CACHE_SECONDS="0")
    try:
        yield started
    finally:
        started.stop()


def broker_health(stack: Stack) -> dict[str, Any]:
    return dict(stack.http.get(f"{stack.api.base_url}/health").json()["components"]["broker"])


def queue_series(stack: Stack) -> tuple[float, float] | None:
    """(messages, consumers) from the API's /metrics; None while the series are absent."""
    metrics = scrape(f"{stack.api.base_url}/metrics")
    queue = stack.env["STORE_SYNC_QUEUE"]
    # The families are always declared; their samples only once the broker has answered.
    names = ("store_sync_queue_messages", "store_sync_queue_consumers")
    if not all(metrics.has_sample(name, queue=queue) for name in names):
        return None
    return (
        metrics.value("store_sync_queue_messages", queue=queue),
        metrics.value("store_sync_queue_consumers", queue=queue),
    )


def healthcheck(stack: Stack) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HEALTHCHECK), "--timeout", "1.5"],
        env={**stack.env, "PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_messages_piling_up_with_no_consumer_are_seen_then_drained(stack: Stack) -> None:
    queue = stack.env["STORE_SYNC_QUEUE"]
    operation_id = stack.update("SKU-QMON", 2)
    assert stack.trigger().status_code == 202  # published (confirmed) to a queue nobody reads

    def piling_up() -> dict[str, Any] | None:
        broker = broker_health(stack)
        return broker if broker.get("queue_messages", 0) >= 1 else None

    broker = wait_for("the trigger's message on the queue", piling_up, timeout=20)
    assert broker["status"] == "degraded"
    assert broker["queue_consumers"] == 0
    assert (
        broker["detail"]
        == f"{broker['queue_messages']} message(s) waiting on {queue} with no consumer"
    )
    messages, consumers = wait_for("the queue series", lambda: queue_series(stack), timeout=10)
    assert (messages >= 1, consumers) == (True, 0)
    no_worker = healthcheck(stack)
    assert no_worker.returncode == 1, no_worker.stderr
    assert "with no consumer" in no_worker.stderr

    stack.worker = start_worker(stack.env, stack.log_dir)
    stack.wait_settled([operation_id])

    def drained() -> dict[str, Any] | None:
        broker = broker_health(stack)
        consuming = broker.get("queue_consumers", 0) >= 1 and broker["queue_messages"] == 0
        return broker if consuming else None

    broker = wait_for("the worker to take the queue", drained, timeout=30)
    assert broker["status"] == "ok"
    assert "detail" not in broker or broker["detail"] is None
    messages, consumers = wait_for("the queue series", lambda: queue_series(stack), timeout=10)
    assert (messages, consumers >= 1) == (0, True)

    def healthy() -> subprocess.CompletedProcess[str] | None:
        checked = healthcheck(stack)
        return checked if checked.returncode == 0 else None

    ok = wait_for("the healthcheck", healthy, timeout=30)
    assert f"0 message(s) waiting on {queue}, 1 consumer(s)" in ok.stdout
