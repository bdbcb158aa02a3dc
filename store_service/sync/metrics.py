"""The worker's Prometheus metrics, and the central client wrapper that feeds the batch ones.

Prefork pitfall, and the choice made: a prefork worker runs tasks in child processes, each
with its own registry, while only one process can serve the port — a scrape would see one
child's counters or none. The store worker therefore runs tasks in its main process (the
threads pool by default, `worker_pool="threads"`; the solo pool in tests), and that process
serves these metrics on `STORE_WORKER_METRICS_PORT`. A prefork worker logs a warning at start.
(Prometheus multiprocess mode would also work, at the cost of a shared directory to manage and
files left behind by killed children.)

Every name starts with `store_`; counters end in `_total`, durations in `_seconds`.
"""

import threading
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram

from store_service.config import Settings
from store_service.domain import ItemOutcome, RunResult
from store_service.storage.db import WRITE_LOCK_WAIT
from store_service.sync.central import (
    AuthFailure,
    BulkOutcome,
    CentralClient,
    SyncItem,
    TransientFailure,
)
from store_service.sync.run import SyncReport, run_sync

# One registry for the worker process, separate from the default one so importing this module
# in the API process (or a test) never mixes the two sets.
REGISTRY = CollectorRegistry(auto_describe=True)
REGISTRY.register(WRITE_LOCK_WAIT)  # the worker's waits for the API's (or a command's) writes

SYNC_RUNS = Counter(
    "store_sync_runs",
    f"Sync runs by how they ended ({', '.join(RunResult)}).",
    ["result"],
    registry=REGISTRY,
)
SYNC_ITEMS = Counter(
    "store_sync_items",
    f"Changes sent to central by outcome ({', '.join(ItemOutcome)}).",
    ["outcome"],
    registry=REGISTRY,
)
SYNC_RUN_DURATION = Histogram(
    "store_sync_run_duration_seconds",
    "Wall time of one sync run.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
BATCH_DURATION = Histogram(
    "store_sync_batch_duration_seconds",
    "Time of one bulk-sync call to central, whatever its outcome.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
RETRIES = Counter(
    "store_sync_retries",
    "Changes put back for a later retry after a transient failure.",
    registry=REGISTRY,
)
BACKOFF = Histogram(
    "store_sync_backoff_seconds",
    "Delay given to a change put back for retry (capped exponential backoff with jitter).",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
TOKENS = Counter(
    "store_central_tokens_acquired",
    "Bearer tokens fetched from central (first use, renewal before expiry, or after a 401).",
    registry=REGISTRY,
)
CENTRAL_ERRORS = Counter(
    "store_central_errors",
    "Failed bulk-sync calls by kind (connect, timeout, server_error, rate_limited, protocol, "
    "http_status, auth).",
    ["kind"],
    registry=REGISTRY,
)

# Zero-valued series for the usual labels, so rates and alerts work before the first event.
for _result in RunResult:
    SYNC_RUNS.labels(_result.value)
for _outcome in ItemOutcome:
    SYNC_ITEMS.labels(_outcome.value)
for _kind in ("connect", "timeout", "server_error", "rate_limited", "auth"):
    CENTRAL_ERRORS.labels(_kind)


class MeteredCentral:
    """A `CentralClient` whose bulk-sync calls are timed and whose failures are counted."""

    def __init__(self, client: CentralClient) -> None:
        self.client = client
        self._tokens_seen = client.tokens.acquisitions

    def bulk_sync(self, items: Sequence[SyncItem]) -> BulkOutcome:
        started = time.perf_counter()
        try:
            outcome = self.client.bulk_sync(items)
        finally:
            BATCH_DURATION.observe(time.perf_counter() - started)
            self._count_tokens()
        if isinstance(outcome, TransientFailure):
            CENTRAL_ERRORS.labels(outcome.kind).inc()
        elif isinstance(outcome, AuthFailure):
            CENTRAL_ERRORS.labels("auth").inc()
        return outcome

    def _count_tokens(self) -> None:
        acquired = self.client.tokens.acquisitions
        if acquired > self._tokens_seen:
            TOKENS.inc(acquired - self._tokens_seen)
            self._tokens_seen = acquired

    def close(self) -> None:
        self.client.close()


def record_run(report: SyncReport) -> None:
    """Count one finished run (a run that raised is counted by `record_crash`)."""
    SYNC_RUNS.labels(report.stopped_reason.value).inc()
    SYNC_RUN_DURATION.observe(report.duration_seconds)
    for outcome, count in report.outcomes.items():
        SYNC_ITEMS.labels(outcome.value).inc(count)
    if report.backoff_delays:
        RETRIES.inc(len(report.backoff_delays))
        for delay in report.backoff_delays:
            BACKOFF.observe(delay)


def record_crash() -> None:
    SYNC_RUNS.labels(RunResult.ERROR.value).inc()


_central: MeteredCentral | None = None
_central_lock = threading.Lock()


def _shared_central(settings: Settings) -> MeteredCentral:
    """One central client per worker process, kept across runs: its token cache and keep-alive
    connection outlive a run, so a run does not begin with a token request every time."""
    global _central
    with _central_lock:
        if _central is None:
            _central = MeteredCentral(CentralClient.from_settings(settings))
        return _central


def run_metered_sync(settings: Settings) -> SyncReport:
    """One sync run (see `store_service.sync.run_sync`), counted in this module's metrics."""
    try:
        report = run_sync(settings, client=_shared_central(settings))
    except Exception:
        record_crash()
        raise
    record_run(report)
    return report
