"""`GET /metrics` for the API: request rate/errors/latency per route, update outcomes, backlog.

One pure ASGI middleware measures every request, labelled by route template
(`/v1/local/inventory/{sku}/update`, never the raw path): the template is read from the route
the router matched (`scope["route"]`) after the answer. prometheus-fastapi-instrumentator did
this before; it resolved the route again on every request by flattening FastAPI's included
routers, which cost the update path about a third of its throughput (docs/performance.md). The
series are the ones it exported: `store_http_requests_total{handler,method,status}` and
`store_http_request_duration_seconds{handler,method,status}`, status grouped (`2xx`).

Update outcomes are counted in the same pass, from what the route and the problem handlers
produced: 200 is `applied`, or `replayed` with `Idempotent-Replayed: true`; a problem is
classified by the slug the problem handler records on the request state
(`http_edge.problems.SLUG_STATE`): `version_conflict`, `insufficient_stock`; any other 4xx is
`invalid`; `storage-unavailable` (a 503: disk full, read-only or vanished database) is
`storage_unavailable`; any other 5xx is `error`. A client that hung up before its answer
(`http_edge.errors`) is `client_closed` and its request is recorded with status 499, never as
a 5xx. Nothing is counted inside the writer.

Each app has its own registry (tests build many apps in one process).
"""

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from http_edge.errors import CLIENT_CLOSED_STATE, CLIENT_CLOSED_STATUS
from store_service.api.backlog_metrics import BacklogCollector
from store_service.api.problems import SLUG_STATE
from store_service.api.queue_metrics import QueueCollector
from store_service.config import Settings
from store_service.domain import StorageCondition, UpdateOutcome
from store_service.storage.db import WRITE_LOCK_WAIT
from store_service.storage.faults import StorageFaults

NAMESPACE = "store"
UPDATE_HANDLER = "/v1/local/inventory/{sku}/update"
_PROBLEM_OUTCOMES = {
    "version-conflict": UpdateOutcome.VERSION_CONFLICT,
    "insufficient-stock": UpdateOutcome.INSUFFICIENT_STOCK,
    "storage-unavailable": UpdateOutcome.STORAGE_UNAVAILABLE,
}
# Latency buckets around what the hot path does (a group commit is a few milliseconds).
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Not measured: the scrape itself and the probes.
EXCLUDED_PREFIXES = ("/metrics", "/health")
_REPLAYED = (b"idempotent-replayed", b"true")


def update_outcome(status: int, replayed: bool, problem_slug: str | None) -> UpdateOutcome:
    """The outcome of one answered update request."""
    if status == 200:
        return UpdateOutcome.REPLAYED if replayed else UpdateOutcome.APPLIED
    if status == CLIENT_CLOSED_STATUS:
        return UpdateOutcome.CLIENT_CLOSED
    outcome = _PROBLEM_OUTCOMES.get(problem_slug or "")
    if outcome is not None:
        return outcome
    return UpdateOutcome.ERROR if status >= 500 else UpdateOutcome.INVALID


class RequestMetricsMiddleware:
    """Counts and times every routed request, and classifies update answers, in one pass."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        requests: Counter,
        latency: Histogram,
        updates: Counter,
    ) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency
        self.updates = {outcome: updates.labels(outcome.value) for outcome in UpdateOutcome}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        start: Message = {"status": 500}  # what the app answered; 500 if it never did

        async def send_with_status(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self._observe(scope, start, started)

    def _observe(self, scope: Scope, start: Message, started: float) -> None:
        route = scope.get("route")
        handler = getattr(route, "path", None)
        if handler is None or handler.startswith(EXCLUDED_PREFIXES):
            return  # untemplated (404s, scanners' paths) or excluded: no label to grow
        method = scope["method"]
        state: Mapping[str, Any] = scope.get("state") or {}
        status = start["status"]
        if start.get("type") is None and state.get(CLIENT_CLOSED_STATE):
            status = CLIENT_CLOSED_STATUS  # no answer was started: the client left first
        group = f"{status // 100}xx"
        self.requests.labels(method, group, handler).inc()
        self.latency.labels(method, group, handler).observe(time.perf_counter() - started)
        if handler == UPDATE_HANDLER:
            replayed = any(tuple(h) == _REPLAYED for h in start.get("headers", ()))
            self.updates[update_outcome(status, replayed, state.get(SLUG_STATE))].inc()


class StorageCollector(Collector):
    """`store_storage_unavailable` (1 while the API's writes fail for a storage condition) and
    `store_storage_failures_total{condition}`, read from the writer's `StorageFaults`."""

    def __init__(self, faults: Callable[[], StorageFaults | None]) -> None:
        self._faults = faults

    def collect(self) -> Iterator[Metric]:
        faults = self._faults()
        unavailable = GaugeMetricFamily(
            f"{NAMESPACE}_storage_unavailable",
            "1 while the database cannot take writes (disk full, read-only, missing, I/O).",
        )
        unavailable.add_metric([], 0 if faults is None or faults.condition is None else 1)
        yield unavailable
        failures = CounterMetricFamily(
            f"{NAMESPACE}_storage_failures",
            "Writes failed for a storage condition, by condition.",
            labels=["condition"],
        )
        for condition in StorageCondition:
            failures.add_metric(
                [condition.value], 0 if faults is None else faults.failures[condition]
            )
        yield failures


def _storage_faults(app: FastAPI) -> StorageFaults | None:
    runtime = getattr(app.state, "runtime", None)
    return None if runtime is None else runtime.writer.faults


def install_metrics(app: FastAPI, settings: Settings) -> CollectorRegistry:
    """Add the metrics middleware (call after the other middleware) and `GET /metrics`."""
    registry = CollectorRegistry(auto_describe=True)
    labels = ["method", "status", "handler"]
    requests = Counter(
        "http_requests",
        "Total number of requests by method, status and handler.",
        labels,
        namespace=NAMESPACE,
        registry=registry,
    )
    latency = Histogram(
        "http_request_duration_seconds",
        "Latency with only few buckets by handler, method and status.",
        labels,
        namespace=NAMESPACE,
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    updates = Counter(
        "updates",
        f"Answered stock updates by outcome ({', '.join(UpdateOutcome)}).",
        ["outcome"],
        namespace=NAMESPACE,
        registry=registry,
    )
    registry.register(BacklogCollector(settings.database_path, settings.sqlite_synchronous))
    registry.register(QueueCollector(settings))
    registry.register(StorageCollector(lambda: _storage_faults(app)))
    registry.register(WRITE_LOCK_WAIT)
    app.add_middleware(
        RequestMetricsMiddleware, requests=requests, latency=latency, updates=updates
    )

    @app.get("/metrics", tags=["health"], summary="Metrics")
    def metrics(request: Request) -> Response:
        """Endpoint that serves Prometheus metrics."""
        return Response(content=generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return registry
