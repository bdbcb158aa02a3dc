"""The consistency checker: pure functions over what a run observed.

Inputs (`Observation`): the client-side history of store requests, the initial (seeded) central
stock, central's journal (`GET /_sim/journal`), central's stock, the store's outbox
(`GET /v1/local/changes`) and the store's local view (`GET /v1/local/inventory`).

What it proves, and the name each failure is reported under (always by operation_id or SKU):

- `lost`: an acknowledged operation the store has no change for, or a change the store calls
  `synced` that central never applied.
- `duplicated`: an operation central applied more than once.
- `unexpected`: central applied (or the store queued) an operation the client never got
  acknowledged or left unknown — a refused or never-sent operation. Unknown operations may go
  either way, but at most once.
- `status_mismatch`: central applied an operation the store parked as not applied
  (`conflict`, `rejected`, `discarded`).
- `stock_mismatch`: per SKU, central's quantity != initial + the store's synced deltas + every
  other writer's journaled deltas (the competing writer; injected conflicts journal delta 0).
- `non_final`: a change neither final (synced; or conflict/rejected/discarded with a reason)
  nor explainably pending (status `pending` with a next attempt time).
- `local_view_mismatch`: per SKU, the store's quantity != central_quantity + pending_delta,
  pending_delta != the sum of its unapplied changes, or central_quantity != central's stock.
- `contract`: the client contract broke: a stale version was accepted, or a resend of an
  acknowledged operation was not replayed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from chaos.history import Outcome, StoreRequest

STORE_SERVICE = "inventory-service"
FINAL_NOT_APPLIED = frozenset({"conflict", "rejected", "discarded"})
# Changes whose delta central has not applied: they make up the local pending_delta.
UNAPPLIED = frozenset({"pending", "in_flight", "conflict"})


@dataclass(frozen=True, slots=True)
class Observation:
    history: Sequence[StoreRequest]
    initial: Mapping[str, int]
    journal: Sequence[Mapping[str, Any]]
    central: Mapping[str, int]
    changes: Sequence[Mapping[str, Any]]
    local: Mapping[str, Mapping[str, Any]]
    store_service: str = STORE_SERVICE


@dataclass(slots=True)
class CheckResult:
    operations: int = 0
    requests: int = 0
    acknowledged: int = 0
    refused: int = 0
    unknown: int = 0
    unknown_applied: int = 0
    retried: int = 0  # operations with at least one unknown attempt (client retried them)
    synced: int = 0
    parked: int = 0
    pending: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    status_mismatch: list[str] = field(default_factory=list)
    stock_mismatch: list[dict[str, Any]] = field(default_factory=list)
    non_final: list[str] = field(default_factory=list)
    local_view_mismatch: list[dict[str, Any]] = field(default_factory=list)
    contract: list[str] = field(default_factory=list)

    ERROR_KINDS = (
        "lost",
        "duplicated",
        "unexpected",
        "status_mismatch",
        "stock_mismatch",
        "non_final",
        "local_view_mismatch",
        "contract",
    )

    @property
    def ok(self) -> bool:
        return not any(getattr(self, kind) for kind in self.ERROR_KINDS)

    def errors(self) -> dict[str, list[Any]]:
        return {kind: getattr(self, kind) for kind in self.ERROR_KINDS if getattr(self, kind)}

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def operation_outcomes(history: Iterable[StoreRequest]) -> dict[str, Outcome]:
    """One outcome per operation_id over all its attempts: ok wins, then refused, else unknown.

    A refusal after an unknown attempt is definite: had the earlier attempt been applied, the
    same payload would have been replayed (200), not refused.
    """
    seen: dict[str, set[Outcome]] = defaultdict(set)
    for request in history:
        seen[request.operation_id].add(request.outcome)
    outcomes: dict[str, Outcome] = {}
    for operation_id, kinds in seen.items():
        if "ok" in kinds:
            outcomes[operation_id] = "ok"
        elif "refused" in kinds:
            outcomes[operation_id] = "refused"
        else:
            outcomes[operation_id] = "unknown"
    return outcomes


def contract_violations(history: Iterable[StoreRequest]) -> list[str]:
    """Stale versions must be refused; resends of acknowledged operations must be replays."""
    problems: list[str] = []
    for r in history:
        if r.kind == "stale" and r.outcome == "ok":
            problems.append(f"{r.operation_id}: stale version {r.version} accepted")
        if r.kind == "resend" and r.outcome == "refused":
            problems.append(f"{r.operation_id}: resend refused with {r.status_code}")
        if r.kind == "resend" and r.outcome == "ok" and not r.replayed:
            problems.append(f"{r.operation_id}: resend applied again, not replayed")
    return problems


def check(obs: Observation) -> CheckResult:
    """Run every check; the result lists each failure by operation_id or SKU."""
    result = CheckResult(requests=len(obs.history))
    outcomes = operation_outcomes(obs.history)
    counts = Counter(outcomes.values())
    result.operations = len(outcomes)
    result.acknowledged = counts["ok"]
    result.refused = counts["refused"]
    result.unknown = counts["unknown"]
    result.contract = contract_violations(obs.history)
    result.retried = len({r.operation_id for r in obs.history if r.outcome == "unknown"})

    changes = {str(c["operation_id"]): c for c in obs.changes}
    applied = Counter(
        str(e["operation_id"]) for e in obs.journal if e["service"] == obs.store_service
    )
    _check_operations(result, outcomes, changes, applied)
    _check_changes(result, outcomes, changes, applied)
    result.stock_mismatch = stock_mismatches(obs)
    result.local_view_mismatch = local_view_mismatches(obs)
    return result


def _check_operations(
    result: CheckResult,
    outcomes: Mapping[str, Outcome],
    changes: Mapping[str, Mapping[str, Any]],
    applied: Counter[str],
) -> None:
    for operation_id, outcome in sorted(outcomes.items()):
        if outcome == "ok" and operation_id not in changes:
            result.lost.append(operation_id)
        if outcome == "unknown" and applied[operation_id]:
            result.unknown_applied += 1
    for operation_id, n in sorted(applied.items()):
        if n > 1:
            result.duplicated.append(operation_id)
        if operation_id not in changes or outcomes.get(operation_id) in (None, "refused"):
            result.unexpected.append(operation_id)


def _check_changes(
    result: CheckResult,
    outcomes: Mapping[str, Outcome],
    changes: Mapping[str, Mapping[str, Any]],
    applied: Counter[str],
) -> None:
    for operation_id, change in changes.items():
        status = change["status"]
        if outcomes.get(operation_id) in (None, "refused") and operation_id not in applied:
            # Queued locally although the client never sent it or was refused.
            result.unexpected.append(operation_id)
        if status == "synced":
            result.synced += 1
            if not applied[operation_id] and operation_id not in result.lost:
                result.lost.append(operation_id)
        elif status in FINAL_NOT_APPLIED:
            result.parked += 1
            if applied[operation_id]:
                result.status_mismatch.append(operation_id)
            if not (change.get("resolution") or change.get("last_error")):
                result.non_final.append(f"{operation_id}: {status} without a reason")
        elif status == "pending" and change.get("next_attempt_at") is not None:
            result.pending += 1
        else:
            result.non_final.append(f"{operation_id}: {status}")


def stock_mismatches(obs: Observation) -> list[dict[str, Any]]:
    """Per SKU: central == initial + the store's synced deltas + other writers' deltas."""
    expected: dict[str, int] = defaultdict(int)
    for sku, quantity in obs.initial.items():
        expected[sku] += quantity
    for change in obs.changes:
        if change["status"] == "synced":
            expected[str(change["sku"])] += int(change["delta"])
    for entry in obs.journal:
        if entry["service"] != obs.store_service and entry.get("kind") != "seed":
            expected[str(entry["sku"])] += int(entry["delta"])
    mismatches = []
    for sku in sorted(set(expected) | set(obs.central)):
        actual = obs.central.get(sku, 0)
        if actual != expected[sku]:
            mismatches.append({"sku": sku, "expected": expected[sku], "central": actual})
    return mismatches


def local_view_mismatches(obs: Observation) -> list[dict[str, Any]]:
    """Per SKU: quantity == central_quantity + pending_delta, both matching the facts."""
    pending: dict[str, int] = defaultdict(int)
    skus = set(obs.local)
    for change in obs.changes:
        skus.add(str(change["sku"]))
        if change["status"] in UNAPPLIED:
            pending[str(change["sku"])] += int(change["delta"])
    mismatches = []
    for sku in sorted(skus):
        item = obs.local.get(sku)
        if item is None:
            mismatches.append({"sku": sku, "problem": "no local item for a SKU with changes"})
            continue
        central_quantity = item.get("central_quantity")
        problems = []
        if item["pending_delta"] != pending[sku]:
            problems.append(f"pending_delta {item['pending_delta']} != changes {pending[sku]}")
        if central_quantity is None or item["quantity"] != central_quantity + item["pending_delta"]:
            problems.append(
                f"quantity {item['quantity']} != central_quantity {central_quantity} "
                f"+ pending_delta {item['pending_delta']}"
            )
        if central_quantity != obs.central.get(sku):
            problems.append(
                f"central_quantity {central_quantity} != central {obs.central.get(sku)}"
            )
        if problems:
            mismatches.append({"sku": sku, "problem": "; ".join(problems)})
    return mismatches


def restrict(obs: Observation, skus: Iterable[str], *, store_service: str) -> Observation:
    """The part of an observation about `skus`, judged as `store_service`'s.

    Every input is keyed by SKU, so one store of a fleet, or one scenario of a run that shares
    its stores with earlier ones, is checked on its own SKUs exactly as a lone store would be.
    Other stores writing the same SKUs count as other writers (like the competing writer).
    """
    wanted = frozenset(skus)
    return Observation(
        history=[r for r in obs.history if r.sku in wanted],
        initial={sku: q for sku, q in obs.initial.items() if sku in wanted},
        journal=[e for e in obs.journal if e["sku"] in wanted],
        central={sku: q for sku, q in obs.central.items() if sku in wanted},
        changes=[c for c in obs.changes if c["sku"] in wanted],
        local={sku: item for sku, item in obs.local.items() if sku in wanted},
        store_service=store_service,
    )


def fleet_stock_mismatches(
    *,
    initial: Mapping[str, int],
    central: Mapping[str, int],
    journal: Sequence[Mapping[str, Any]],
    changes_by_service: Mapping[str, Sequence[Mapping[str, Any]]],
) -> list[dict[str, Any]]:
    """Central as a whole, per SKU: central == seed + every store's acknowledged-and-synced
    deltas (from each store's own outbox, not from central's journal) + the deltas of writers
    that are not stores (the competing writer; seeds excluded).

    A store delta central applied twice, or one a store calls synced that central never
    applied, moves one side and not the other.
    """
    expected: dict[str, int] = defaultdict(int)
    for sku, quantity in initial.items():
        expected[sku] += quantity
    for changes in changes_by_service.values():
        for change in changes:
            if change["status"] == "synced":
                expected[str(change["sku"])] += int(change["delta"])
    for entry in journal:
        if entry["service"] not in changes_by_service and entry.get("kind") != "seed":
            expected[str(entry["sku"])] += int(entry["delta"])
    mismatches = []
    for sku in sorted(set(expected) | set(central)):
        actual = central.get(sku, 0)
        if actual != expected[sku]:
            mismatches.append({"sku": sku, "expected": expected[sku], "central": actual})
    return mismatches
