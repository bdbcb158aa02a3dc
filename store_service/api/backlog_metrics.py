"""Backlog figures for Prometheus, read from the database at scrape time (a custom collector).

Computed per scrape, not kept in counters: they are facts about the outbox (which the worker,
operators and the API all change), and a fresh read-only connection per scrape keeps the
collector off the API's own connections and threads. Exported by the API only, so Prometheus
sees one copy of them.
"""

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from store_service.domain import ChangeState, SqliteSynchronous
from store_service.storage.db import connect
from store_service.sync import heartbeat
from store_service.sync.status import summary as sync_summary

log = structlog.get_logger(__name__)


class BacklogCollector(Collector):
    """`store_outbox_*`, `store_sync_last_success_timestamp_seconds` and friends."""

    def __init__(
        self, database: Path, synchronous: SqliteSynchronous = SqliteSynchronous.FULL
    ) -> None:
        self._database = database
        self._synchronous = synchronous

    def describe(self) -> list[GaugeMetricFamily]:
        # Declared without reading the database, so registering the collector costs nothing.
        return list(self._families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            conn = connect(self._database, readonly=True, synchronous=self._synchronous)
        except sqlite3.Error as exc:
            log.warning("backlog_metrics_unavailable", error=repr(exc))
            return
        try:
            now = time.time()
            summary = sync_summary(conn, now=now)
            beat = heartbeat.read(conn)
        except sqlite3.Error as exc:
            log.warning("backlog_metrics_unavailable", error=repr(exc))
            return
        finally:
            conn.close()
        yield from self._families(summary, beat)

    @staticmethod
    def _families(
        summary: dict[str, Any] | None = None, beat: dict[str, Any] | None = None
    ) -> Iterator[GaugeMetricFamily]:
        changes = GaugeMetricFamily(
            "store_outbox_changes", "Changes in the outbox by state.", labels=["state"]
        )
        oldest = GaugeMetricFamily(
            "store_outbox_oldest_pending_age_seconds",
            "Age of the oldest change pending or in flight (0 when there is none).",
        )
        last_success = GaugeMetricFamily(
            "store_sync_last_success_timestamp_seconds",
            "Unix time the last successful sync run ended (0 before the first one).",
        )
        auth_failed = GaugeMetricFamily(
            "store_sync_auth_failed",
            "1 while central refuses the store's credentials, else 0.",
        )
        worker_beat = GaugeMetricFamily(
            "store_worker_heartbeat_timestamp_seconds",
            "Unix time of the last worker heartbeat (0 before the first one).",
        )
        if summary is not None:
            counts = summary["counts"]
            for state in ChangeState:
                changes.add_metric([state.value], counts.get(state, 0))
            oldest.add_metric([], summary["oldest_pending_age_seconds"] or 0.0)
            last_success.add_metric([], summary["last_success_at"] or 0.0)
            auth_failed.add_metric([], 1.0 if summary["auth_failed"] else 0.0)
            worker_beat.add_metric([], float(beat["at"]) if beat else 0.0)
        yield from (changes, oldest, last_success, auth_failed, worker_beat)
