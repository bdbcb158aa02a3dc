"""Health routes: `/health/live` (the process answers), `/health/ready` and `/health`.

See `store_service.api.health` for the components and the ok/degraded/down mapping: `down` is
503, `ok` and `degraded` are 200 (a degraded store still takes updates and keeps them locally).
"""

from typing import Any

from fastapi import APIRouter, Response

from store_service.api.deps import RuntimeDep, StoreRuntime
from store_service.api.health import http_status
from store_service.api.schemas import HealthReport, Liveness

router = APIRouter(tags=["health"])


async def _report(runtime: StoreRuntime, response: Response) -> HealthReport:
    status, components = await runtime.health.check()
    response.status_code = http_status(status)
    return HealthReport.model_validate(
        {"status": status, "components": {k: v.as_dict() for k, v in components.items()}}
    )


@router.get("/health/live", response_model=Liveness, summary="The process answers")
async def live() -> Liveness:
    return Liveness()


_READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"model": HealthReport, "description": "The database is down."}
}


@router.get(
    "/health/ready",
    response_model=HealthReport,
    responses=_READY_RESPONSES,
    summary="Component health; 503 only when the store cannot take updates",
)
async def ready(runtime: RuntimeDep, response: Response) -> HealthReport:
    return await _report(runtime, response)


@router.get(
    "/health",
    response_model=HealthReport,
    responses=_READY_RESPONSES,
    summary="Component health (same as /health/ready)",
)
async def health(runtime: RuntimeDep, response: Response) -> HealthReport:
    return await _report(runtime, response)
