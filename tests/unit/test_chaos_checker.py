"""The chaos checker catches every kind of inconsistency, by id, and passes a clean run."""

from __future__ import annotations

import dataclasses
from typing import Any

from chaos.checker import Observation, check, operation_outcomes
from chaos.history import OpKind, Outcome, StoreRequest

SKU = "SKU-1"


def request(
    operation_id: str,
    delta: int,
    outcome: Outcome = "ok",
    *,
    kind: OpKind = "sell",
    version: int | None = None,
    replayed: bool = False,
    attempt: int = 1,
) -> StoreRequest:
    status = {"ok": 200, "refused": 409, "unknown": None}[outcome]
    return StoreRequest(
        operation_id, SKU, delta, version, kind, attempt, outcome, status, replayed, 0.0, 0.1
    )


def change(operation_id: str, delta: int, status: str = "synced", **extra: Any) -> dict[str, Any]:
    return {
        "operation_id": operation_id,
        "sku": SKU,
        "delta": delta,
        "status": status,
        "next_attempt_at": None,
        "resolution": None,
        "last_error": None,
        **extra,
    }


def entry(operation_id: str, delta: int, service: str = "inventory-service") -> dict[str, Any]:
    return {"operation_id": operation_id, "service": service, "sku": SKU, "delta": delta}


def clean() -> Observation:
    """100 seeded; a sell, a receive, a competing -2, a refused stale update, a pending change,
    an unknown that was applied, and a resend replayed."""
    history = [
        request("a", -1),
        request("b", 5),
        request("b", 5, kind="resend", replayed=True),
        request("s", 1, "refused", kind="stale", version=0),
        request("u", -2, "unknown"),
        request("p", 3),
    ]
    changes = [
        change("a", -1),
        change("b", 5),
        change("u", -2),
        change("p", 3, "pending", next_attempt_at=123.0),
    ]
    journal = [
        {**entry("seed-1", 100, "central-sim"), "kind": "seed"},
        entry("a", -1),
        entry("competing-1", -2, "order-service"),
        entry("b", 5),
        entry("u", -2),
    ]
    central_quantity = 100 - 1 - 2 + 5 - 2
    local = {
        SKU: {
            "quantity": central_quantity + 3,
            "pending_delta": 3,
            "central_quantity": central_quantity,
        }
    }
    return Observation(history, {SKU: 100}, journal, {SKU: central_quantity}, changes, local)


def test_a_clean_run_passes_and_is_counted() -> None:
    result = check(clean())
    assert result.ok, result.errors()
    assert (result.operations, result.acknowledged, result.refused, result.unknown) == (5, 3, 1, 1)
    assert (result.synced, result.pending, result.unknown_applied, result.retried) == (3, 1, 1, 1)


def test_an_acknowledged_change_missing_from_the_outbox_is_lost() -> None:
    obs = clean()
    obs = dataclasses.replace(obs, changes=[c for c in obs.changes if c["operation_id"] != "p"])
    result = check(obs)
    assert result.lost == ["p"]


def test_a_synced_change_central_never_applied_is_lost() -> None:
    obs = clean()
    journal = [e for e in obs.journal if e["operation_id"] != "b"]
    central = {SKU: obs.central[SKU] - 5}  # what central holds without b
    result = check(dataclasses.replace(obs, journal=journal, central=central))
    assert "b" in result.lost
    assert result.stock_mismatch  # central is 5 short of what the store believes


def test_an_operation_applied_twice_is_duplicated() -> None:
    obs = clean()
    obs = dataclasses.replace(obs, journal=[*obs.journal, entry("a", -1)])
    result = check(obs)
    assert result.duplicated == ["a"]


def test_an_unknown_applied_twice_is_duplicated() -> None:
    obs = clean()
    obs = dataclasses.replace(obs, journal=[*obs.journal, entry("u", -2)])
    assert check(obs).duplicated == ["u"]


def test_a_refused_operation_applied_at_central_is_unexpected() -> None:
    obs = clean()
    obs = dataclasses.replace(obs, journal=[*obs.journal, entry("s", 1)])
    assert check(obs).unexpected == ["s"]


def test_a_never_sent_operation_in_the_outbox_is_unexpected() -> None:
    obs = clean()
    obs = dataclasses.replace(obs, changes=[*obs.changes, change("ghost", 7, "discarded")])
    assert "ghost" in check(obs).unexpected


def test_central_applying_a_discarded_change_is_a_status_mismatch() -> None:
    obs = clean()
    changes = [
        change("a", -1, "discarded", resolution="central_wins") if c["operation_id"] == "a" else c
        for c in obs.changes
    ]
    result = check(dataclasses.replace(obs, changes=changes))
    assert result.status_mismatch == ["a"]


def test_central_stock_off_by_one_is_a_stock_mismatch() -> None:
    obs = clean()
    central = {SKU: obs.central[SKU] + 1}
    result = check(dataclasses.replace(obs, central=central))
    assert result.stock_mismatch == [
        {"sku": SKU, "expected": obs.central[SKU], "central": obs.central[SKU] + 1}
    ]


def test_stuck_changes_are_non_final() -> None:
    obs = clean()
    changes = [
        *obs.changes[:3],
        change("p", 3, "pending"),  # no next attempt: nobody will send it
    ]
    result = check(dataclasses.replace(obs, changes=changes))
    assert result.non_final == ["p: pending"]


def test_a_parked_change_without_a_reason_is_non_final() -> None:
    obs = clean()
    changes: list[dict[str, Any]] = [*map(dict, obs.changes[:3]), change("p", 3, "conflict")]
    result = check(dataclasses.replace(obs, changes=changes))
    assert result.non_final == ["p: conflict without a reason"]
    changes[-1]["resolution"] = "rebase_exhausted"
    assert check(dataclasses.replace(obs, changes=changes)).ok


def test_a_local_view_that_is_not_central_plus_pending_is_caught() -> None:
    obs = clean()
    item = dict(obs.local[SKU])
    item["quantity"] += 1
    result = check(dataclasses.replace(obs, local={SKU: item}))
    assert [m["sku"] for m in result.local_view_mismatch] == [SKU]
    assert "quantity" in result.local_view_mismatch[0]["problem"]


def test_a_stale_central_quantity_in_the_local_view_is_caught() -> None:
    obs = clean()
    item = {**obs.local[SKU], "central_quantity": obs.central[SKU] - 1}
    item["quantity"] = item["central_quantity"] + item["pending_delta"]
    result = check(dataclasses.replace(obs, local={SKU: item}))
    assert "central_quantity" in result.local_view_mismatch[0]["problem"]


def test_an_accepted_stale_version_and_a_resend_applied_again_break_the_contract() -> None:
    obs = clean()
    history = [
        *obs.history,
        request("s2", 1, "ok", kind="stale", version=0),
        request("a", -1, "ok", kind="resend", replayed=False),
    ]
    result = check(dataclasses.replace(obs, history=history))
    assert len(result.contract) == 2
    assert result.contract[0].startswith("s2:")


def test_an_operation_is_ok_if_any_attempt_was_acknowledged() -> None:
    history = [request("x", 1, "unknown"), request("x", 1, "ok", attempt=2, replayed=True)]
    history += [request("y", 1, "unknown"), request("y", 1, "refused", attempt=2)]
    assert operation_outcomes(history) == {"x": "ok", "y": "refused"}
