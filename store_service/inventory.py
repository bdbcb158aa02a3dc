"""The update use case: apply a delta to the local view and queue it for central, in the
caller's transaction; a batch of updates at once for the writer's group commit."""

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from store_service import domain
from store_service.domain import ChangeState, ItemState, OperationReused
from store_service.storage import items, outbox
from store_service.storage.outbox import NewChange, StoredChange
from store_service.storage.writer import Batchable, Call, Outcome


@dataclass(frozen=True, slots=True)
class UpdateCommand:
    sku: str
    delta: int
    operation_id: str
    version: int | None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """The HTTP status and JSON body of the first answer; `replayed` for a retried request."""

    status: int
    body: bytes
    replayed: bool


def _decide(
    command: UpdateCommand, stored: StoredChange | None, item: ItemState, *, allow_negative: bool
) -> tuple[UpdateResult, ItemState | None]:
    """The answer to one update given what the store holds, and the item to write if it applies.

    Raises the refusals (reused operation_id, stale version, insufficient stock); a known
    operation_id with the same payload is answered with its first answer and writes nothing.
    """
    if stored is not None:
        if (stored.sku, stored.delta, stored.expected_version) != (
            command.sku,
            command.delta,
            command.version,
        ):
            payload = {
                "sku": stored.sku,
                "delta": stored.delta,
                "expected_version": stored.expected_version,
            }
            raise OperationReused(command.operation_id, payload)
        return UpdateResult(stored.status, stored.body, True), None
    updated = domain.apply_delta(
        item, delta=command.delta, expected_version=command.version, allow_negative=allow_negative
    )
    body = orjson.dumps(
        {
            "sku": command.sku,
            "quantity": updated.quantity,
            "version": updated.version,
            "operation_id": command.operation_id,
            "delta": command.delta,
            "sync_status": ChangeState.PENDING,
        }
    )
    return UpdateResult(200, body, False), updated


def _new_change(command: UpdateCommand, before: ItemState, body: bytes, now: float) -> NewChange:
    """The outbox row of an applied update: due now, based on central's last known version."""
    return (
        command.operation_id,
        command.sku,
        command.delta,
        command.version,
        now,
        before.central_version,
        now,
        now,
        command.request_id,
        body.decode(),
    )


def apply_update(
    conn: sqlite3.Connection, command: UpdateCommand, *, allow_negative: bool, now: float
) -> UpdateResult:
    """Apply one delta and queue it for central, in the caller's transaction.

    Replays a known operation_id (same payload) without touching anything, and refuses one
    reused with another payload. Refusals (stale version, insufficient stock) are not stored:
    the client may fix and resend under the same operation_id.
    """
    stored, item = outbox.lookup(conn, command.operation_id, command.sku)
    before = item or domain.new_item(command.sku)
    result, updated = _decide(command, stored, before, allow_negative=allow_negative)
    if updated is not None:
        items.save_item(conn, updated, now)
        outbox.insert_change(conn, _new_change(command, before, result.body, now))
    return result


def apply_updates(conn: sqlite3.Connection, calls: Sequence[Call]) -> list[Outcome]:
    """`apply_update` for a whole group-commit batch, with the same answers in the same order.

    Each call is `((command,), {"allow_negative": ..., "now": ...})`; each outcome is
    (True, UpdateResult) or (False, the refusal). Lookups are one query per 500 operation ids
    and per 500 SKUs, writes one `executemany` for the new changes and one row per touched SKU
    (its final state): on the hot path a statement costs more than the work in it. Calls are
    decided one after another against the batch's own writes (a later call sees the item an
    earlier one updated; a repeated operation_id replays the earlier answer), so the outcome is
    that of running `apply_update` for each in order. A refused call writes nothing.
    """
    commands: list[UpdateCommand] = [args[0] for args, _kwargs in calls]
    stored = outbox.stored_changes(conn, [command.operation_id for command in commands])
    known = items.load_items(conn, [command.sku for command in commands])
    outcomes: list[Outcome] = []
    new_changes: list[NewChange] = []
    touched: dict[str, tuple[float, float]] = {}  # sku -> (first, last) time of its writes
    for command, (_args, kwargs) in zip(commands, calls, strict=True):
        item = known.get(command.sku) or domain.new_item(command.sku)
        try:
            result, updated = _decide(
                command,
                stored.get(command.operation_id),
                item,
                allow_negative=kwargs["allow_negative"],
            )
        except Exception as exc:
            outcomes.append((False, exc))
            continue
        if updated is not None:
            now = kwargs["now"]
            known[command.sku] = updated
            touched[command.sku] = (touched.get(command.sku, (now, now))[0], now)
            stored[command.operation_id] = StoredChange(
                command.sku, command.delta, command.version, result.status, result.body
            )
            new_changes.append(_new_change(command, item, result.body, now))
        outcomes.append((True, result))
    if touched:
        items.save_items(
            conn, [(known[sku], first, last, None) for sku, (first, last) in touched.items()]
        )
        outbox.insert_changes(conn, new_changes)
    return outcomes


apply_update_job = Batchable(one=apply_update, many=apply_updates)
"""What the update route submits to the writer: one call, or a whole batch of them at once."""
