"""Celery: the app factory, the beat schedule, and thin tasks over `store_service.sync`.

    celery -A store_service.worker worker --concurrency 1
    celery -A store_service.worker beat      # exactly ONE beat per store

Run exactly one beat per store: two beats double the schedule (harmless, the sync lease lets
one run at a time, but wasteful). Workers may be several; the lease still serializes runs.

Broker: `STORE_BROKER_URL` (RabbitMQ in production). Unset, kombu's `filesystem://` transport
under `STORE_DATA_DIR/broker` is used — development only: it never fsyncs and has no publisher
confirms. Nothing is lost either way: the changes live in SQLite, a message only says "sync".

Reliability settings: late acks + reject on worker loss (a SIGKILLed worker's task is
redelivered; the run is idempotent thanks to the lease and operation_ids), prefetch 1,
publisher confirms, JSON only, a durable queue `STORE_SYNC_QUEUE` (default `store.sync`;
a quorum queue on RabbitMQ; give each store its own when stores share a broker).
Beat messages expire after one interval, so a backlog of ticks piled up while the worker was
down collapses into the next one.

`app` is resolved lazily (module `__getattr__`) so importing this module reads no settings
and opens no connection; `celery -A store_service.worker` finds it all the same.
"""

import contextlib
import os
import sys
from pathlib import Path
from typing import IO, Any

from celery import Celery, signals
from kombu.entity import Exchange, Queue

from store_service.config import Settings, get_settings
from store_service.logs import configure_logging, signal_safe_line
from store_service.sync import signals as _signal_handlers  # noqa: F401 (connects them)
from store_service.sync.metrics import run_metered_sync
from store_service.sync.names import (
    BROKER_CONNECT_TIMEOUT_SECONDS,
    SYNC_TASK,
    broker_url,
    is_amqp,
)

PING_TASK = "store_service.ping"


def filesystem_folders(settings: Settings) -> dict[str, Path]:
    """The dev broker's folders; producer and consumer share one queue folder."""
    root = settings.data_dir.resolve() / "broker"
    return {
        "queue": root / "queue",
        "processed": root / "processed",
        "control": root / "control",  # kombu's default is ./control in the working directory
    }


def transport_options(settings: Settings) -> dict[str, Any]:
    url = broker_url(settings)
    if is_amqp(url):
        # Publisher confirms: apply_async returns only once RabbitMQ has the message.
        return {"confirm_publish": True}
    if url.startswith("filesystem://"):
        folders = filesystem_folders(settings)
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]),
            "store_processed": False,
        }
    return {}


def sync_queue(settings: Settings) -> Queue:
    """Durable; a quorum queue on RabbitMQ (replicated, survives a node restart)."""
    # A topic exchange, because Celery's native delayed delivery for quorum queues needs one.
    name = settings.sync_queue
    exchange = Exchange(name, type="topic", durable=True)
    arguments = {"x-queue-type": "quorum"} if is_amqp(broker_url(settings)) else None
    return Queue(name, exchange, routing_key=name, durable=True, queue_arguments=arguments)


def create_celery(settings: Settings | None = None) -> Celery:
    """A Celery app for the store named by the settings, with its tasks and beat schedule."""
    settings = settings or get_settings()
    app = Celery("store_service", set_as_current=False)
    app.conf.update(
        broker_url=broker_url(settings),
        broker_transport_options=transport_options(settings),
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=BROKER_CONNECT_TIMEOUT_SECONDS,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[sync_queue(settings)],
        task_default_queue=settings.sync_queue,
        task_default_exchange=settings.sync_queue,
        task_default_exchange_type="topic",
        task_default_routing_key=settings.sync_queue,
        worker_hijack_root_logger=False,
        # Tasks run in the worker's main process, so its metrics server sees every counter
        # (see store_service/sync/metrics.py); `--pool=solo` works too, prefork does not.
        worker_pool="threads",
        beat_schedule={
            "store-sync": {
                "task": SYNC_TASK,
                "schedule": settings.sync_interval_seconds,
                "options": {"expires": settings.sync_interval_seconds},
            }
        },
        beat_schedule_filename=str(settings.data_dir.resolve() / "celerybeat-schedule"),
    )

    @app.task(name=SYNC_TASK, acks_late=True, reject_on_worker_lost=True)
    def sync_task() -> dict[str, Any]:
        """One sync run (all the work is in store_service.sync.run_sync)."""
        return run_metered_sync(settings).as_dict()

    @app.task(name=PING_TASK)
    def ping() -> str:
        """Answers through the sync queue: proves a worker consumes it."""
        return "pong"

    return app


@signals.setup_logging.connect(weak=False)
def _configure_worker_logging(**_kwargs: Any) -> None:
    """Worker and beat log through the same structlog JSON renderer as the API."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)


def _say_json(msg: str, f: IO[str] = sys.__stderr__) -> None:  # type: ignore[assignment]  # stderr exists in a worker
    """Celery's `safe_say` (shutdown banners written from signal handlers), as a JSON line on
    the same stream: still one `os.write`, no lock taken."""
    text = " ".join(msg.split())
    # As Celery's own: a lost banner must never abort a shutdown.
    with contextlib.suppress(OSError):
        if text:
            os.write(f.fileno(), signal_safe_line(text, logger="celery.apps.worker"))


def _json_from_the_first_line() -> None:
    """Lines Celery writes before its `setup_logging` signal become JSON too: logging is set
    up when the command line loads the app (before the root SecurityWarning and the
    `worker_init` handlers), and the shutdown banners go through `_say_json`."""
    import celery.apps.worker  # the worker program's module; beat imports it too

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    if settings.log_json:
        celery.apps.worker.safe_say = _say_json


_app: Celery | None = None


def __getattr__(name: str) -> Celery:
    """`store_service.worker.app`, built on first access from the environment's settings.

    Only the `celery -A store_service.worker` command line reaches it (the API and the tools
    call `create_celery`), so this is where the worker's and beat's logging starts."""
    global _app
    if name == "app":
        if _app is None:
            _json_from_the_first_line()
            _app = create_celery()
        return _app
    raise AttributeError(name)
