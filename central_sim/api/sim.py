"""The /_sim control API (admin token): seed, reset, faults, key rotation, competing writer,
journal, stats and inventory listing. Plain `def` handlers: they run in the threadpool."""

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

from central_sim import operations
from central_sim.api.deps import AdminDep, RuntimeDep
from central_sim.api.inventory import READ_ITEM
from central_sim.competing import CompetingWriterConfig
from central_sim.faults import Faults, FaultsUpdate
from central_sim.ledger import SKU_PATTERN
from central_sim.problems import ProblemError, problem_responses
from central_sim.runtime import Runtime
from central_sim.schemas import InventoryItem, integral_float_to_int

router = APIRouter(
    prefix="/_sim",
    tags=["simulator control"],
    dependencies=[AdminDep],
    responses=problem_responses(401, 422),
)
log = structlog.get_logger("central_sim.sim")
SkuPath = Annotated[str, Path(pattern=SKU_PATTERN, examples=["SKU-1"])]


SeedQuantity = Annotated[
    int,
    Field(ge=0, le=10**12, examples=[100]),
    Strict(),
    BeforeValidator(integral_float_to_int),
]


class SeedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: SeedQuantity


class InventoryPage(BaseModel):
    items: list[InventoryItem]
    next_after_sku: str | None = Field(description="Pass as after_sku for the next page.")


class JournalEntryOut(BaseModel):
    seq: int
    kind: str = Field(description="seed, adjust or competing")
    operation_id: str | None
    service: str
    sku: str
    delta: int
    quantity: int = Field(description="Quantity after the change.")
    version: int = Field(description="Version after the change.")
    at: str


class JournalPage(BaseModel):
    entries: list[JournalEntryOut]
    next_after_seq: int = Field(description="Pass as after_seq for the next page.")


class Done(BaseModel):
    status: str


class CompetingWriterState(BaseModel):
    running: bool
    service: str | None = None
    config: CompetingWriterConfig | None = None
    started_at: float | None = Field(None, description="Unix time of the start.")
    stops_at: float | None = Field(None, description="Unix time it stops by itself.")
    applied: int = Field(0, description="Adjustments applied and journaled.")
    refused: int = Field(0, description="Deltas refused because stock would go negative.")
    stopped_at: float | None = None
    stopped_reason: str | None = Field(None, description="stopped, replaced or max_seconds.")


class Stats(BaseModel):
    model_config = {
        "json_schema_extra": {
            "example": {
                "services": {
                    "inventory-service": {
                        "applied": 10,
                        "duplicate": 1,
                        "conflict": 2,
                        "rejected": 0,
                        "dropped_response": 1,
                    }
                },
                "totals": {
                    "applied": 10,
                    "duplicate": 1,
                    "conflict": 2,
                    "rejected": 0,
                    "dropped_response": 1,
                },
                "skus": 3,
                "journal_entries": 13,
            }
        }
    }

    services: dict[str, dict[str, int]] = Field(
        description="Per service: applied, duplicate, conflict, rejected, dropped_response "
        "(central-sim also counts injected `competing` moves)."
    )
    totals: dict[str, int]
    skus: int
    journal_entries: int


@router.put(
    "/inventory/{sku}",
    response_model=InventoryItem,
    summary="Seed a SKU's quantity",
    responses={
        200: {
            "description": "The seeded SKU",
            # For stateful testing: a seeded SKU can be read and adjusted.
            "links": {
                "ReadItem": {"operationId": READ_ITEM, "parameters": {"sku": "$request.path.sku"}},
                "Adjust": {
                    "operationId": "adjust_v1_inventory__sku__adjust_post",
                    "parameters": {"sku": "$request.path.sku"},
                    "requestBody": {"sku": "$request.path.sku", "delta": -1},
                },
            },
        }
    },
)
def seed(sku: SkuPath, body: SeedRequest, rt: RuntimeDep) -> InventoryItem:
    stock = operations.seed(rt, sku=sku, quantity=body.quantity)
    log.info("seeded", sku=sku, quantity=body.quantity)
    return InventoryItem(sku=sku, quantity=stock.quantity, version=stock.version)


@router.get("/inventory", response_model=InventoryPage, summary="List SKUs, paged by SKU")
def list_inventory(
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    after_sku: Annotated[str | None, Query(max_length=64)] = None,
) -> InventoryPage:
    rows = operations.list_stock(rt, after_sku=after_sku, limit=limit)
    next_after = rows[-1]["sku"] if len(rows) == limit else None
    return InventoryPage(items=[InventoryItem(**r) for r in rows], next_after_sku=next_after)


@router.post("/reset", response_model=Done, summary="Forget all state; stop the competing writer")
def reset(rt: RuntimeDep) -> Done:
    operations.reset(rt)
    log.info("reset")
    return Done(status="reset")


@router.get("/faults", response_model=Faults, summary="Every fault knob")
def get_faults(rt: RuntimeDep) -> Faults:
    return operations.current_faults(rt)


@router.put("/faults", response_model=Faults, summary="Change some knobs (partial update)")
def put_faults(body: FaultsUpdate, rt: RuntimeDep) -> Faults:
    faults = operations.update_faults(rt, body)
    log.info("faults_set", **body.model_dump(exclude_unset=True))
    return faults


@router.delete("/faults", response_model=Faults, summary="Reset every knob to its default")
def clear_faults(rt: RuntimeDep) -> Faults:
    faults = operations.update_faults(rt, None)
    log.info("faults_cleared")
    return faults


@router.post("/rotate-signing-key", response_model=Done, summary="New signing key; old tokens fail")
def rotate_signing_key(rt: RuntimeDep) -> Done:
    operations.rotate_signing_key(rt)
    rt.metrics.faults.labels("key_rotation").inc()
    log.info("signing_key_rotated")
    return Done(status="rotated")


ServicePath = Annotated[str, Path(min_length=1, max_length=128, examples=["inventory-service"])]


class Revocation(BaseModel):
    service: str
    revoked: bool


def _set_revoked(rt: Runtime, service: str, *, revoked: bool) -> None:
    try:
        operations.set_revoked(rt, service, revoked=revoked)
    except operations.UnknownService as exc:
        raise ProblemError(404, "unknown-service", "Unknown service", str(exc)) from exc


@router.post(
    "/services/{service}/revoke",
    response_model=Revocation,
    responses=problem_responses(404),
    summary="Revoke an identity: its secret and its issued tokens are refused (401)",
)
def revoke_service(service: ServicePath, rt: RuntimeDep) -> Revocation:
    _set_revoked(rt, service, revoked=True)
    rt.metrics.faults.labels("revocation").inc()
    log.info("service_revoked", service=service)
    return Revocation(service=service, revoked=True)


@router.delete(
    "/services/{service}/revoke",
    response_model=Revocation,
    responses=problem_responses(404),
    summary="Restore a revoked identity",
)
def restore_service(service: ServicePath, rt: RuntimeDep) -> Revocation:
    _set_revoked(rt, service, revoked=False)
    log.info("service_restored", service=service)
    return Revocation(service=service, revoked=False)


@router.post(
    "/competing-writer",
    response_model=CompetingWriterState,
    summary="Start (or replace) the competing writer",
)
def start_competing_writer(body: CompetingWriterConfig, rt: RuntimeDep) -> dict[str, Any]:
    return rt.competing.start(body)


@router.get(
    "/competing-writer",
    response_model=CompetingWriterState,
    summary="Competing writer state and counts",
)
def competing_writer_status(rt: RuntimeDep) -> dict[str, Any]:
    return rt.competing.status()


@router.delete(
    "/competing-writer", response_model=CompetingWriterState, summary="Stop the competing writer"
)
def stop_competing_writer(rt: RuntimeDep) -> dict[str, Any]:
    return rt.competing.stop("stopped")


@router.get("/journal", response_model=JournalPage, summary="Applied changes, paged by seq")
def read_journal(
    rt: RuntimeDep,
    # Bounded: past SQLite's 64-bit INTEGER it was a 500 (found by Schemathesis).
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    sku: Annotated[str | None, Query(pattern=SKU_PATTERN)] = None,
) -> JournalPage:
    entries = operations.journal(rt, after_seq=after_seq, limit=limit, sku=sku)
    next_after = entries[-1]["seq"] if entries else after_seq
    return JournalPage(entries=[JournalEntryOut(**e) for e in entries], next_after_seq=next_after)


@router.get("/stats", response_model=Stats, summary="Outcome counts per service and in total")
def read_stats(rt: RuntimeDep) -> dict[str, Any]:
    return operations.stats(rt)
