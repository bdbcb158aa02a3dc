"""Health routes: `/health/live` (the process answers), `/health/ready` and `/health`.

See `store_service.health` for the components and the ok/degraded/down mapping: `down` is 503,
`ok` and `degraded` are 200 (a degraded store still takes updates and keeps them locally).
"""

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from store_service.api.deps import RuntimeDep, StoreRuntime
from store_service.api.health import HealthChecker, http_status

router = APIRouter(tags=["health"])

CHECKER = "health.checker"

Status = Literal["ok", "degraded", "down"]


class ComponentReport(BaseModel):
    status: Status
    latency_ms: float = Field(description="How long the probe took (a cached answer repeats it).")
    detail: str | None = Field(None, description="Why the component is not ok.")


class HealthReport(BaseModel):
    status: Status = Field(description="down (503) if the database is; degraded if any other is.")
    components: dict[str, ComponentReport]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "degraded",
                    "components": {
                        "database": {"status": "ok", "latency_ms": 0.4},
                        "broker": {"status": "ok", "latency_ms": 3.1},
                        "central": {
                            "status": "down",
                            "latency_ms": 2001.0,
                            "detail": "ConnectTimeout: timed out",
                        },
                        "worker": {"status": "ok", "latency_ms": 0.3},
                        "backlog": {"status": "ok", "latency_ms": 0.6},
                    },
                }
            ]
        }
    )


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


def _checker(runtime: StoreRuntime) -> HealthChecker:
    checker: HealthChecker | None = runtime.extras.get(CHECKER)
    if checker is None:
        checker = runtime.extras[CHECKER] = HealthChecker(runtime.settings)
    return checker


async def _report(runtime: StoreRuntime, response: Response) -> HealthReport:
    status, components = await _checker(runtime).check()
    response.status_code = http_status(status)
    return HealthReport.model_validate(
        {"status": status, "components": {k: v.as_dict() for k, v in components.items()}}
    )


@router.get("/health/live", response_model=Liveness, summary="The process answers")
async def live() -> Liveness:
    return Liveness()


_READY_RESPONSES = {503: {"model": HealthReport, "description": "The database is down."}}


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
