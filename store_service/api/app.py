"""The store API: `create_app(settings)` builds it; `app` is what uvicorn serves on port 8001."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig

from http_edge.body_limit import BodySizeLimitMiddleware
from http_edge.problems import Problem
from store_service.api.auth import ApiKeys, api_key_dependency, declare_security
from store_service.api.console.routes import build_console
from store_service.api.deps import StoreRuntime
from store_service.api.health import HealthChecker
from store_service.api.metrics import install_metrics
from store_service.api.middleware import RequestIdMiddleware
from store_service.api.problems import PROBLEMS, install_problem_handlers
from store_service.api.routes import changes as change_routes
from store_service.api.routes import health as health_routes
from store_service.api.routes import inventory as inventory_routes
from store_service.api.routes import sync as sync_routes
from store_service.config import Settings, get_settings
from store_service.gc_tuning import tune_garbage_collector
from store_service.logs import configure_logging
from store_service.storage import db
from store_service.storage.writer import Writer
from store_service.sync.central import CentralClient
from store_service.sync.publisher import SyncPublisher

log = structlog.get_logger(__name__)

DESCRIPTION = """
Local-first inventory for one shop. Every change is applied to the local SQLite database and
recorded in a durable outbox in one transaction, acknowledged at once, and pushed to central by
the sync worker. Errors are RFC 9457 problem documents (`application/problem+json`).
"""


NO_OPENTELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


def _operation_id(route: APIRoute) -> str:
    return route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API; the lifespan opens the database and closes it again."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, json=settings.log_json)
        if settings.migrate_on_startup:
            await asyncio.to_thread(db.migrate, settings)
        sync = settings.sqlite_synchronous
        db.warn_if_unsafe(sync)
        writer = Writer(settings.database_path, synchronous=sync).start()
        runtime = StoreRuntime(
            settings=settings,
            writer=writer,
            reader=db.connect(settings.database_path, readonly=True, synchronous=sync),
            publisher=SyncPublisher(settings),
            central=CentralClient.from_settings(settings),
            health=HealthChecker(settings, storage=writer.faults),
        )
        app.state.runtime = runtime
        tune_garbage_collector()
        log.info("store_api_started", database=str(settings.database_path))
        try:
            yield
        finally:
            await runtime.publisher.close()
            runtime.central.close()
            runtime.writer.stop()
            runtime.reader.close()
            log.info("store_api_stopped")

    app = FastAPI(
        title="Store Service",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # FastAPI's built-in OpenTelemetry hooks: unused (metrics are Prometheus, traces none),
        # yet left on they look the providers up in os.environ on every request.
        telemetry=NO_OPENTELEMETRY,
    )
    install_problem_handlers(app)
    # Optional API keys (store_service/api/auth.py): without keys no dependency at all.
    keys = ApiKeys(settings.api_keys)
    anonymous_reads = settings.api_allow_anonymous_reads
    v1_dependencies = (
        [Depends(api_key_dependency(keys, allow_anonymous_reads=anonymous_reads))] if keys else []
    )
    inventory_routes.install_update_route(app, v1_dependencies)  # the hot path: first, lean
    app.include_router(inventory_routes.router, dependencies=v1_dependencies)
    app.include_router(change_routes.router, dependencies=v1_dependencies)
    app.include_router(sync_routes.router, dependencies=v1_dependencies)
    app.include_router(health_routes.router)  # unauthenticated: probes and load balancers
    # The operator console (HTML, its own session and CSRF): ordinary routes after the API's.
    app.include_router(build_console(settings, keys))
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, problems=PROBLEMS
    )
    app.add_middleware(RequestIdMiddleware)
    install_metrics(app, settings)  # last: its middleware is outermost and sees every answer
    _declare_problem_schema(app, secured=bool(keys), anonymous_reads=anonymous_reads)
    return app


def _declare_problem_schema(app: FastAPI, *, secured: bool, anonymous_reads: bool) -> None:
    """Add the Problem schema to OpenAPI components so every problem response can name it;
    with API keys on, declare the security schemes and 401s too."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = default_openapi()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Problem"] = Problem.model_json_schema()
            if secured:
                declare_security(schema, allow_anonymous_reads=anonymous_reads)
            metrics = schema.get("paths", {}).get("/metrics", {}).get("get")
            if metrics:  # Prometheus text exposition, not the JSON the generated route claims
                text = {"text/plain": {"schema": {"type": "string"}}}
                metrics["responses"]["200"]["content"] = text
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI documents this override


app = create_app()
