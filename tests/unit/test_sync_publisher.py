"""The trigger's publish retries a broker connection error once on a fresh connection, never
more, and a second failure is `SyncNotQueued` (a 503 that loses nothing), against a fake app."""

import asyncio
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kombu.exceptions import OperationalError

from store_service.logs import request_id_var
from store_service.sync.names import SYNC_TASK
from store_service.sync.publisher import SyncNotQueued, SyncPublisher
from tests.support.store_db import make_settings


class FakeCelery:
    """Fails the first `failures` publishes with a connection error; records every attempt."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: list[object] = []  # the `connection` each publish was given
        self.fresh_opened = 0
        self.fresh_open = 0

    def send_task(
        self,
        name: str,
        *,
        retry: bool,
        timeout: float,
        confirm_timeout: float,
        connection: object = None,
    ) -> SimpleNamespace:
        assert (name, retry) == (SYNC_TASK, False)
        assert 0 < timeout == confirm_timeout  # no send waits past the caller's deadline
        self.attempts.append(connection)
        if len(self.attempts) <= self.failures:
            raise OperationalError("Server unexpectedly closed connection")
        return SimpleNamespace(id=f"task-{len(self.attempts)}")

    @contextmanager
    def connection_for_write(self) -> Iterator[str]:
        self.fresh_opened += 1
        self.fresh_open += 1
        try:
            yield f"fresh-{self.fresh_opened}"
        finally:
            self.fresh_open -= 1

    def close(self) -> None:
        pass


def publisher_with(tmp_path: Path, fake: FakeCelery) -> SyncPublisher:
    publisher = SyncPublisher(make_settings(tmp_path / "store.db"))
    publisher._celery = fake
    return publisher


def test_a_publish_that_works_is_sent_once_on_the_pool(tmp_path: Path) -> None:
    fake = FakeCelery(failures=0)
    assert publisher_with(tmp_path, fake)._send(math.inf) == "task-1"
    assert fake.attempts == [None]
    assert fake.fresh_opened == 0


def test_a_dead_pooled_connection_is_retried_once_on_a_fresh_one(tmp_path: Path) -> None:
    fake = FakeCelery(failures=1)
    assert publisher_with(tmp_path, fake)._send(math.inf) == "task-2"
    assert fake.attempts == [None, "fresh-1"]
    assert fake.fresh_open == 0  # the fresh connection is closed after use


def test_a_second_failure_is_not_retried_again(tmp_path: Path) -> None:
    fake = FakeCelery(failures=5)
    with pytest.raises(OperationalError):
        publisher_with(tmp_path, fake)._send(math.inf)
    assert fake.attempts == [None, "fresh-1"]  # one retry, not more
    assert fake.fresh_open == 0


def test_past_the_deadline_there_is_no_retry(tmp_path: Path) -> None:
    fake = FakeCelery(failures=1)
    with pytest.raises(OperationalError):
        publisher_with(tmp_path, fake)._send(-math.inf)
    assert fake.attempts == [None]


def test_two_failures_answer_sync_not_queued(tmp_path: Path) -> None:
    fake = FakeCelery(failures=2)
    publisher = publisher_with(tmp_path, fake)

    async def publish() -> Any:
        try:
            return await publisher.publish()
        finally:
            await publisher.close()

    with pytest.raises(SyncNotQueued, match="OperationalError"):
        asyncio.run(publish())
    assert len(fake.attempts) == 2


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    fake = FakeCelery(failures=0)

    def broken(*_args: object, **_kwargs: object) -> None:
        fake.attempts.append(None)
        raise ValueError("not a connection error")

    fake.send_task = broken  # type: ignore[assignment,method-assign]
    with pytest.raises(ValueError, match="not a connection error"):
        publisher_with(tmp_path, fake)._send(math.inf)
    assert fake.attempts == [None]


def test_a_publish_carries_the_callers_request_id(tmp_path: Path) -> None:
    """The publish runs on the publisher's own threads, in the caller's context: the request id
    the trigger's request set is what the task's header (before_task_publish) reads."""
    fake = FakeCelery(failures=0)
    seen: list[str | None] = []
    send = fake.send_task

    def recording(*args: Any, **kwargs: Any) -> SimpleNamespace:
        seen.append(request_id_var.get())
        return send(*args, **kwargs)

    fake.send_task = recording  # type: ignore[method-assign]
    publisher = publisher_with(tmp_path, fake)

    async def publish() -> Any:
        request_id_var.set("rid-1")
        try:
            return await publisher.publish()
        finally:
            await publisher.close()

    assert asyncio.run(publish()) == "task-1"
    assert seen == ["rid-1"]
