"""Request and response bodies: the central contract as pydantic models, with examples."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints

from central_sim.ledger import MAX_ABS_DELTA, MAX_KEY_LENGTH, SKU_PATTERN, Reason, Status

Sku = Annotated[str, StringConstraints(pattern=SKU_PATTERN)]
OperationId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEY_LENGTH)]


def integral_float_to_int(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# A JSON integer: 5 and 5.0 (JSON Schema calls both integers) pass; "5", 5.5 and true are
# client bugs, refused rather than guessed at.
WholeInt = Annotated[int, BeforeValidator(integral_float_to_int), Strict()]


# Whole numbers with bounds: `Annotated[int, Field(bounds), Strict(), BeforeValidator(...)]`.
# The bounds must come before the validators: `Annotated[WholeInt, Field(ge=0)]` leaks `"ge": 0`
# into the JSON Schema instead of `"minimum": 0`, so generators and clients never see the bound
# (found by Schemathesis). Spelled out per type, so type checkers see each as `int`.
Delta = Annotated[
    int,
    Field(ge=-MAX_ABS_DELTA, le=MAX_ABS_DELTA, json_schema_extra={"not": {"const": 0}}),
    Strict(),
    BeforeValidator(integral_float_to_int),
]
Version = Annotated[int, Field(ge=0), Strict(), BeforeValidator(integral_float_to_int)]


class TokenRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"service_name": "inventory-service", "service_secret": "<secret>"}
        },
    )

    service_name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    service_secret: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class TokenResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {"access_token": "eyJhbGciOi...", "token_type": "bearer", "expires_in": 900}
        }
    )

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int = Field(description="Seconds until the token expires.")


class InventoryItem(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"example": {"sku": "SKU-1", "quantity": 12, "version": 7}}
    )

    sku: str
    quantity: int
    version: int


class AdjustRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"sku": "SKU-1", "delta": 5},
                {"sku": "SKU-1", "delta": -2, "version": 7},
            ]
        },
    )

    sku: Sku
    delta: Delta = Field(description="Non-zero change to apply.")
    version: Version | None = Field(
        None, description="Central version last seen; omit or null to apply unconditionally."
    )


class AdjustResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "operation_id": "0b6f0b1e-4a57-4d4e-9a59-0f1c7f0c2a11",
                "sku": "SKU-1",
                "status": "applied",
                "quantity": 10,
                "version": 8,
            }
        }
    )

    operation_id: str
    sku: str
    status: Literal["applied", "duplicate"]
    quantity: int
    version: int


class BulkItem(BaseModel):
    """One bulk item, validated on its own so a bad item never fails the batch; an item with
    unknown fields is an `invalid_item` (a typo must not be applied as something else)."""

    model_config = ConfigDict(extra="forbid")

    sku: Sku
    delta: Delta
    version: Version | None = None
    operation_id: OperationId


class BulkSyncRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "items": [
                    {"sku": "SKU-1", "delta": -1, "version": 7, "operation_id": "op-1"},
                    {"sku": "SKU-2", "delta": 5, "version": None, "operation_id": "op-2"},
                ]
            }
        },
    )

    # Loosely typed on purpose: each item is validated alone (see BulkItem).
    items: list[Any] = Field(
        min_length=1,
        description="1..CENTRAL_SIM_MAX_BATCH_ITEMS items shaped like BulkItem.",
        # Any value is accepted (a bad item is answered per item, never by failing the request);
        # the BulkItem branch documents the shape and lets generators build good items.
        json_schema_extra={"items": {"anyOf": [{"$ref": "#/components/schemas/BulkItem"}, {}]}},
    )


class BulkResult(BaseModel):
    operation_id: str | None
    sku: str | None
    status: Status
    quantity: int | None = Field(description="Central quantity; null where unknown.")
    version: int | None = Field(description="Central version; null where unknown.")
    reason: Reason | None = Field(None, description="Why an item was rejected.")


class BulkSyncResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "results": [
                    {
                        "operation_id": "op-1",
                        "sku": "SKU-1",
                        "status": "applied",
                        "quantity": 11,
                        "version": 8,
                        "reason": None,
                    },
                    {
                        "operation_id": "op-2",
                        "sku": "SKU-2",
                        "status": "conflict",
                        "quantity": 4,
                        "version": 3,
                        "reason": None,
                    },
                ]
            }
        }
    )

    results: list[BulkResult]


class Health(BaseModel):
    status: Literal["ok"]
    database: str
    skus: int
    journal_entries: int
