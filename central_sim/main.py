"""The ASGI app: `create_app(settings)` factory, and `app` for `uvicorn central_sim.main:app`.

Building `app` at import is safe: settings are read and the database opened only in the
lifespan, so importing this module touches no environment, file or socket.
"""

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.concurrency import run_in_threadpool

from central_sim.api import health, inventory, sim, tokens
from central_sim.api.console.routes import build_console
from central_sim.api.console.routes import configure as configure_console
from central_sim.config import Settings, load_settings
from central_sim.logs import configure_logging
from central_sim.metrics import Metrics
from central_sim.problems import PROBLEM_JSON, PROBLEMS, install_problem_handlers
from central_sim.request_ids import RequestIdLogContext
from central_sim.runtime import open_runtime
from central_sim.schemas import BulkItem
from http_edge.body_limit import BodySizeLimitMiddleware
from http_edge.json_body import UniqueKeysMiddleware

log = structlog.get_logger("central_sim")
DEFAULT_MAX_BODY_BYTES = 1_048_576


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], float] = time.time
) -> FastAPI:
    """A simulator app; without `settings` they are read from the environment at startup.
    `clock` is the wall clock for tokens and idempotency retention (tests pass their own)."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    console_router, console = build_console(
        lambda: app.state.runtime.settings.admin_token.get_secret_value()
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        active = settings or load_settings()
        configure_logging(active.log_level)
        runtime = await run_in_threadpool(open_runtime, active, metrics, clock)
        app.state.runtime = runtime
        configure_console(console, active)
        log.info(
            "central_sim_started",
            database=active.database_path(),
            services=sorted(runtime.services),  # names only, never secrets
            max_batch_items=active.max_batch_items,
        )
        try:
            yield
        finally:
            await run_in_threadpool(runtime.close)
            log.info("central_sim_stopped")

    app = FastAPI(
        title="central_sim",
        version="1.0.0",
        description=(
            "A faithful simulator of the central inventory service with fault "
            "injection, a competing writer and a journal. Errors are RFC 9457 problem details."
        ),
        lifespan=lifespan,
    )
    install_problem_handlers(app)

    def body_limit() -> int:
        runtime = getattr(app.state, "runtime", None)
        return runtime.settings.max_body_bytes if runtime else DEFAULT_MAX_BODY_BYTES

    # Inside the body limit: the unique-keys check reads at most the allowed body.
    app.add_middleware(UniqueKeysMiddleware, problems=PROBLEMS)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=body_limit, problems=PROBLEMS)
    app.add_middleware(RequestIdLogContext)
    for router in (tokens.router, inventory.router, sim.router, health.router):
        app.include_router(router)
    # The control panel (HTML, its own session and CSRF), signed in with the admin token.
    app.include_router(console_router)
    Instrumentator(registry=registry, excluded_handlers=["/metrics"]).instrument(
        app, metric_namespace="central_sim"
    ).expose(app, include_in_schema=True, tags=["health"])
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI documents this override
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with every error response declared as application/problem+json."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["BulkItem"] = BulkItem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    bad_body = {"description": "Body is not parseable", **_problem_content()}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if "requestBody" in operation:
                operation["responses"].setdefault("400", bad_body)
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "header" and parameter["name"].lower() == "idempotency-key":
                    # Required in the contract; absent it gets our 400 problem, not a 422.
                    parameter["required"] = True
                    parameter["schema"] = {"type": "string", "minLength": 1, "maxLength": 128}
            for status, response in operation.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400:
                    response.update(_problem_content())
    metrics = schema["paths"].get("/metrics", {}).get("get")
    if metrics:  # Prometheus text exposition, not the JSON the generated route claims
        metrics["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    app.openapi_schema = schema
    return schema


def _problem_content() -> dict[str, Any]:
    return {"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


app = create_app()
