"""Request and response models: the store API's contract as it appears in OpenAPI."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from store_service.api.health import HealthStatus
from store_service.domain import (
    MAX_ABS_DELTA,
    OPERATION_ID_MAX_LENGTH,
    OPERATION_ID_PATTERN,
    ChangeState,
)


def _integral_float_to_int(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# JSON Schema (and so OpenAPI 3.1) calls 5.0 an integer: accept it as 5, like central does.
# "5", 5.5 and true stay refused (the model is strict).
JsonInt = Annotated[int, BeforeValidator(_integral_float_to_int)]
# Bounds before the validator: on `JsonInt | None` they would leak out of the JSON Schema as
# `"ge"`/`"le"`, which no client or generator understands.
Version = Annotated[int, Field(ge=0, le=2**53), BeforeValidator(_integral_float_to_int)]


class UpdateRequest(BaseModel):
    """A local stock change. Strict: `true` is not an integer and unknown fields are refused."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"delta": -1, "operation_id": "6f1c2a52-3f0e-4d7e-9d6c-1b2a3c4d5e6f"},
                {"delta": 24, "operation_id": "receiving-2026-11-25-0001", "version": 7},
            ]
        },
    )

    delta: JsonInt = Field(
        ge=-MAX_ABS_DELTA,
        le=MAX_ABS_DELTA,
        description="Non-zero change to apply; negative sells, positive receives.",
        # The validator below refuses 0; say so in the schema too, or clients and generators
        # would take 0 for valid (found by Schemathesis' positive_data_acceptance).
        json_schema_extra={"not": {"const": 0}},
    )
    operation_id: str = Field(
        min_length=1,
        max_length=OPERATION_ID_MAX_LENGTH,
        pattern=OPERATION_ID_PATTERN,
        description="Client-chosen idempotency key (a UUID is recommended).",
    )
    version: Version | None = Field(
        default=None,
        description="The local version the caller last saw; omit to apply unconditionally.",
    )

    @field_validator("delta")
    @classmethod
    def _non_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("delta must not be zero")
        return value


class UpdateResponse(BaseModel):
    sku: str
    quantity: int
    version: int
    operation_id: str
    delta: int
    sync_status: ChangeState = Field(description="Always `pending` when first acknowledged.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sku": "SKU-1001",
                    "quantity": 41,
                    "version": 8,
                    "operation_id": "6f1c2a52-3f0e-4d7e-9d6c-1b2a3c4d5e6f",
                    "delta": -1,
                    "sync_status": "pending",
                }
            ]
        }
    )


class InventoryItem(BaseModel):
    sku: str
    quantity: int = Field(description="Local view: central_quantity + pending_delta.")
    version: int = Field(description="Local version; pass it as `version` to update.")
    pending_delta: int = Field(description="Sum of deltas central has not applied yet.")
    pending_count: int = Field(description="How many changes central has not applied yet.")
    central_quantity: int | None = Field(description="Central's last known quantity.")
    central_version: int | None = Field(description="Central's last known version.")
    last_synced_at: float | None = Field(description="Unix time of the last news from central.")
    updated_at: float

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sku": "SKU-1001",
                    "quantity": 41,
                    "version": 8,
                    "pending_delta": -2,
                    "pending_count": 2,
                    "central_quantity": 43,
                    "central_version": 12,
                    "last_synced_at": 1795000000.0,
                    "updated_at": 1795000100.0,
                }
            ]
        }
    )


class InventoryPage(BaseModel):
    items: list[InventoryItem]
    next_after: str | None = Field(description="Pass as `after` for the next page; null at end.")


class ChangeView(BaseModel):
    """Where one change stands on its way to central."""

    id: int = Field(description="Outbox sequence number (the order changes are sent in).")
    operation_id: str
    sku: str
    delta: int
    status: ChangeState
    attempts: int
    last_error: str | None
    next_attempt_at: float | None = Field(description="Unix time of the next send, if pending.")
    central_version: int | None
    resolution: str | None
    created_at: float
    updated_at: float
    finalized_at: float | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "operation_id": "6f1c2a52-3f0e-4d7e-9d6c-1b2a3c4d5e6f",
                    "sku": "SKU-1001",
                    "delta": -1,
                    "status": "pending",
                    "attempts": 2,
                    "last_error": "transient: connect error",
                    "next_attempt_at": 1795000160.0,
                    "central_version": None,
                    "resolution": None,
                    "created_at": 1795000000.0,
                    "updated_at": 1795000100.0,
                    "finalized_at": None,
                }
            ]
        }
    )


class ChangePage(BaseModel):
    items: list[ChangeView]
    next_after_id: int | None = Field(
        description="Pass as `after_id` for the next page; null when there is no more."
    )


class TriggerResponse(BaseModel):
    task_id: str = Field(description="Celery task id of the queued sync run.")
    pending_count: int = Field(description="Changes pending or in flight right now.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"task_id": "0b6a4f0e-6a57-4b8e-a8e3-4cc7c7e3f6d1", "pending_count": 12}]
        }
    )


class AuthFailureInfo(BaseModel):
    at: float = Field(description="Unix time central last refused the store's credentials.")
    detail: str


class SyncSummary(BaseModel):
    counts: dict[ChangeState, int] = Field(description="Changes per state.")
    oldest_pending_age_seconds: float | None = Field(
        description="Age of the oldest change pending or in flight; null when none."
    )
    next_attempt_at: float | None = Field(description="Unix time of the next due change.")
    last_success_at: float | None = Field(description="Unix time the last good run ended.")
    last_run: dict[str, Any] | None = Field(description="The last run's report.")
    auth_failed: AuthFailureInfo | None = Field(
        description="Set while central refuses the store's credentials; cleared by a good run."
    )
    lease_holder: str | None = Field(description="The run holding the sync lease, if any.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "counts": {
                        "pending": 3,
                        "in_flight": 0,
                        "synced": 120,
                        "conflict": 1,
                        "rejected": 0,
                        "discarded": 2,
                    },
                    "oldest_pending_age_seconds": 42.5,
                    "next_attempt_at": 1795000160.0,
                    "last_success_at": 1795000100.0,
                    "last_run": {"stopped_reason": "drained", "batches": 1, "sent": 5},
                    "auth_failed": None,
                    "lease_holder": None,
                }
            ]
        }
    )


class ComponentReport(BaseModel):
    status: HealthStatus
    latency_ms: float = Field(description="How long the probe took (a cached answer repeats it).")
    detail: str | None = Field(None, description="Why the component is not ok.")
    queue_messages: int | None = Field(
        None, description="broker: messages ready on the sync queue (RabbitMQ's count)."
    )
    queue_consumers: int | None = Field(
        None, description="broker: consumers of the sync queue; 0 with messages is degraded."
    )


class HealthReport(BaseModel):
    status: HealthStatus = Field(
        description="down (503) if the database is; degraded if any other is."
    )
    components: dict[str, ComponentReport]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "degraded",
                    "components": {
                        "database": {"status": "ok", "latency_ms": 0.4},
                        "broker": {
                            "status": "ok",
                            "latency_ms": 3.1,
                            "queue_messages": 0,
                            "queue_consumers": 1,
                        },
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
