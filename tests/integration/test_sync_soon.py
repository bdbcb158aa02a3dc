"""'Sync soon' mode: a change reaches central without a trigger or beat, shortly after."""

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import Stack, start_stack, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path: Path, rabbitmq_url: str) -> Iterator[Stack]:
    stack = start_stack(tmp_path, rabbitmq_url, STORE_SYNC_SOON_SECONDS="0.3")
    yield stack
    stack.stop()


def test_a_change_reaches_central_on_its_own_soon_after(stack: Stack) -> None:
    latencies: list[float] = []
    ops: list[str] = []
    for _ in range(5):
        started = time.monotonic()
        op = stack.update("SKU-SOON", 1)
        ops.append(op)
        wait_for(
            "the change to reach central without a trigger",
            lambda op=op: stack.change(op)["status"] == "synced",  # type: ignore[misc]
            timeout=30,
            every=0.05,
        )
        latencies.append(time.monotonic() - started)
    # A figure, not an assertion: this machine is shared and noisy.
    print(f"sync-soon update→central latency: median {statistics.median(latencies):.2f}s")
    stack.assert_applied_exactly_once(ops)
    assert stack.central_item("SKU-SOON")[0] == 5
    stack.assert_local_equals_central_plus_pending("SKU-SOON")
