"""`GET /health`: unauthenticated liveness with a real database round trip."""

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from central_sim import operations
from central_sim.api.deps import RuntimeDep
from central_sim.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Liveness and database reachability")
async def health(rt: RuntimeDep) -> Health:
    return Health(**await run_in_threadpool(operations.health, rt))
