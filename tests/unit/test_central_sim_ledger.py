"""Central's rules as plain Python: idempotency fingerprints and per-item outcomes."""

from central_sim.ledger import (
    SIM_SERVICE,
    AppliedRecord,
    InvalidItem,
    JournalKind,
    Ledger,
    Reason,
    Status,
    Stock,
    Write,
    fingerprint,
)


def ledger(**stock: tuple[int, int]) -> Ledger:
    return Ledger(
        service="inventory-service",
        now=1000.0,
        stock={sku: Stock(q, v, known=True) for sku, (q, v) in stock.items()},
    )


def test_fingerprint_covers_sku_and_delta_but_not_version() -> None:
    assert fingerprint("SKU-1", 5) == fingerprint("SKU-1", 5)
    assert fingerprint("SKU-1", 5) != fingerprint("SKU-1", 6)
    assert fingerprint("SKU-1", 5) != fingerprint("SKU-2", 5)
    # No separator ambiguity: ("A1", 1) and ("A", 11) must differ.
    assert fingerprint("A1", 1) != fingerprint("A", 11)


def test_unversioned_write_applies_and_bumps_version() -> None:
    book = ledger(**{"SKU-1": (10, 3)})

    outcome = book.apply(Write("op-1", "SKU-1", -4))

    assert outcome.status == Status.APPLIED
    assert (outcome.quantity, outcome.version) == (6, 4)
    assert book.journal[0].kind == JournalKind.ADJUST
    assert book.journal[0].delta == -4
    assert "op-1" in book.new_records


def test_unknown_sku_behaves_as_quantity_zero_version_zero() -> None:
    book = ledger()

    assert book.apply(Write("op-1", "NEW", 5, version=0)).version == 1
    assert book.stock["NEW"] == Stock(5, 1, known=True)


def test_stale_version_is_a_conflict_with_current_quantity_and_version() -> None:
    book = ledger(**{"SKU-1": (10, 3)})

    outcome = book.apply(Write("op-1", "SKU-1", -1, version=2))

    assert outcome.status == Status.CONFLICT
    assert (outcome.quantity, outcome.version) == (10, 3)
    assert not book.journal
    assert not book.new_records  # a conflict is not recorded: the key may be resent


def test_stock_never_goes_below_zero() -> None:
    book = ledger(**{"SKU-1": (2, 1)})

    outcome = book.apply(Write("op-1", "SKU-1", -3))

    assert outcome.status == Status.REJECTED
    assert outcome.reason == Reason.INSUFFICIENT_STOCK
    assert (outcome.quantity, outcome.version) == (2, 1)
    assert not book.new_records


def test_replay_returns_the_original_applied_result() -> None:
    book = ledger(**{"SKU-1": (10, 3)})
    book.apply(Write("op-1", "SKU-1", -4))
    book.apply(Write("op-2", "SKU-1", -1))

    replay = book.apply(Write("op-1", "SKU-1", -4))

    assert replay.status == Status.DUPLICATE
    assert (replay.quantity, replay.version) == (6, 4)  # not the current 5 / 5
    assert book.stock["SKU-1"].quantity == 5


def test_rebased_resend_of_an_applied_operation_is_a_duplicate_not_a_second_apply() -> None:
    book = ledger(**{"SKU-1": (10, 3)})
    book.apply(Write("op-1", "SKU-1", -4, version=3))

    resend = book.apply(Write("op-1", "SKU-1", -4, version=4))

    assert resend.status == Status.DUPLICATE
    assert book.stock["SKU-1"].quantity == 6


def test_same_key_with_a_different_payload_is_refused() -> None:
    book = ledger(**{"SKU-1": (10, 3)})
    book.apply(Write("op-1", "SKU-1", -4))

    reused = book.apply(Write("op-1", "SKU-1", -5))

    assert reused.status == Status.REJECTED
    assert reused.reason == Reason.IDEMPOTENCY_KEY_REUSED
    assert book.stock["SKU-1"].quantity == 6


def test_records_loaded_from_earlier_requests_count_as_applied() -> None:
    book = ledger(**{"SKU-1": (6, 4)})
    book.records["op-1"] = AppliedRecord(fingerprint("SKU-1", -4), "SKU-1", -4, 6, 4, 900.0)

    assert book.apply(Write("op-1", "SKU-1", -4)).status == Status.DUPLICATE


def test_batch_items_see_earlier_items() -> None:
    book = ledger(**{"SKU-1": (1, 1)})

    first = book.apply(Write("a", "SKU-1", 5, version=1))
    second = book.apply(Write("b", "SKU-1", -6, version=2))
    third = book.apply(Write("c", "SKU-1", -1, version=3))

    assert [first.status, second.status, third.status] == [
        Status.APPLIED,
        Status.APPLIED,
        Status.REJECTED,
    ]
    assert book.stock["SKU-1"] == Stock(0, 3, known=True)
    assert book.counts == {Status.APPLIED: 2, Status.REJECTED: 1}


def test_invalid_item_is_rejected_without_touching_anything() -> None:
    book = ledger()

    outcome = book.process(InvalidItem("op-x", "bad sku"))

    assert outcome.status == Status.REJECTED
    assert outcome.reason == Reason.INVALID_ITEM
    assert outcome.quantity is None
    assert not book.dirty


def test_injected_conflict_moves_the_version_and_journals_a_competing_change() -> None:
    book = ledger(**{"SKU-1": (10, 3)})
    book.inject_conflict = lambda sku: True

    outcome = book.apply(Write("op-1", "SKU-1", -1, version=3))

    assert outcome.status == Status.CONFLICT
    assert (outcome.quantity, outcome.version) == (10, 4)
    [entry] = book.journal
    assert (entry.kind, entry.service, entry.delta, entry.version) == (
        JournalKind.COMPETING,
        SIM_SERVICE,
        0,
        4,
    )


def test_unversioned_writes_never_get_injected_conflicts() -> None:
    book = ledger(**{"SKU-1": (10, 3)})
    book.inject_conflict = lambda sku: True

    assert book.apply(Write("op-1", "SKU-1", -1)).status == Status.APPLIED
