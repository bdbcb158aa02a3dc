"""How the API asks the worker for a sync run: publish the task, and "sync soon" debouncing.

The API publishes only; it never runs a sync itself. With `STORE_SYNC_SOON_SECONDS` set, each
acknowledged change schedules one publish that many seconds later, at most once per window.
The debounce timer lives in the API process on purpose: if the API dies before it fires, the
change is still in SQLite and the next beat picks it up, so nothing is worth putting in the
broker for it.

A broker restart leaves Celery's pooled connection dead without the pool knowing: the first
publish on it fails (with publisher confirms it fails loudly rather than vanishing). So a
connection error is retried once on a fresh, unpooled connection; the failed pooled connection
reconnects on its next use. A retry may queue one run more than asked for, which is harmless:
the lease lets one run at a time and runs are idempotent.

`SyncNotQueued` (a 503 on the trigger) is not a refusal and not a loss: the run may or may not
be queued (a publish past its deadline can still land), and the changes stay in SQLite either
way, where the next beat or trigger finds them.
"""

import asyncio
import contextvars
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import structlog

from store_service.config import Settings
from store_service.sync.names import BROKER_CONNECT_TIMEOUT_SECONDS, SYNC_TASK

if TYPE_CHECKING:
    from celery import Celery

log = structlog.get_logger(__name__)

# Celery is imported with the first publish, not at start: importing it is a good part of the
# API's start-up, and the first acknowledged update does not need it (docs/performance.md, (f)).

# A publish waits for the TCP connect and the publisher confirm. The caller gives up past this
# deadline, and the send's own socket and confirm waits end there too, so a broker that stopped
# answering holds neither (the message may still land later; an extra sync run is harmless).
PUBLISH_DEADLINE_SECONDS = BROKER_CONNECT_TIMEOUT_SECONDS + 2.0


class SyncNotQueued(Exception):
    """The broker did not take the sync task in time; the changes wait in SQLite."""


class SyncPublisher:
    """Publishes sync runs for one API process; owns its Celery app (used only to publish)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._celery: Celery | None = None
        self._celery_lock = threading.Lock()
        self._soon_delay = settings.sync_soon_seconds
        self._soon: asyncio.Task[None] | None = None
        # Publishes get threads of their own: a send stuck on a broker that stopped answering
        # must not take the default executor's threads, which health probes and refreshes use.
        self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sync-publish")

    async def publish(self) -> str:
        """Enqueue one sync run and return its task id; `SyncNotQueued` when the broker does not
        take it within PUBLISH_DEADLINE_SECONDS."""
        deadline = time.monotonic() + PUBLISH_DEADLINE_SECONDS
        try:
            # In the caller's context, as asyncio.to_thread would: the request id travels in it.
            in_context = contextvars.copy_context().run
            sending = asyncio.get_running_loop().run_in_executor(
                self._threads, in_context, self._send, deadline
            )
            return await asyncio.wait_for(sending, timeout=PUBLISH_DEADLINE_SECONDS)
        except Exception as exc:
            raise SyncNotQueued(repr(exc)) from exc

    def _app(self) -> "Celery":
        with self._celery_lock:
            if self._celery is None:
                from store_service.sync.celery_app import create_celery

                self._celery = create_celery(self._settings)
            return self._celery

    def _send(self, deadline: float) -> str:
        """Publish, retrying once on a fresh connection after a connection error, unless the
        caller's deadline (time.monotonic()) has passed: then nobody waits for the answer."""
        from kombu.exceptions import OperationalError  # with Celery: loaded at the first publish

        # retry=False: Celery's own publish retries would hold the caller far past the deadline;
        # the confirm wait ends at the deadline too, so a send never outlives its caller long.
        try:
            return self._send_once(deadline)
        except OperationalError as exc:  # what Celery raises for a broker connection error
            if time.monotonic() >= deadline:
                raise
            log.info("sync_publish_retry", error=repr(exc))
        # Once, on a connection of its own: a second failure means the broker is really away.
        with self._app().connection_for_write() as fresh:
            return self._send_once(deadline, connection=fresh)

    def _send_once(self, deadline: float, **options: object) -> str:
        left = max(0.1, deadline - time.monotonic())
        task = self._app().send_task(
            SYNC_TASK, retry=False, timeout=left, confirm_timeout=left, **options
        )
        return str(task.id)

    def notify_change(self) -> None:
        """Call after acknowledging a change: schedules a debounced publish when configured."""
        if self._soon_delay is None:
            return
        if self._soon is None or self._soon.done():
            self._soon = asyncio.get_running_loop().create_task(
                self._publish_later(self._soon_delay)
            )

    async def _publish_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await self.publish()
        except SyncNotQueued as exc:
            # The change is safe in SQLite; the next beat or trigger will carry it.
            log.warning("sync_soon_publish_failed", error=str(exc))

    async def close(self) -> None:
        if self._soon is not None:
            self._soon.cancel()
        if self._celery is not None:
            await asyncio.to_thread(self._celery.close)
        self._threads.shutdown(wait=False, cancel_futures=True)
