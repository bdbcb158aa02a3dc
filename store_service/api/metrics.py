"""`GET /metrics` for the API: request rate/errors/latency per route, update outcomes, backlog.

prometheus-fastapi-instrumentator measures every request in one pure ASGI middleware, labelled
by route template (`/v1/local/inventory/{sku}/update`, never the raw path). Its default set
(request and response size histograms, a 21-bucket latency histogram) is replaced by two
series families to keep the hot path cheap: a request counter and a latency histogram.

Update outcomes are counted in the same middleware pass, from what the route and the problem
handlers produced: 200 is `applied`, or `replayed` with `Idempotent-Replayed: true`; a problem
is classified by the slug the problem handler records on the request state
(`problems.PROBLEM_SLUG_STATE`): `version_conflict`, `insufficient_stock`; any other 4xx is
`invalid`; a 5xx is `error`. Nothing is counted inside the writer.

Each app has its own registry (tests build many apps in one process).
"""

from collections.abc import Callable

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator import metrics as pfi_metrics
from prometheus_fastapi_instrumentator.metrics import Info

from store_service.api.problems import PROBLEM_SLUG_STATE
from store_service.backlog_metrics import BacklogCollector
from store_service.config import Settings

NAMESPACE = "store"
UPDATE_HANDLER = "/v1/local/inventory/{sku}/update"
UPDATE_OUTCOMES = ("applied", "replayed", "version_conflict", "insufficient_stock", "invalid")
_PROBLEM_OUTCOMES = {
    "version-conflict": "version_conflict",
    "insufficient-stock": "insufficient_stock",
}
# Latency buckets around what the hot path does (a group commit is a few milliseconds).
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def update_outcome(info: Info) -> str:
    """The outcome label of one answered update request."""
    status = info.response.status_code if info.response is not None else 500
    if status == 200:
        replayed = info.response.headers.get("idempotent-replayed") == "true"
        return "replayed" if replayed else "applied"
    if status >= 500:
        return "error"
    slug = getattr(info.request.state, PROBLEM_SLUG_STATE, None)
    return _PROBLEM_OUTCOMES.get(slug or "", "invalid")


def _update_outcomes(registry: CollectorRegistry) -> Callable[[Info], None]:
    counter = Counter(
        "updates",
        "Answered stock updates by outcome (applied, replayed, version_conflict, "
        "insufficient_stock, invalid, error).",
        ["outcome"],
        namespace=NAMESPACE,
        registry=registry,
    )
    for outcome in UPDATE_OUTCOMES:
        counter.labels(outcome)

    def instrumentation(info: Info) -> None:
        if info.modified_handler == UPDATE_HANDLER:
            counter.labels(update_outcome(info)).inc()

    return instrumentation


def install_metrics(app: FastAPI, settings: Settings) -> CollectorRegistry:
    """Instrument the app (call after adding the other middleware) and add `GET /metrics`."""
    registry = CollectorRegistry(auto_describe=True)
    instrumentator = Instrumentator(
        should_group_status_codes=True,
        should_ignore_untemplated=True,  # scanners' random paths would grow the label set
        excluded_handlers=["^/metrics$", "^/health"],
        registry=registry,
    )
    instrumentator.add(
        pfi_metrics.requests(metric_namespace=NAMESPACE, registry=registry),
        pfi_metrics.latency(metric_namespace=NAMESPACE, buckets=LATENCY_BUCKETS, registry=registry),
        _update_outcomes(registry),
    )
    registry.register(BacklogCollector(settings.database_path))
    instrumentator.instrument(app, metric_namespace=NAMESPACE).expose(
        app, include_in_schema=True, tags=["health"]
    )
    return registry
