"""An in-memory central for the sync run's unit tests, made of central_sim's own parts.

Items are validated by central_sim's bulk-sync validation and applied by its `Ledger` (the
pure unit of work the simulator runs inside its SQL transaction), so this fake follows the
same rules as the simulator the integration tests run over HTTP, and cannot drift from it:
idempotent replays (a known key with another payload is refused), version checks, injected
conflicts, insufficient stock. What it adds is a script of whole-call failures.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from central_sim.api.inventory import validate_item
from central_sim.ledger import AppliedRecord, JournalEntry, Ledger, Stock
from store_service.sync.central import (
    AuthFailure,
    BulkOutcome,
    BulkResults,
    ItemResult,
    ItemStatus,
    SyncItem,
    TransientFailure,
)

SERVICE = "inventory-service"
Step = TransientFailure | AuthFailure | Literal["drop_response"] | None


@dataclass
class FakeCentral:
    """central's bulk-sync in memory, with scripted whole-call outcomes."""

    stock: dict[str, Stock] = field(default_factory=dict)
    records: dict[str, AppliedRecord] = field(default_factory=dict)
    # Whole-call outcomes for the next calls: a failure (nothing applied), "drop_response"
    # (applied, then the answer is lost), or None (answer normally).
    script: list[Step] = field(default_factory=list)
    # The next N versioned writes to a SKU lose to a competing writer (central_sim's knob).
    conflict_next: dict[str, int] = field(default_factory=dict)
    calls: list[list[SyncItem]] = field(default_factory=list)
    journal: list[JournalEntry] = field(default_factory=list)

    def seed(self, sku: str, quantity: int, version: int = 1) -> None:
        self.stock[sku] = Stock(quantity, version, known=True)

    def levels(self) -> dict[str, tuple[int, int]]:
        """(quantity, version) of every SKU central knows."""
        return {sku: (s.quantity, s.version) for sku, s in self.stock.items() if s.known}

    def applied(self) -> list[tuple[str, str, int]]:
        """(operation_id, sku, delta) of every write applied, in order."""
        return [(e.operation_id, e.sku, e.delta) for e in self.journal if e.service == SERVICE]

    def bulk_sync(self, items: Sequence[SyncItem]) -> BulkOutcome:
        self.calls.append(list(items))
        step = self.script.pop(0) if self.script else None
        if isinstance(step, TransientFailure | AuthFailure):
            return step
        ledger = Ledger(
            service=SERVICE,
            now=time.time(),
            stock=self.stock,
            records=self.records,
            inject_conflict=self._take_conflict,
        )
        results = []
        for item in items:
            raw = {
                "sku": item.sku,
                "delta": item.delta,
                "version": item.version,
                "operation_id": item.operation_id,
            }
            outcome = ledger.process(validate_item(raw))
            results.append(
                ItemResult(
                    item.operation_id,
                    item.sku,
                    ItemStatus(outcome.status.value),
                    outcome.quantity,
                    outcome.version,
                    None if outcome.reason is None else outcome.reason.value,
                )
            )
        self.journal.extend(ledger.journal)
        if step == "drop_response":
            return TransientFailure("server_error", "HTTP 502")
        return BulkResults(results)

    def _take_conflict(self, sku: str) -> bool:
        remaining = self.conflict_next.get(sku, 0)
        if remaining:
            self.conflict_next[sku] = remaining - 1
        return remaining > 0
