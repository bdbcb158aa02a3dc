"""One sync run: lease → claim → push → record → reconcile, as a plain function (no Celery).

Decisions written down here:

- **One run at a time** per store: the `sync` lease row. Acquiring it also puts back any
  change a crashed run left `in_flight` (resending is safe: the operation_id is central's
  idempotency key). Every batch renews the lease in the transaction that records it, so a run
  that stalled past its lease never records over the run that took over.
- **Versions sent to central**: for each item, the central version the store knows for the
  SKU (`inventory_items.central_version`), plus one for each earlier item of the same SKU in
  the batch (each applied delta bumps central's version by one). When the store has never
  learned central's version for a SKU (a new store that was never refreshed), the version is
  null and central applies the delta unconditionally: the store has no basis for a version
  check, and deltas commute; the first result teaches it the version for later batches.
- **Conflicts** by `conflict_strategy`:
  `rebase` (default) adopts central's current version from the result and resends the same
  delta, due at once (so usually in the same run), at most `rebase_max_attempts` times; then
  the change is parked as `conflict` with resolution `rebase_exhausted`. A conflict caused only
  because an earlier item of the same SKU in the same batch was not applied (so our version
  guess was off by one) does not count against that budget.
  `central_wins` discards the local delta (`discarded`, resolution `central_wins`).
  `manual` parks it (`conflict`, resolution `manual`).
  Central refusing for a business rule (`insufficient_stock`) parks it as `conflict` whatever
  the strategy; other refusals (`invalid_item`, `idempotency_key_reused`) are `rejected`.
- **Transient failure** (connect, timeout, 5xx, 429, unusable answer): the whole batch goes
  back to pending with attempts+1 and capped exponential backoff with full jitter (never
  sooner than `Retry-After`), and the run stops: central is unhealthy, don't hammer it.
- **Auth failure** (a second 401, or the token endpoint refusing the secret): the batch goes
  back to pending with no penalty (fixing the secret should make the next run succeed at
  once), `auth_failed` is recorded in sync_state for health and metrics, and the run stops.
- **Idempotency window**: changes first sent longer ago than central keeps keys are parked as
  `conflict` (`idempotency_window_expired`) before each claim, never resent blindly.
- A run that ends drained or out of time budget is a successful run (`last_success_at`).
"""

import contextlib
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from store_service.config import Settings
from store_service.domain import ConflictStrategy, ItemOutcome, Resolution, RunResult
from store_service.local_view import reconcile_many
from store_service.storage import items, outbox
from store_service.storage.db import connect, transaction
from store_service.storage.outbox import ClaimedChange, SyncedRow
from store_service.sync import lease, state
from store_service.sync.central import (
    AuthFailure,
    BulkOutcome,
    BulkResults,
    CentralClient,
    ItemResult,
    ItemStatus,
    SyncItem,
    TransientFailure,
)
from store_service.sync.purge import purge_expired

log = structlog.get_logger(__name__)

# Refusals that are business rules, not bad data: parked for a person, never dropped.
PARKED_REASONS = frozenset({Resolution.INSUFFICIENT_STOCK.value})
# A batch is claimed, and its outcomes recorded, in transactions of at most this many changes,
# so the API's commits wait for a few milliseconds of the worker's writing, not a whole batch's.
CHUNK_ROWS = 200
# Between two of its transactions the worker sleeps this long: an API writer that was waiting
# goes first anyway (it says so, db.WriteTurn), and this covers one that arrives just as the
# worker lets go (docs/performance.md, (e)).
YIELD_SECONDS = 0.0005


def yield_write_turn() -> None:
    time.sleep(YIELD_SECONDS)


class BulkSender(Protocol):
    def bulk_sync(self, items: Sequence[SyncItem]) -> BulkOutcome: ...


@dataclass
class SyncReport:
    holder: str
    started_at: float
    duration_seconds: float = 0.0
    batches: int = 0
    sent: int = 0
    outcomes: Counter[ItemOutcome] = field(default_factory=Counter)
    recovered: int = 0
    parked_expired: int = 0
    purged: int = 0
    stopped_reason: RunResult = RunResult.DRAINED
    error: str | None = None
    # The delays given to changes put back after a transient failure (for the metrics).
    backoff_delays: list[float] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.stopped_reason.succeeded

    def as_dict(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "started_at": self.started_at,
            "duration_seconds": round(self.duration_seconds, 3),
            "batches": self.batches,
            "sent": self.sent,
            "outcomes": {outcome.value: n for outcome, n in self.outcomes.items()},
            "recovered": self.recovered,
            "parked_expired": self.parked_expired,
            "purged": self.purged,
            "stopped_reason": self.stopped_reason.value,
            "error": self.error,
            "retried": len(self.backoff_delays),
        }


def backoff_delay(
    attempts: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds until the next try after `attempts` failures: full jitter, capped, ≥ Retry-After."""
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    delay = rng() * ceiling
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return float(delay)


def versions_for(conn: sqlite3.Connection, batch: Sequence[ClaimedChange]) -> list[SyncItem]:
    """The items to send, each with the central version it expects (see module docstring)."""
    known = items.load_items(conn, sorted({change.sku for change in batch}))
    next_version: dict[str, int | None] = {}
    to_send: list[SyncItem] = []
    for change in batch:
        if change.sku not in next_version:
            item = known.get(change.sku)
            next_version[change.sku] = None if item is None else item.central_version
        version = next_version[change.sku]
        to_send.append(SyncItem(change.operation_id, change.sku, change.delta, version))
        if version is not None:
            next_version[change.sku] = version + 1
    return to_send


class _Run:
    def __init__(
        self,
        settings: Settings,
        conn: sqlite3.Connection,
        client: BulkSender,
        *,
        now: Callable[[], float],
        rng: Callable[[], float],
        holder: str,
    ) -> None:
        self.settings = settings
        self.conn = conn
        self.client = client
        self.now = now
        self.rng = rng
        self.holder = holder
        self.report = SyncReport(holder=holder, started_at=now())

    def execute(self) -> SyncReport:
        settings, conn = self.settings, self.conn
        with transaction(conn):
            now = self.now()
            if not lease.acquire(
                conn, holder=self.holder, now=now, ttl=settings.sync_lease_seconds
            ):
                self.report.stopped_reason = RunResult.LEASE_BUSY
                return self.report
            self.report.recovered = outbox.recover_in_flight(conn, now=now)
            # Every batch checks what it claims; this parks the rest (not due yet) once a run.
            self.report.parked_expired = outbox.park_expired(
                conn, now=now, window=settings.central_idempotency_window_seconds
            )
        try:
            self._loop()
        except Exception as exc:
            self.report.stopped_reason = RunResult.ERROR
            self.report.error = repr(exc)
            log.exception("sync_run_failed", holder=self.holder)
            raise
        finally:
            self._finish()
        return self.report

    def _loop(self) -> None:
        deadline = self.report.started_at + self.settings.sync_time_budget_seconds
        while True:
            if self.now() >= deadline:
                self.report.stopped_reason = RunResult.TIME_BUDGET
                return
            claimed = self._claim()
            if claimed is None:
                return
            batch, items = claimed
            if not batch:
                self.report.stopped_reason = RunResult.DRAINED
                return
            self.report.batches += 1
            self.report.sent += len(batch)
            try:
                outcome = self.client.bulk_sync(items)
            except Exception:
                # A bug, not central's fault: leave nothing in flight on the way out.
                self._put_back(batch, TransientFailure("error", "sync run crashed"), count=True)
                raise
            if not self._record(batch, items, outcome):
                return

    def _claim(self) -> tuple[list[ClaimedChange], list[SyncItem]] | None:
        """The next batch and what to send for it, claimed in transactions of at most
        CHUNK_ROWS changes; None when the lease was lost (whoever took it over recovered
        what this run had claimed, in the transaction that took it)."""
        settings, conn = self.settings, self.conn
        batch: list[ClaimedChange] = []
        try:
            while True:
                if batch:
                    yield_write_turn()
                wanted = min(CHUNK_ROWS, settings.sync_batch_size - len(batch))
                with transaction(conn):
                    now = self.now()
                    if not self._renew(now):
                        return None
                    chunk, parked = outbox.claim_due(
                        conn,
                        now=now,
                        limit=wanted,
                        window=settings.central_idempotency_window_seconds,
                    )
                    self.report.parked_expired += parked
                    batch.extend(chunk)
                    if len(chunk) < wanted or len(batch) == settings.sync_batch_size:
                        # A change that came due between two chunks can have a smaller id
                        # than one claimed before it: sent oldest first, as one claim would.
                        batch.sort(key=lambda change: change.id)
                        return batch, versions_for(conn, batch)
        except Exception as exc:
            if batch:
                self._unclaim(batch, exc)
            raise

    def _unclaim(self, batch: Sequence[ClaimedChange], exc: Exception) -> None:
        """Put back what a failed claim had claimed (nothing was sent: no attempt counts), so
        nothing waits in flight for the next run. Only while this run holds the lease: once
        another run took it, that run has put them back and may have claimed them again."""
        with contextlib.suppress(sqlite3.Error), transaction(self.conn):
            now = self.now()
            if self._holds_lease(now):
                self._put_back_due_now(batch, f"claim failed: {exc!r}", now)

    def _holds_lease(self, now: float) -> bool:
        """Renew the lease; False when another run has taken it."""
        return lease.renew(
            self.conn, holder=self.holder, now=now, ttl=self.settings.sync_lease_seconds
        )

    def _renew(self, now: float) -> bool:
        if self._holds_lease(now):
            return True
        log.warning("sync_lease_lost", holder=self.holder)
        self.report.stopped_reason = RunResult.LEASE_LOST
        return False

    def _record(
        self, batch: Sequence[ClaimedChange], items: Sequence[SyncItem], outcome: BulkOutcome
    ) -> bool:
        """Record one batch's outcome; False when the run must stop."""
        if isinstance(outcome, TransientFailure):
            log.warning("sync_batch_transient", kind=outcome.kind, detail=outcome.detail)
            self.report.outcomes[ItemOutcome.TRANSIENT] += len(batch)
            self._put_back(batch, outcome, count=True)
            self.report.stopped_reason = RunResult.TRANSIENT
            return False
        if isinstance(outcome, AuthFailure):
            log.error("sync_auth_failed", detail=outcome.detail)
            self.report.outcomes[ItemOutcome.AUTH_FAILED] += len(batch)
            with transaction(self.conn):
                now = self.now()
                self._put_back_due_now(batch, f"auth failure: {outcome.detail}", now)
                state.put(
                    self.conn,
                    state.Fact.AUTH_FAILED,
                    {"at": now, "detail": outcome.detail},
                    now=now,
                )
            self.report.stopped_reason = RunResult.AUTH_FAILED
            return False
        assert isinstance(outcome, BulkResults)
        results = outcome.results
        chain_broken: set[str] = set()  # for the whole batch: versions were guessed in order
        for start in range(0, len(batch), CHUNK_ROWS):
            if start:
                yield_write_turn()
            end = start + CHUNK_ROWS
            with transaction(self.conn):
                now = self.now()
                if not self._renew(now):
                    # Another run recovered the rest and will resend it (safe: idempotent).
                    return False
                if not start:
                    state.forget(self.conn, state.Fact.AUTH_FAILED)
                reported, finalized = self._apply_results(
                    batch[start:end], items[start:end], results[start:end], now, chain_broken
                )
                reconcile_many(self.conn, reported, now=now, finalized=finalized)
        yield_write_turn()
        return True

    def _apply_results(
        self,
        batch: Sequence[ClaimedChange],
        items: Sequence[SyncItem],
        results: Sequence[ItemResult],
        now: float,
        chain_broken: set[str],
    ) -> tuple[dict[str, tuple[int | None, int | None]], dict[str, tuple[int, int]]]:
        """Record each item; returns the newest central state reported per touched SKU, and
        per SKU the (sum, count) of the deltas that left the pending set (became final).
        `chain_broken`: the SKUs with an item not applied earlier in the batch (updated)."""
        newest: dict[str, tuple[int | None, int | None]] = {}
        finalized: dict[str, tuple[int, int]] = {}
        synced: list[SyncedRow] = []
        for change, item, result in zip(batch, items, results, strict=True):
            if result.status in (ItemStatus.APPLIED, ItemStatus.DUPLICATE):
                # The common case, recorded for the whole batch in one statement below.
                duplicate = result.status is ItemStatus.DUPLICATE
                resolution = Resolution.DUPLICATE if duplicate else None
                synced.append((change.id, item.version, result.version, resolution))
                label = ItemOutcome.DUPLICATE if duplicate else ItemOutcome.APPLIED
            else:
                label = self._record_item(change, item, result, chain_broken, now)
            self.report.outcomes[label] += 1
            if label.final:
                total, n = finalized.get(change.sku, (0, 0))
                finalized[change.sku] = (total + change.delta, n + 1)
            known = newest.setdefault(change.sku, (None, None))
            if result.version is not None and (known[1] is None or result.version >= known[1]):
                newest[change.sku] = (result.quantity, result.version)
            if result.status is not ItemStatus.APPLIED:
                chain_broken.add(change.sku)
        outbox.mark_synced(self.conn, synced, now=now)
        return newest, finalized

    def _record_item(
        self,
        change: ClaimedChange,
        item: SyncItem,
        result: ItemResult,
        chain_broken: set[str],
        now: float,
    ) -> ItemOutcome:
        """Record one item that central did not apply; returns its outcome."""
        conn, settings = self.conn, self.settings

        # Parking and the central-wins discard read alike but write different states and columns.
        def park(resolution: Resolution, error: str, outcome: ItemOutcome) -> ItemOutcome:
            outbox.mark_conflict(
                conn,
                change.id,
                sent_version=item.version,
                central_version=result.version,
                resolution=resolution,
                error=error,
                now=now,
            )
            return outcome

        if result.status is ItemStatus.REJECTED:
            reason = result.reason or "rejected"
            if reason in PARKED_REASONS:
                return park(Resolution(reason), f"central refused: {reason}", ItemOutcome.PARKED)
            outbox.mark_rejected(conn, change.id, sent_version=item.version, reason=reason, now=now)
            return ItemOutcome.REJECTED
        # A version conflict.
        strategy = settings.conflict_strategy
        if strategy is ConflictStrategy.CENTRAL_WINS:
            outbox.mark_discarded(
                conn,
                change.id,
                central_version=result.version,
                resolution=Resolution.CENTRAL_WINS,
                now=now,
            )
            return ItemOutcome.DISCARDED
        if strategy is ConflictStrategy.MANUAL:
            error = f"version conflict: sent {item.version}, central at {result.version}"
            return park(Resolution.MANUAL, error, ItemOutcome.CONFLICT)
        counted = change.sku not in chain_broken
        if counted and change.rebases + 1 > settings.rebase_max_attempts:
            error = f"still conflicting after {change.rebases} rebases"
            return park(Resolution.REBASE_EXHAUSTED, error, ItemOutcome.CONFLICT)
        outbox.mark_rebased(
            conn, change.id, central_version=result.version, counted=counted, now=now
        )
        return ItemOutcome.REBASED

    def _put_back_due_now(self, batch: Sequence[ClaimedChange], error: str, now: float) -> None:
        """Back to pending, due at once, no attempt counted: central refused none of them."""
        outbox.put_back(
            self.conn,
            [(change.id, now) for change in batch],
            error=error,
            count_attempt=False,
            now=now,
        )

    def _put_back(
        self, batch: Sequence[ClaimedChange], failure: TransientFailure, *, count: bool
    ) -> None:
        settings = self.settings
        with transaction(self.conn):
            now = self.now()
            retries = [
                (
                    change.id,
                    now
                    + backoff_delay(
                        change.attempts + 1,
                        base=settings.backoff_base_seconds,
                        cap=settings.backoff_cap_seconds,
                        retry_after=failure.retry_after,
                        rng=self.rng,
                    ),
                )
                for change in batch
            ]
            self.report.backoff_delays.extend(when - now for _id, when in retries)
            outbox.put_back(
                self.conn,
                retries,
                error=f"{failure.kind}: {failure.detail}",
                count_attempt=count,
                now=now,
            )

    def _finish(self) -> None:
        settings, conn, report = self.settings, self.conn, self.report
        # In short transactions of its own, before the report: see store_service/sync/purge.py.
        report.purged = purge_expired(
            conn, retention=settings.idempotency_retention_seconds, now=self.now
        )
        with transaction(conn):
            now = self.now()
            report.duration_seconds = now - report.started_at
            if report.succeeded:
                state.put(conn, state.Fact.LAST_SUCCESS_AT, now, now=now)
            state.put(conn, state.Fact.LAST_RUN, report.as_dict(), now=now)
            lease.release(conn, holder=self.holder)


def run_sync(
    settings: Settings,
    *,
    client: BulkSender | None = None,
    now: Callable[[], float] = time.time,
    rng: Callable[[], float] = random.random,
    holder: str | None = None,
) -> SyncReport:
    """Drain due changes to central within the time budget; see the module docstring."""
    holder = holder or lease.holder_name()
    own_client = client is None
    sender: BulkSender = client or CentralClient.from_settings(settings)
    conn = connect(settings.database_path, synchronous=settings.sqlite_synchronous)
    try:
        with structlog.contextvars.bound_contextvars(sync_run=holder):
            report = _Run(settings, conn, sender, now=now, rng=rng, holder=holder).execute()
        log.info("sync_run_finished", **report.as_dict())
        return report
    finally:
        conn.close()
        if own_client and isinstance(sender, CentralClient):
            sender.close()
