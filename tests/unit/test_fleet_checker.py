"""The fleet's two verdicts: each store checked on its own SKUs (`restrict`), and central as a
whole (`fleet_stock_mismatches`: central = seed + every store's synced deltas + other writers).
Negative controls: a change applied twice, a synced change central never applied, and a store
delta credited to the wrong store are each caught."""

from __future__ import annotations

from typing import Any

from chaos.checker import Observation, check, fleet_stock_mismatches, restrict
from chaos.history import StoreRequest

SEED = {"X-1": 100, "A-1": 50, "B-1": 50}


def request(op: str, sku: str, delta: int) -> StoreRequest:
    return StoreRequest(op, sku, delta, None, "sell", 1, "ok", 200, False, 0.0, 0.1)


def change(op: str, sku: str, delta: int, status: str = "synced") -> dict[str, Any]:
    return {
        "operation_id": op,
        "sku": sku,
        "delta": delta,
        "status": status,
        "next_attempt_at": None,
        "resolution": None,
        "last_error": None,
    }


def entry(op: str, service: str, sku: str, delta: int, kind: str = "adjust") -> dict[str, Any]:
    return {"operation_id": op, "service": service, "sku": sku, "delta": delta, "kind": kind}


def fleet() -> dict[str, Any]:
    """Two stores on a shared SKU X-1 and one own SKU each; the competing writer on X-1."""
    changes = {
        "store-000": [change("a1", "X-1", -2), change("a2", "A-1", -1)],
        "store-001": [change("b1", "X-1", -3), change("b2", "B-1", 4)],
    }
    journal = [
        entry("a1", "store-000", "X-1", -2),
        entry("a2", "store-000", "A-1", -1),
        entry("b1", "store-001", "X-1", -3),
        entry("b2", "store-001", "B-1", 4),
        entry("c1", "order-service", "X-1", 7, kind="competing"),
        entry("seed-1", "central-sim", "X-1", 0, kind="seed"),
    ]
    central = {"X-1": 100 - 2 - 3 + 7, "A-1": 49, "B-1": 54}
    return {"changes": changes, "journal": journal, "central": central}


def mismatches(f: dict[str, Any]) -> list[dict[str, Any]]:
    return fleet_stock_mismatches(
        initial=SEED, central=f["central"], journal=f["journal"], changes_by_service=f["changes"]
    )


def test_a_consistent_fleet_passes_as_a_whole() -> None:
    assert mismatches(fleet()) == []


def test_a_store_change_applied_twice_is_caught_at_central() -> None:
    f = fleet()
    f["journal"].append(entry("a1", "store-000", "X-1", -2))
    f["central"]["X-1"] -= 2
    assert mismatches(f) == [{"sku": "X-1", "expected": 102, "central": 100}]


def test_a_synced_change_central_never_applied_is_caught() -> None:
    f = fleet()
    f["journal"] = [e for e in f["journal"] if e["operation_id"] != "b2"]
    f["central"]["B-1"] = 50
    assert mismatches(f) == [{"sku": "B-1", "expected": 54, "central": 50}]


def test_one_stores_delta_is_never_mistaken_for_another_writers() -> None:
    # The journal is not what the expectation is built from: the stores' outboxes are. A store
    # that forgot a change it had central apply leaves central ahead of the fleet's sum.
    f = fleet()
    f["changes"]["store-001"] = [change("b2", "B-1", 4)]
    assert mismatches(f) == [{"sku": "X-1", "expected": 105, "central": 102}]


def observation(f: dict[str, Any], service: str, history: list[StoreRequest]) -> Observation:
    changes = f["changes"][service]
    local = {
        sku: {"sku": sku, "quantity": q, "central_quantity": q, "pending_delta": 0}
        for sku, q in f["central"].items()
    }
    return Observation(history, SEED, f["journal"], f["central"], changes, local)


def test_each_store_checks_clean_on_its_own_skus_with_the_others_as_other_writers() -> None:
    f = fleet()
    a = observation(f, "store-000", [request("a1", "X-1", -2), request("a2", "A-1", -1)])
    result = check(restrict(a, ["X-1", "A-1"], store_service="store-000"))
    assert result.ok, result.errors()
    assert result.synced == 2


def test_restricted_check_still_catches_a_duplicate_of_that_store() -> None:
    f = fleet()
    f["journal"].append(entry("a2", "store-000", "A-1", -1))
    f["central"]["A-1"] = 48
    a = observation(f, "store-000", [request("a1", "X-1", -2), request("a2", "A-1", -1)])
    result = check(restrict(a, ["X-1", "A-1"], store_service="store-000"))
    assert result.duplicated == ["a2"]
    assert result.stock_mismatch == [{"sku": "A-1", "expected": 49, "central": 48}]


def test_restrict_keeps_only_the_given_skus_of_every_input() -> None:
    f = fleet()
    a = observation(f, "store-000", [request("a1", "X-1", -2), request("a2", "A-1", -1)])
    only = restrict(a, ["A-1"], store_service="store-000")
    assert [r.operation_id for r in only.history] == ["a2"]
    assert {e["sku"] for e in only.journal} == {"A-1"}
    assert set(only.central) == set(only.initial) == set(only.local) == {"A-1"}
    assert [c["operation_id"] for c in only.changes] == ["a2"]
    assert only.store_service == "store-000"
