"""Use cases: each opens one transaction on the runtime's database and does one job.

Called from request threads (FastAPI's threadpool); the database lock serializes them, which is
what makes "check the idempotency key and the version, then apply" atomic.
"""

import uuid
from collections.abc import Sequence
from typing import Any

from central_sim import storage
from central_sim.auth import new_signing_key
from central_sim.faults import Faults, FaultsUpdate, merge
from central_sim.ledger import (
    SIM_SERVICE,
    InvalidItem,
    JournalEntry,
    JournalKind,
    Ledger,
    Outcome,
    Stock,
    Write,
)
from central_sim.runtime import (
    FAULTS_STATE,
    REVOKED_STATE,
    SIGNING_KEY_STATE,
    Runtime,
    configured_key_digest,
)

PURGE_EVERY_SECONDS = 60.0
STAT_OUTCOMES = ("applied", "duplicate", "conflict", "rejected", "dropped_response")


def apply_writes(
    rt: Runtime, *, service: str, items: Sequence[Write | InvalidItem], dropped: bool = False
) -> list[Outcome]:
    """Apply a batch in input order in one transaction; one outcome per item."""
    now = rt.clock()
    writes = [item for item in items if isinstance(item, Write)]
    saved_conflict_next = dict(rt.faults.faults.conflict_next)
    try:
        with rt.db.write() as conn:
            ledger = Ledger(
                service=service,
                now=now,
                stock=storage.load_stock(conn, (w.sku for w in writes)),
                records=storage.load_records(
                    conn,
                    service=service,
                    keys=(w.operation_id for w in writes),
                    not_before=now - rt.settings.idempotency_retention_seconds,
                ),
                inject_conflict=rt.faults.take_conflict,
            )
            outcomes = [ledger.process(item) for item in items]
            storage.save_stock(conn, ledger.stock, ledger.dirty)
            storage.append_journal(conn, ledger.journal, storage.utc_iso(now))
            storage.save_records(conn, service=service, records=ledger.new_records)
            injected = ledger.counts.pop("injected_conflict", 0)
            counts = dict(ledger.counts)
            if dropped:
                counts["dropped_response"] = 1
            storage.add_stats(conn, service, counts)
            if injected:
                storage.add_stats(conn, SIM_SERVICE, {"competing": injected})
            if rt.faults.changed:
                storage.put_state(conn, FAULTS_STATE, rt.faults.faults.model_dump())
            if now - rt.last_purge > PURGE_EVERY_SECONDS:
                cutoff = now - rt.settings.idempotency_retention_seconds
                storage.purge_records(conn, older_than=cutoff)
                rt.last_purge = now
    except BaseException:
        # The consumed "conflict next" counters were rolled back in the file: restore memory.
        rt.faults.faults.conflict_next = saved_conflict_next
        raise
    finally:
        rt.faults.changed = False
    for status, n in counts.items():
        rt.metrics.writes.labels(service, status).inc(n)
    if injected:
        rt.metrics.faults.labels("conflict").inc(injected)
    return outcomes


def get_stock(rt: Runtime, sku: str) -> Stock | None:
    with rt.db.read() as conn:
        return storage.get_stock(conn, sku)


def list_stock(rt: Runtime, *, after_sku: str | None, limit: int) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return storage.list_stock(conn, after_sku=after_sku, limit=limit)


def seed(rt: Runtime, *, sku: str, quantity: int) -> Stock:
    """Set a SKU's quantity; the version moves and the journal records the difference as a
    `seed` delta, so journal sums still equal stock."""
    now = rt.clock()
    with rt.db.write() as conn:
        stock = storage.get_stock(conn, sku) or Stock()
        new = Stock(quantity, stock.version + 1, known=True)
        storage.save_stock(conn, {sku: new}, [sku])
        entry = JournalEntry(
            JournalKind.SEED,
            f"seed-{uuid.uuid4()}",
            SIM_SERVICE,
            sku,
            quantity - stock.quantity,
            new.quantity,
            new.version,
        )
        storage.append_journal(conn, [entry], storage.utc_iso(now))
    return new


def reset(rt: Runtime) -> None:
    """Forget stock, journal, idempotency records, stats, faults and revocations; stop the
    competing writer."""
    rt.competing.forget()
    with rt.db.write() as conn:
        storage.clear_all(conn)
        rt.faults.faults = Faults()
        storage.put_state(conn, FAULTS_STATE, rt.faults.faults.model_dump())
        storage.put_state(conn, REVOKED_STATE, [])
        rt.revoked = set()


def update_faults(rt: Runtime, update: FaultsUpdate | None) -> Faults:
    """Apply a partial update (None: back to defaults), persist it and return every knob."""
    with rt.db.write() as conn:
        faults = Faults() if update is None else merge(rt.faults.faults, update)
        storage.put_state(conn, FAULTS_STATE, faults.model_dump())
        rt.faults.faults = faults
    return faults.model_copy(deep=True)


def current_faults(rt: Runtime) -> Faults:
    with rt.db.lock:  # conflict_next is mutated by writers under this lock
        return rt.faults.faults.model_copy(deep=True)


def rotate_signing_key(rt: Runtime) -> None:
    """Sign with a new secret from now on; every token issued before fails verification."""
    key = new_signing_key()
    with rt.db.write() as conn:
        storage.put_state(
            conn,
            SIGNING_KEY_STATE,
            {"key": key, "configured_sha256": configured_key_digest(rt.settings)},
        )
        rt.signing_key = key


def set_revoked(rt: Runtime, service: str, *, revoked: bool) -> set[str]:
    """Revoke a configured service (its tokens are refused, it gets no new ones) or restore it;
    persisted, so a restart keeps it. Returns the revoked services."""
    if service not in rt.services:
        raise UnknownService(service)
    with rt.db.write() as conn:
        names = rt.revoked | {service} if revoked else rt.revoked - {service}
        storage.put_state(conn, REVOKED_STATE, sorted(names))
        rt.revoked = names
    return set(names)


class UnknownService(LookupError):
    """Not one of the configured service identities."""

    def __init__(self, service: str) -> None:
        super().__init__(f"{service!r} is not a configured service")
        self.service = service


def journal(
    rt: Runtime, *, after_seq: int, limit: int, sku: str | None = None
) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return storage.read_journal(conn, after_seq=after_seq, limit=limit, sku=sku)


def journal_tail(rt: Runtime, *, limit: int) -> list[dict[str, Any]]:
    with rt.db.read() as conn:
        return storage.read_journal_tail(conn, limit=limit)


def stats(rt: Runtime) -> dict[str, Any]:
    """Per-service outcome counts (zero-filled), totals, and table sizes."""
    with rt.db.read() as conn:
        per_service = storage.read_stats(conn)
        sizes = storage.counts(conn)
    services = {
        name: {**dict.fromkeys(STAT_OUTCOMES, 0), **counts} for name, counts in per_service.items()
    }
    totals: dict[str, int] = dict.fromkeys(STAT_OUTCOMES, 0)
    for counts in services.values():
        for outcome, n in counts.items():
            totals[outcome] = totals.get(outcome, 0) + n
    return {"services": services, "totals": totals, **sizes}


def health(rt: Runtime) -> dict[str, Any]:
    with rt.db.read() as conn:
        sizes = storage.counts(conn)
    return {"status": "ok", "database": "ok", **sizes}
