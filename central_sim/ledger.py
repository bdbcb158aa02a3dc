"""Central's inventory rules as plain Python: one write against a snapshot, no SQL, no HTTP.

A `Ledger` is a unit of work over the stock rows and idempotency records a request touches. It
applies writes in order (so a later item sees earlier ones), and collects what must be persisted:
dirty stock rows, journal entries, new idempotency records and outcome counts.
"""

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_ABS_DELTA = 1_000_000_000
MAX_KEY_LENGTH = 128
# Journal and stats label for changes the simulator itself makes (seeds, injected conflicts).
SIM_SERVICE = "central-sim"


class Status(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    REJECTED = "rejected"


class Reason(StrEnum):
    INSUFFICIENT_STOCK = "insufficient_stock"
    INVALID_ITEM = "invalid_item"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"


class JournalKind(StrEnum):
    SEED = "seed"
    ADJUST = "adjust"
    COMPETING = "competing"


def fingerprint(sku: str, delta: int) -> str:
    """Identity of a write's effect. The version is left out on purpose: a client may resend an
    already-applied operation rebased on a newer version, and that must be a duplicate."""
    return hashlib.sha256(f"{sku}\x00{delta}".encode()).hexdigest()


# NamedTuples rather than frozen dataclasses: a batch builds thousands of these per request and
# tuples are several times cheaper to create.


class Write(NamedTuple):
    operation_id: str
    sku: str
    delta: int
    version: int | None = None


@dataclass
class Stock:
    quantity: int = 0
    version: int = 0
    known: bool = False  # False: central has never seen the SKU (behaves as 0 / version 0)


class AppliedRecord(NamedTuple):
    fingerprint: str
    sku: str
    delta: int
    quantity: int
    version: int
    created_at: float


class Outcome(NamedTuple):
    operation_id: str | None
    sku: str | None
    status: Status
    quantity: int | None
    version: int | None
    reason: Reason | None = None


class InvalidItem(NamedTuple):
    """A batch item that failed validation; echoed back with whatever ids it carried."""

    operation_id: str | None
    sku: str | None


class JournalEntry(NamedTuple):
    kind: JournalKind
    operation_id: str
    service: str
    sku: str
    delta: int
    quantity: int
    version: int


def never(_sku: str) -> bool:
    return False


@dataclass
class Ledger:
    """Applies one service's writes against loaded stock and idempotency records."""

    service: str
    now: float
    stock: dict[str, Stock] = field(default_factory=dict)
    records: dict[str, AppliedRecord] = field(default_factory=dict)
    # Asked once per versioned write: should another writer "get there first"?
    inject_conflict: Callable[[str], bool] = never
    journal: list[JournalEntry] = field(default_factory=list)
    new_records: dict[str, AppliedRecord] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)

    def stock_of(self, sku: str) -> Stock:
        return self.stock.setdefault(sku, Stock())

    def apply(self, write: Write) -> Outcome:
        """Apply one write: duplicate, reused key, conflict, insufficient stock or applied."""
        fp = fingerprint(write.sku, write.delta)
        record = self.records.get(write.operation_id)
        if record is not None:
            if record.fingerprint != fp:
                return self._refuse(write, Reason.IDEMPOTENCY_KEY_REUSED)
            self.counts[Status.DUPLICATE] += 1
            return Outcome(
                write.operation_id,
                write.sku,
                Status.DUPLICATE,
                record.quantity,
                record.version,
            )

        stock = self.stock_of(write.sku)
        if write.version is not None and self.inject_conflict(write.sku):
            self._competing_move(write.sku, stock)
        if write.version is not None and write.version != stock.version:
            self.counts[Status.CONFLICT] += 1
            return Outcome(
                write.operation_id, write.sku, Status.CONFLICT, stock.quantity, stock.version
            )
        if stock.quantity + write.delta < 0:
            return self._refuse(write, Reason.INSUFFICIENT_STOCK)

        stock.quantity += write.delta
        stock.version += 1
        stock.known = True
        self.dirty.add(write.sku)
        self.journal.append(
            JournalEntry(
                JournalKind.ADJUST,
                write.operation_id,
                self.service,
                write.sku,
                write.delta,
                stock.quantity,
                stock.version,
            )
        )
        applied = AppliedRecord(fp, write.sku, write.delta, stock.quantity, stock.version, self.now)
        self.records[write.operation_id] = applied
        self.new_records[write.operation_id] = applied
        self.counts[Status.APPLIED] += 1
        return Outcome(write.operation_id, write.sku, Status.APPLIED, stock.quantity, stock.version)

    def process(self, item: "Write | InvalidItem") -> Outcome:
        """Apply a write, or count and describe an item that failed validation."""
        if isinstance(item, Write):
            return self.apply(item)
        self.counts[Status.REJECTED] += 1
        return Outcome(
            item.operation_id, item.sku, Status.REJECTED, None, None, Reason.INVALID_ITEM
        )

    def _refuse(self, write: Write, reason: Reason) -> Outcome:
        # A SKU central never saw behaves as quantity 0, version 0, so report that.
        self.counts[Status.REJECTED] += 1
        stock = self.stock_of(write.sku)
        return Outcome(
            write.operation_id, write.sku, Status.REJECTED, stock.quantity, stock.version, reason
        )

    def _competing_move(self, sku: str, stock: Stock) -> None:
        # Another writer "got there first": the version moves, the quantity does not.
        stock.version += 1
        stock.known = True
        self.dirty.add(sku)
        self.counts["injected_conflict"] += 1
        self.journal.append(
            JournalEntry(
                JournalKind.COMPETING,
                f"sim-competing-{uuid.uuid4()}",
                SIM_SERVICE,
                sku,
                0,
                stock.quantity,
                stock.version,
            )
        )
