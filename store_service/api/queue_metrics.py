"""The sync queue's depth and consumers for Prometheus, asked of RabbitMQ at scrape time.

Exported by the API, not the worker: "messages piling up with no consumer" must be visible
precisely when no worker runs. One passive declare per scrape, its answer reused for
`STORE_HEALTH_CACHE_SECONDS` so scraping often cannot become a load on the broker. When the
broker does not answer, or is the filesystem development broker, the series are absent (the
broker component of `/health` says why).
"""

import threading
import time
from collections.abc import Iterator

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from store_service.config import Settings
from store_service.sync.queue import QueueStats, measured, queue_stats

log = structlog.get_logger(__name__)
TIMEOUT_SECONDS = 2.0


class QueueCollector(Collector):
    """`store_sync_queue_messages` and `store_sync_queue_consumers`, labelled by queue."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._cached: tuple[float, QueueStats | None] | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        return list(self._families(None))  # registering asks the broker nothing

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # The families are always declared; their samples only when the broker answered.
        yield from self._families(self._stats() if measured(self._settings) else None)

    def _stats(self) -> QueueStats | None:
        with self._lock:
            now = time.monotonic()
            if self._cached and now - self._cached[0] < self._settings.health_cache_seconds:
                return self._cached[1]
            try:
                stats: QueueStats | None = queue_stats(self._settings, timeout=TIMEOUT_SECONDS)
            except Exception as exc:  # any broker failure: no figures this scrape
                log.warning("queue_metrics_unavailable", error=type(exc).__name__)
                stats = None
            self._cached = (now, stats)
            return stats

    @staticmethod
    def _families(stats: QueueStats | None) -> Iterator[GaugeMetricFamily]:
        messages = GaugeMetricFamily(
            "store_sync_queue_messages",
            "Messages ready on the store's sync queue, as RabbitMQ counts them.",
            labels=["queue"],
        )
        consumers = GaugeMetricFamily(
            "store_sync_queue_consumers",
            "Consumers (workers) attached to the store's sync queue.",
            labels=["queue"],
        )
        if stats is not None:
            messages.add_metric([stats.queue], stats.messages)
            consumers.add_metric([stats.queue], stats.consumers)
        yield messages
        yield consumers
