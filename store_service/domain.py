"""The store's rules and vocabulary, as plain Python: no I/O, no SQL, no HTTP.

- Input rules: what a SKU and an operation id may look like, how large a delta may be.
- The vocabulary: every state, outcome and result the store records or reports is a member of
  one `StrEnum` here; SQL, schemas, the table's CHECK constraint, metric labels and the docs
  take their strings from these, so a new state is added in one place.
- Stock rules: applying a delta, checking a version, recomputing the local view.
- Refusals: the exceptions a caller can act on (the API turns each into one problem document).
"""

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SKU_MAX_LENGTH = 64
OPERATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
OPERATION_ID_MAX_LENGTH = 128
MAX_ABS_DELTA = 1_000_000


# --- the vocabulary -------------------------------------------------------------------------


class ChangeState(StrEnum):
    """Where one change stands on its way to central (`changes.status`).

    pending → in_flight → synced | conflict | rejected | discarded; in_flight goes back to
    pending after a transient failure or a crash, conflict back to pending (operator retry) or
    on to discarded (operator discard). Nothing is deleted before it is final.
    """

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SYNCED = "synced"
    CONFLICT = "conflict"
    REJECTED = "rejected"
    DISCARDED = "discarded"


UNAPPLIED_STATES: tuple[ChangeState, ...] = (
    ChangeState.PENDING,
    ChangeState.IN_FLIGHT,
    ChangeState.CONFLICT,
)
"""Changes central has not applied: their deltas count in the local view (central + these)."""

QUEUED_STATES: tuple[ChangeState, ...] = (ChangeState.PENDING, ChangeState.IN_FLIGHT)
"""Changes the worker still has to send: the sync backlog (a parked conflict waits for a
person, not for the worker)."""

FINAL_STATES: tuple[ChangeState, ...] = (
    ChangeState.SYNCED,
    ChangeState.REJECTED,
    ChangeState.DISCARDED,
)
"""Changes that will never be sent again; purged after the replay retention."""


class Resolution(StrEnum):
    """Why a change ended up where it is (`changes.resolution`); a change rejected by central
    keeps central's own reason instead."""

    DUPLICATE = "duplicate"  # synced: central had applied it already (a resend)
    CENTRAL_WINS = "central_wins"  # discarded by the conflict strategy
    MANUAL = "manual"  # parked by the `manual` conflict strategy
    REBASE_EXHAUSTED = "rebase_exhausted"  # parked: still conflicting after the rebase budget
    INSUFFICIENT_STOCK = "insufficient_stock"  # parked: central refused for a business rule
    IDEMPOTENCY_WINDOW_EXPIRED = "idempotency_window_expired"  # parked: not resent blindly
    OPERATOR_RETRY = "operator_retry"
    OPERATOR_DISCARD = "operator_discard"


class OperatorAction(StrEnum):
    """What an operator may do with a change parked in `conflict` (the JSON API and the
    console both call `store_service.operator.act`)."""

    RETRY = "retry"  # back to pending, due now, attempts and rebases reset
    DISCARD = "discard"  # final: its delta leaves the local view


class ConflictStrategy(StrEnum):
    """What the sync run does when central's version moved under a change."""

    REBASE = "rebase"  # resend the same delta on central's version, a bounded number of times
    CENTRAL_WINS = "central_wins"  # discard the local delta
    MANUAL = "manual"  # park it for an operator


class ItemOutcome(StrEnum):
    """What one sync run did with one change (`store_sync_items_total{outcome}`)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    REBASED = "rebased"
    CONFLICT = "conflict"
    PARKED = "parked"
    REJECTED = "rejected"
    DISCARDED = "discarded"
    TRANSIENT = "transient"
    AUTH_FAILED = "auth_failed"

    @property
    def final(self) -> bool:
        """The change left the unapplied set (synced, rejected or discarded)."""
        return self in _FINAL_OUTCOMES


_FINAL_OUTCOMES = frozenset(
    {ItemOutcome.APPLIED, ItemOutcome.DUPLICATE, ItemOutcome.REJECTED, ItemOutcome.DISCARDED}
)


class RunResult(StrEnum):
    """How one sync run ended (`store_sync_runs_total{result}`, `last_run.stopped_reason`)."""

    DRAINED = "drained"
    TIME_BUDGET = "time_budget"
    LEASE_BUSY = "lease_busy"
    LEASE_LOST = "lease_lost"
    TRANSIENT = "transient"
    AUTH_FAILED = "auth_failed"
    ERROR = "error"

    @property
    def succeeded(self) -> bool:
        """Drained, or out of time with work left: the run did what it could."""
        return self in (RunResult.DRAINED, RunResult.TIME_BUDGET)


class UpdateOutcome(StrEnum):
    """How the API answered one update request (`store_updates_total{outcome}`)."""

    APPLIED = "applied"
    REPLAYED = "replayed"
    VERSION_CONFLICT = "version_conflict"
    INSUFFICIENT_STOCK = "insufficient_stock"
    INVALID = "invalid"
    CLIENT_CLOSED = "client_closed"  # the client hung up before the answer: not a server error
    STORAGE_UNAVAILABLE = "storage_unavailable"  # disk full, read-only or missing database
    ERROR = "error"


class SqliteSynchronous(StrEnum):
    """SQLite's `synchronous` on every connection the store opens (`STORE_SQLITE_SYNCHRONOUS`).

    FULL, the only safe value: every commit fsyncs the WAL before the API answers, so an
    acknowledged change survives power loss. OFF-UNSAFE-FOR-TESTS never fsyncs: a power cut
    loses acknowledged changes. It exists only for the chaos suite's negative control, which
    shows that its power cuts catch a store that acknowledges unsynced commits; the processes
    log `sqlite_synchronous_unsafe` at start when it is set.
    """

    FULL = "FULL"
    OFF_UNSAFE_FOR_TESTS = "OFF-UNSAFE-FOR-TESTS"

    @property
    def pragma(self) -> str:
        """The value for `PRAGMA synchronous`."""
        return "FULL" if self is SqliteSynchronous.FULL else "OFF"


class StorageCondition(StrEnum):
    """Why the database cannot take writes (`store_storage_failures_total{condition}`, the
    `storage-unavailable` problem's `condition`); each clears by itself once writes succeed."""

    DISK_FULL = "disk_full"  # SQLITE_FULL: no space for the WAL or the database file
    READ_ONLY = "read_only"  # SQLITE_READONLY: a read-only file or filesystem
    MISSING = "missing"  # the file vanished or moved under the open database, or won't open
    IO_ERROR = "io_error"  # SQLITE_IOERR: the disk failed a read, write or fsync


# --- stock rules ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemState:
    sku: str
    quantity: int
    version: int
    pending_delta: int = 0
    pending_count: int = 0
    central_quantity: int | None = None
    central_version: int | None = None


def new_item(sku: str) -> ItemState:
    """A SKU never seen before starts at quantity 0, version 0."""
    return ItemState(sku=sku, quantity=0, version=0)


def apply_delta(
    item: ItemState, *, delta: int, expected_version: int | None, allow_negative: bool
) -> ItemState:
    """The item after a local change that is now pending for central, or a refusal."""
    if expected_version is not None and expected_version != item.version:
        raise VersionMismatch(item, expected_version)
    if not allow_negative and item.quantity + delta < 0:
        raise InsufficientStock(item, delta)
    # The constructor, not dataclasses.replace: this runs once per update on the hot path, and
    # replace() (field introspection, keyword merging) cost several times as much.
    return ItemState(
        item.sku,
        item.quantity + delta,
        item.version + 1,
        item.pending_delta + delta,
        item.pending_count + 1,
        item.central_quantity,
        item.central_version,
    )


def local_quantity(central_quantity: int | None, pending_delta: int) -> int:
    """Local stock is central's last known stock plus the deltas central has not applied yet."""
    return (central_quantity or 0) + pending_delta


def recompute(
    item: ItemState,
    *,
    central_quantity: int | None,
    central_version: int | None,
    pending_delta: int,
    pending_count: int,
) -> ItemState:
    """The local view after news from central; the local version moves only if stock changed."""
    quantity = local_quantity(central_quantity, pending_delta)
    return replace(
        item,
        quantity=quantity,
        version=item.version + 1 if quantity != item.quantity else item.version,
        pending_delta=pending_delta,
        pending_count=pending_count,
        central_quantity=central_quantity,
        central_version=central_version,
    )


def is_newer_central(known_version: int | None, reported_version: int | None) -> bool:
    """Whether central's reported state is newer than what the store already knows."""
    if reported_version is None:
        return False
    return known_version is None or reported_version >= known_version


# --- refusals -------------------------------------------------------------------------------


class Refusal(Exception):
    """A request the store refuses for a reason the caller can act on; nothing was changed."""


class VersionMismatch(Refusal):
    def __init__(self, item: ItemState, expected: int) -> None:
        super().__init__(f"expected version {expected}, current version is {item.version}")
        self.item = item
        self.expected = expected


class InsufficientStock(Refusal):
    def __init__(self, item: ItemState, delta: int) -> None:
        super().__init__(f"quantity {item.quantity} cannot take a delta of {delta}")
        self.item = item
        self.delta = delta


class OperationReused(Refusal):
    """The operation_id is already taken by a change with a different payload."""

    def __init__(self, operation_id: str, stored: dict[str, Any]) -> None:
        super().__init__(f"operation_id {operation_id!r} was already used with another payload")
        self.operation_id = operation_id
        self.stored = stored


class ChangeNotFound(Refusal):
    def __init__(self, operation_id: str) -> None:
        super().__init__(f"no change with operation_id {operation_id!r}")
        self.operation_id = operation_id


class ChangeNotInConflict(Refusal):
    """Operator actions only apply to a change parked in `conflict`."""

    def __init__(self, operation_id: str, status: ChangeState) -> None:
        super().__init__(f"change {operation_id!r} is {status}, not conflict")
        self.operation_id = operation_id
        self.status = status
