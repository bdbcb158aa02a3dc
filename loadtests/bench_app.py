"""The store API exactly as served, plus one trivial route: the framework's ceiling for the bench.

    uvicorn --factory loadtests.bench_app:create_bench_app

`create_app(settings)` builds the real app (same middleware, logging, lifespan, writer);
this only adds `POST /_bench/noop/{sku}`, the idiomatic FastAPI endpoint (a pydantic body model
in, a dict out) that does no I/O. The production app never has this route.
"""

from fastapi import FastAPI
from pydantic import BaseModel

from store_service.main import create_app  # the entry point every commit has


class NoopBody(BaseModel):
    delta: int
    operation_id: str
    version: int | None = None


def create_bench_app() -> FastAPI:
    app = create_app()

    @app.post("/_bench/noop/{sku}", include_in_schema=False)
    async def noop(sku: str, body: NoopBody) -> dict[str, object]:
        return {"sku": sku, "operation_id": body.operation_id, "delta": body.delta}

    # First in the routing table, as the update route is: FastAPI resolves routes of included
    # routers through an extra layer per request, which a route added after them would pay to
    # be found and make the ceiling look lower than it is.
    app.router.routes.insert(0, app.router.routes.pop())
    return app
