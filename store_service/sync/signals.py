"""Celery signal handlers: the worker's metrics server and heartbeat, and request ids in tasks.

- `worker_init` (worker main process only, not beat): serve `worker_metrics.REGISTRY` on
  `STORE_WORKER_METRICS_HOST:STORE_WORKER_METRICS_PORT` (0 = off) and start the heartbeat.
  A port already taken is logged, not fatal: a worker without metrics still syncs.
- `before_task_publish` (API and beat): the current request id travels in a message header,
  so `POST /v1/local/sync/trigger` with `X-Request-ID: abc` leads to a task whose log lines and
  central calls (`X-Request-ID` on httpx) carry `abc`. Tasks without one (beat's ticks) use
  `task-<task id>`, so central's logs can still be tied to a run.
"""

from typing import Any

import structlog
from celery import signals
from prometheus_client import start_http_server

from store_service.config import Settings, get_settings
from store_service.gc_tuning import freeze_startup_objects
from store_service.logs import request_id_var
from store_service.storage.db import warn_if_unsafe
from store_service.sync import metrics as worker_metrics
from store_service.sync.heartbeat import HeartbeatThread

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "store_request_id"

_heartbeat: HeartbeatThread | None = None


def start_worker_observability(settings: Settings, hostname: str | None = None) -> None:
    """Metrics server and heartbeat for this worker process (idempotent)."""
    global _heartbeat
    if settings.worker_metrics_port:
        try:
            start_http_server(
                settings.worker_metrics_port,
                addr=settings.worker_metrics_host,
                registry=worker_metrics.REGISTRY,
            )
            log.info(
                "worker_metrics_serving",
                host=settings.worker_metrics_host,
                port=settings.worker_metrics_port,
            )
        except OSError as exc:
            log.warning(
                "worker_metrics_unavailable", port=settings.worker_metrics_port, error=repr(exc)
            )
    if _heartbeat is None:
        _heartbeat = HeartbeatThread(settings, hostname).start()


@signals.worker_init.connect(weak=False)
def _on_worker_init(sender: Any = None, **_kwargs: Any) -> None:
    pool_cls = getattr(sender, "pool_cls", None)
    # Compared by module name: importing the prefork pool would pull billiard into the API.
    if getattr(pool_cls, "__module__", "") == "celery.concurrency.prefork":
        log.warning(
            "worker_metrics_incomplete",
            reason="prefork children keep their own counters; use --pool=threads or solo",
        )
    settings = get_settings()
    warn_if_unsafe(settings.sqlite_synchronous)
    start_worker_observability(settings, getattr(sender, "hostname", None))
    # Freeze only: the API's higher young threshold would let each batch's httpx cycles pile up.
    freeze_startup_objects()


@signals.worker_shutdown.connect(weak=False)
def _on_worker_shutdown(**_kwargs: Any) -> None:
    global _heartbeat
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None


@signals.before_task_publish.connect(weak=False)
def _add_request_id(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    request_id = request_id_var.get()
    if request_id and headers is not None:
        headers[REQUEST_ID_HEADER] = request_id


@signals.task_prerun.connect(weak=False)
def _bind_request_id(task_id: str = "", task: Any = None, **_kwargs: Any) -> None:
    request_id = (task.request.get(REQUEST_ID_HEADER) if task is not None else None) or (
        f"task-{task_id}"
    )
    request_id_var.set(str(request_id))  # logs read it from there (logs._add_request_id)
    structlog.contextvars.bind_contextvars(task_id=task_id)


@signals.task_postrun.connect(weak=False)
def _unbind_request_id(**_kwargs: Any) -> None:
    request_id_var.set(None)
    structlog.contextvars.unbind_contextvars("task_id")
