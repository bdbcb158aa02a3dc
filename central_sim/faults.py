"""Fault knobs: what they are, how a partial update merges, and the dice that fire them."""

import random
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints

from central_sim.ledger import SKU_PATTERN
from central_sim.schemas import integral_float_to_int

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
SkuKey = Annotated[str, StringConstraints(pattern=SKU_PATTERN)]
ConflictCount = Annotated[
    int,
    Field(ge=0, le=1_000_000),
    Strict(),
    BeforeValidator(integral_float_to_int),
]
RetryAfter = Annotated[int, Field(ge=0, le=3600), Strict(), BeforeValidator(integral_float_to_int)]
Millis = Annotated[int, Field(ge=0, le=60_000), Strict(), BeforeValidator(integral_float_to_int)]
TokenTtl = Annotated[int, Field(ge=1, le=86_400), Strict(), BeforeValidator(integral_float_to_int)]


class Faults(BaseModel):
    """Every knob with its current value; the defaults mean "behave like a healthy central"."""

    model_config = ConfigDict(extra="forbid")

    conflict_rate: Rate = Field(
        0.0, description="Fraction of versioned writes answered as a version conflict."
    )
    conflict_next: dict[SkuKey, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="The next N versioned writes to each SKU conflict."
    )
    error_rate: Rate = Field(0.0, description="Fraction of calls answered 503, nothing applied.")
    throttle_rate: Rate = Field(0.0, description="Fraction of calls answered 429.")
    throttle_retry_after_seconds: int = Field(1, ge=0, le=3600)
    latency_ms: int = Field(0, ge=0, le=60_000, description="Added before answering.")
    latency_jitter_ms: int = Field(0, ge=0, le=60_000, description="Uniform 0..jitter on top.")
    drop_response_rate: Rate = Field(
        0.0, description="Fraction of writes committed and then answered 502 (response lost)."
    )
    auth_failure_rate: Rate = Field(0.0, description="Fraction of /v1 calls answered 401.")
    token_ttl_seconds: int | None = Field(
        None, ge=1, le=86_400, description="TTL of newly issued tokens; null = configured TTL."
    )


class FaultsUpdate(BaseModel):
    """A partial update: only the fields present change. `conflict_next` merges per SKU (0
    removes that SKU); `token_ttl_seconds: null` returns to the configured TTL."""

    # Strict: `"0.5"` or `true` for a rate is a caller bug worth a 422, not a guess.
    model_config = ConfigDict(extra="forbid", strict=True)

    conflict_rate: Rate | None = None
    conflict_next: dict[SkuKey, ConflictCount] | None = Field(
        None, json_schema_extra={"propertyNames": {"pattern": SKU_PATTERN}}
    )
    error_rate: Rate | None = None
    throttle_rate: Rate | None = None
    throttle_retry_after_seconds: RetryAfter | None = None
    latency_ms: Millis | None = None
    latency_jitter_ms: Millis | None = None
    drop_response_rate: Rate | None = None
    auth_failure_rate: Rate | None = None
    token_ttl_seconds: TokenTtl | None = None


def merge(current: Faults, update: FaultsUpdate) -> Faults:
    """The knobs after applying `update` on top of `current`."""
    values = current.model_dump()
    for name in update.model_fields_set:
        value = getattr(update, name)
        if name == "conflict_next":
            merged = {**current.conflict_next, **(value or {})}
            values[name] = {sku: n for sku, n in merged.items() if n > 0}
        elif value is None and name != "token_ttl_seconds":
            continue  # null on a numeric knob means "leave it"
        else:
            values[name] = value
    return Faults.model_validate(values)


class FaultState:
    """The live knobs plus the dice. Mutated only under the database lock (see operations)."""

    def __init__(self, faults: Faults, rng: random.Random) -> None:
        self.faults = faults
        self.rng = rng
        self.changed = False  # conflict_next was consumed and must be persisted

    def roll(self, rate: float) -> bool:
        return rate > 0.0 and self.rng.random() < rate

    def take_conflict(self, sku: str) -> bool:
        """Should this versioned write to `sku` lose to an injected competing writer?"""
        remaining = self.faults.conflict_next.get(sku, 0)
        if remaining > 0:
            if remaining == 1:
                del self.faults.conflict_next[sku]
            else:
                self.faults.conflict_next[sku] = remaining - 1
            self.changed = True
            return True
        return self.roll(self.faults.conflict_rate)

    def latency_seconds(self) -> float:
        jitter = self.faults.latency_jitter_ms
        extra = self.rng.uniform(0, jitter) if jitter else 0.0
        return (self.faults.latency_ms + extra) / 1000.0
