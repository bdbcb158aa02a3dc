"""Fault knobs: partial updates merge, and "conflict next" is consumed write by write."""

import random

import pytest
from pydantic import ValidationError

from central_sim.faults import Faults, FaultState, FaultsUpdate, merge


def test_partial_update_changes_only_given_fields() -> None:
    current = Faults(error_rate=0.5, latency_ms=100)

    updated = merge(current, FaultsUpdate(throttle_rate=0.2))

    assert (updated.error_rate, updated.latency_ms, updated.throttle_rate) == (0.5, 100, 0.2)


def test_conflict_next_merges_per_sku_and_zero_removes() -> None:
    current = Faults(conflict_next={"A": 2, "B": 1})

    updated = merge(current, FaultsUpdate(conflict_next={"B": 0, "C": 3}))

    assert updated.conflict_next == {"A": 2, "C": 3}


def test_token_ttl_null_returns_to_the_configured_ttl() -> None:
    assert merge(Faults(token_ttl_seconds=5), FaultsUpdate(token_ttl_seconds=None)) == Faults()


@pytest.mark.parametrize(
    "bad",
    [{"error_rate": 1.5}, {"latency_ms": -1}, {"conflict_next": {"bad sku": 1}}, {"nope": 1}],
)
def test_invalid_knobs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FaultsUpdate.model_validate(bad)


def test_conflict_next_is_consumed_one_write_at_a_time() -> None:
    state = FaultState(Faults(conflict_next={"A": 2}), random.Random(1))

    assert [state.take_conflict("A") for _ in range(3)] == [True, True, False]
    assert state.faults.conflict_next == {}
    assert state.changed
    assert not state.take_conflict("B")


def test_rates_of_zero_and_one_are_never_and_always() -> None:
    state = FaultState(Faults(), random.Random(1))
    assert not any(state.roll(0.0) for _ in range(100))
    assert all(state.roll(1.0) for _ in range(100))


def test_latency_includes_jitter_within_bounds() -> None:
    state = FaultState(Faults(latency_ms=100, latency_jitter_ms=50), random.Random(1))
    delays = [state.latency_seconds() for _ in range(50)]
    assert all(0.1 <= d <= 0.15 for d in delays)
