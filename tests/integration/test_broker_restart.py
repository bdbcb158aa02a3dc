"""The first sync trigger after a broker restart is queued, not refused.

The store API publishes over Celery's pooled connection; a RabbitMQ restart kills it without
the pool noticing. The restart is staged with a private Toxiproxy proxy in front of the real
RabbitMQ: disabling it cuts every connection the API holds, enabling it makes the broker
reachable again. The trigger right after must answer 202 and its message must be in the
queue (the publisher retries once on a fresh connection; before that, this answered 503).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.broker import queue_depth
from tests.support.services import BrokerProxy
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path: Path, broker_proxy: BrokerProxy) -> Iterator[Stack]:
    # No worker: the sync messages stay in the queue to be counted.
    stack = start_stack(tmp_path, broker_proxy.url, worker=False)
    yield stack
    stack.stop()


def test_the_first_trigger_after_a_broker_restart_is_queued(
    stack: Stack, broker_proxy: BrokerProxy, rabbitmq_url: str
) -> None:
    queue = stack.env["STORE_SYNC_QUEUE"]
    stack.update("SKU-MQ-RESTART", 1)
    first = stack.trigger()
    assert first.status_code == 202, first.text  # the pooled connection is open now
    before = queue_depth(rabbitmq_url, queue).messages
    assert before == 1

    broker_proxy.restart()

    after_restart = stack.trigger()
    assert after_restart.status_code == 202, after_restart.text
    assert after_restart.json()["pending_count"] == 1
    # Read straight from RabbitMQ, not through the proxy. A publish confirmed by the broker is
    # in the queue; more than one message is allowed (an extra run is harmless).
    assert queue_depth(rabbitmq_url, queue).messages > before
    # The restart did break the pooled connection: the publisher had to retry (without the
    # fault this test would pass for nothing).
    assert "sync_publish_retry" in (stack.log_dir / "store-api.log").read_text()
