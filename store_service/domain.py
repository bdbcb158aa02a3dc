"""Pure stock rules: applying a delta, checking a version, recomputing the local view. No I/O."""

from dataclasses import dataclass, replace

MAX_ABS_DELTA = 1_000_000


class DomainError(Exception):
    """A refusal the caller can act on; carries the item state it was judged against."""


@dataclass(frozen=True, slots=True)
class ItemState:
    sku: str
    quantity: int
    version: int
    pending_delta: int = 0
    pending_count: int = 0
    central_quantity: int | None = None
    central_version: int | None = None


class VersionMismatch(DomainError):
    def __init__(self, item: ItemState, expected: int) -> None:
        super().__init__(f"expected version {expected}, current version is {item.version}")
        self.item = item
        self.expected = expected


class InsufficientStock(DomainError):
    def __init__(self, item: ItemState, delta: int) -> None:
        super().__init__(f"quantity {item.quantity} cannot take a delta of {delta}")
        self.item = item
        self.delta = delta


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
