"""The stock rules, without I/O."""

import pytest

from store_service import domain
from store_service.domain import InsufficientStock, ItemState, VersionMismatch


def item(**fields: int | None) -> ItemState:
    return ItemState(**{"sku": "SKU-1", "quantity": 10, "version": 3, **fields})  # type: ignore[arg-type]


def test_a_new_sku_starts_at_zero_stock_and_version_zero() -> None:
    new = domain.new_item("SKU-9")
    assert (new.quantity, new.version, new.pending_delta, new.pending_count) == (0, 0, 0, 0)


def test_a_delta_moves_stock_and_version_and_counts_as_pending() -> None:
    after = domain.apply_delta(item(), delta=-4, expected_version=None, allow_negative=False)
    assert (after.quantity, after.version) == (6, 4)
    assert (after.pending_delta, after.pending_count) == (-4, 1)


def test_a_matching_version_is_accepted() -> None:
    after = domain.apply_delta(item(), delta=1, expected_version=3, allow_negative=False)
    assert after.version == 4


def test_a_stale_version_is_refused_with_the_current_state() -> None:
    with pytest.raises(VersionMismatch) as refused:
        domain.apply_delta(item(), delta=1, expected_version=2, allow_negative=False)
    assert refused.value.item.version == 3
    assert refused.value.item.quantity == 10


def test_selling_more_than_the_stock_is_refused() -> None:
    with pytest.raises(InsufficientStock):
        domain.apply_delta(item(), delta=-11, expected_version=None, allow_negative=False)


def test_selling_the_last_unit_is_allowed() -> None:
    after = domain.apply_delta(item(), delta=-10, expected_version=None, allow_negative=False)
    assert after.quantity == 0


def test_negative_stock_is_allowed_when_configured() -> None:
    after = domain.apply_delta(item(), delta=-11, expected_version=None, allow_negative=True)
    assert after.quantity == -1


def test_the_version_check_comes_before_the_stock_check() -> None:
    with pytest.raises(VersionMismatch):
        domain.apply_delta(item(), delta=-100, expected_version=0, allow_negative=False)


def test_local_quantity_is_central_plus_pending() -> None:
    assert domain.local_quantity(40, -3) == 37
    assert domain.local_quantity(None, 5) == 5


def test_recompute_moves_the_version_only_when_stock_changes() -> None:
    start = item(quantity=7, pending_delta=-3, pending_count=1, central_quantity=10)
    same = domain.recompute(
        start, central_quantity=10, central_version=5, pending_delta=-3, pending_count=1
    )
    assert (same.quantity, same.version, same.central_version) == (7, 3, 5)
    moved = domain.recompute(
        start, central_quantity=12, central_version=6, pending_delta=-3, pending_count=1
    )
    assert (moved.quantity, moved.version) == (9, 4)


def test_news_from_central_never_moves_backwards() -> None:
    assert domain.is_newer_central(None, 0)
    assert domain.is_newer_central(4, 5)
    assert domain.is_newer_central(5, 5)
    assert not domain.is_newer_central(5, 4)
    assert not domain.is_newer_central(5, None)
