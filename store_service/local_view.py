"""The local view: central's last known stock plus the deltas central has not applied yet.

`reconcile` is the one place that recomputes it: after a sync batch, an operator discard, or
a refresh. Central's state only ever moves forward (`domain.is_newer_central`), so a stale
report (a replayed `duplicate`, a refresh fetched before a batch was recorded) can never roll
the view back.

A refresh must not adopt central's figures for a SKU while central may hold one of its changes
that the store still counts as pending: one in flight, or one put back after a send whose
answer was lost. Central's quantity may include it already, so central + pending would count
it twice until the batch is recorded (or the resend comes back a duplicate). `refresh` checks
that and writes in one write transaction, so no batch can claim or record in between; the
batch's own record step brings central's figures in.
"""

import sqlite3
from collections.abc import Mapping

import structlog

from store_service import domain
from store_service.domain import ItemState
from store_service.storage import items, outbox

log = structlog.get_logger(__name__)


def reconcile(
    conn: sqlite3.Connection,
    sku: str,
    *,
    central_quantity: int | None,
    central_version: int | None,
    now: float,
    synced: bool = True,
    finalized: tuple[int, int] = (0, 0),
) -> ItemState:
    """Recompute one SKU's local view from its pending totals and central's newest state;
    `finalized` is the (sum, count) of its deltas the caller's transaction made final."""
    reported = {sku: (central_quantity, central_version)}
    return reconcile_many(conn, reported, now=now, synced=synced, finalized={sku: finalized})[sku]


def refresh(
    conn: sqlite3.Connection, sku: str, *, central_quantity: int, central_version: int, now: float
) -> bool:
    """Fold a refresh's figures for `sku` into the local view, unless central may already hold a
    change of the SKU the store counts as pending (see the module docstring): then nothing
    changes. Call it inside a write transaction
    (BEGIN IMMEDIATE) so the check and the write are one step. True when adopted."""
    if outbox.has_unsettled(conn, sku):
        log.info("refresh_deferred", sku=sku, reason="a change of the SKU may be at central")
        return False
    reconcile(
        conn, sku, central_quantity=central_quantity, central_version=central_version, now=now
    )
    return True


def reconcile_many(
    conn: sqlite3.Connection,
    reported: Mapping[str, tuple[int | None, int | None]],
    *,
    now: float,
    synced: bool = True,
    finalized: Mapping[str, tuple[int, int]] | None = None,
) -> dict[str, ItemState]:
    """`reconcile` for many SKUs at once: `reported` maps each SKU to central's (quantity,
    version), (None, None) when there is no news. Set-based: one read of the items and one
    upsert statement, whatever the number of SKUs.

    `finalized`: per SKU, the (sum, count) of the deltas that the caller's transaction moved
    from the pending set to a final state (a sync batch's results, an operator's discard). The
    stored totals are exact before it, since every writer keeps them so in its own transaction,
    so the new totals are the stored ones minus these: no pending change is read. A SKU without
    a stored row has no changes (a change and its item row are written together). Only a result
    that cannot be (a negative count, or a delta left with no change) is recounted from the
    changes, with a warning: that scan costs O(pending backlog), as the changes have no index
    by SKU (migration 0005).
    """
    skus = sorted(reported)
    known = items.load_items(conn, skus)
    moved = finalized or {}
    totals: dict[str, tuple[int, int]] = {}
    for sku in skus:
        item = known.get(sku)
        total, n = moved.get(sku, (0, 0))
        if item is None:
            totals[sku] = (0, 0)
            continue
        pending_delta, pending_count = item.pending_delta - total, item.pending_count - n
        if pending_count > 0 or (pending_count == 0 and pending_delta == 0):
            totals[sku] = (pending_delta, pending_count)
    recount = [sku for sku in skus if sku not in totals]
    if recount:
        log.warning("pending_totals_recounted", skus=recount)
        totals.update(outbox.unapplied_totals(conn, recount))
    updated: dict[str, ItemState] = {}
    for sku in skus:
        item = known.get(sku) or domain.new_item(sku)
        quantity, version = item.central_quantity, item.central_version
        central_quantity, central_version = reported[sku]
        if domain.is_newer_central(version, central_version):
            quantity, version = central_quantity, central_version
        pending_delta, pending_count = totals[sku]
        updated[sku] = domain.recompute(
            item,
            central_quantity=quantity,
            central_version=version,
            pending_delta=pending_delta,
            pending_count=pending_count,
        )
    synced_at = now if synced else None
    items.save_items(conn, [(item, now, now, synced_at) for item in updated.values()])
    return updated
