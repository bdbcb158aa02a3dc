"""Table definitions: the one source of the schema, for Alembic and for this package's SQL."""

from sqlalchemy import (
    DDL,
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
)

from store_service.domain import FINAL_STATES, ChangeState
from store_service.storage.db import sql_list

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Times are Unix seconds (REAL): cheap to compare in SQL and free of timezone parsing.

inventory_items = Table(
    "inventory_items",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    # Sum and count of this SKU's deltas not yet applied at central, kept in step with changes.
    Column("pending_delta", Integer, nullable=False, server_default="0"),
    Column("pending_count", Integer, nullable=False, server_default="0"),
    Column("central_quantity", Integer, nullable=True),
    Column("central_version", Integer, nullable=True),
    Column("last_synced_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# The outbox: one row per acknowledged local change, written in the same transaction as the
# stock change. `operation_id` is the client's idempotency key and central's.
changes = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("operation_id", String(128), nullable=False, unique=True),
    Column("sku", String(64), nullable=False),
    Column("delta", Integer, nullable=False),
    Column("expected_version", Integer, nullable=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("central_version", Integer, nullable=True),
    # The central version the next send is based on (rebase moves it).
    Column("base_version", Integer, nullable=True),
    Column("rebases", Integer, nullable=False, server_default="0"),
    Column("resolution", String(32), nullable=True),
    Column("first_sent_at", Float, nullable=True),
    Column("finalized_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("request_id", String(128), nullable=True),
    # The first response, replayed verbatim for a retried request.
    Column("response_status", Integer, nullable=False),
    Column("response_body", Text, nullable=False),
    CheckConstraint(f"status IN {sql_list(ChangeState)}", name="status_known"),
    CheckConstraint("delta <> 0", name="delta_nonzero"),
)
# Claims walk pending changes in id order (oldest first) and stop after a batch: no sort.
Index("ix_changes_status_id", changes.c.status, changes.c.id)
# Indexes a change passes through on every status move cost the drain most (migration 0003):
# "when is the next change due" looks only at pending rows.
Index(
    "ix_changes_pending_due",
    changes.c.next_attempt_at,
    sqlite_where=changes.c.status == ChangeState.PENDING.value,
)
# No index by SKU (migration 0005): its entries scatter over every SKU, so each new change
# dirtied one more page of it, written to the WAL and fsynced with every group commit. A SKU's
# pending totals live on its inventory_items row; listing a SKU's changes scans by id, bounded.
# Only final changes have finalized_at, and only the purge of final changes reads it: new
# (pending) changes are left out of the index (migration 0004).
Index(
    "ix_changes_finalized_at",
    changes.c.finalized_at,
    sqlite_where=changes.c.finalized_at.is_not(None),
)
# Parking changes first sent before central's idempotency window reads only pending changes
# that were sent before (migration 0006): a new change has no first_sent_at and stays out.
Index(
    "ix_changes_pending_first_sent",
    changes.c.first_sent_at,
    sqlite_where=(changes.c.status == ChangeState.PENDING.value)
    & changes.c.first_sent_at.is_not(None),
)

# The number of changes in each final state, kept by triggers on `changes` (migration 0006), so
# counting by state never walks the history. A migration that recreates `changes` (Alembic's
# batch "move and copy") drops its triggers: it must create them again.
change_counts = Table(
    "change_counts",
    metadata,
    Column("status", String(16), primary_key=True),
    Column("n", Integer, nullable=False),
)
_FINAL = sql_list(FINAL_STATES)
# The same statements as migration 0006 (tests/unit/test_migrations.py compares them), so a
# schema made with create_all (tests) counts as a migrated one does.
COUNT_TRIGGERS = (
    f"""CREATE TRIGGER tr_changes_count_insert AFTER INSERT ON changes
        WHEN NEW.status IN {_FINAL}
        BEGIN
            UPDATE change_counts SET n = n + 1 WHERE status = NEW.status;
        END""",
    f"""CREATE TRIGGER tr_changes_count_status AFTER UPDATE OF status ON changes
        WHEN OLD.status IS NOT NEW.status
            AND (OLD.status IN {_FINAL} OR NEW.status IN {_FINAL})
        BEGIN
            UPDATE change_counts SET n = n - 1 WHERE status = OLD.status;
            UPDATE change_counts SET n = n + 1 WHERE status = NEW.status;
        END""",
    f"""CREATE TRIGGER tr_changes_count_delete AFTER DELETE ON changes
        WHEN OLD.status IN {_FINAL}
        BEGIN
            UPDATE change_counts SET n = n - 1 WHERE status = OLD.status;
        END""",
)
for _statement in (
    *(f"INSERT INTO change_counts (status, n) VALUES ('{state}', 0)" for state in FINAL_STATES),
    *COUNT_TRIGGERS,
):
    event.listen(metadata, "after_create", DDL(_statement))  # type: ignore[no-untyped-call]  # SQLAlchemy leaves DDL() untyped

# One row per named lease ("sync"): a crashed holder's lease simply expires.
leases = Table(
    "leases",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", Float, nullable=False),
)

# Small key/value facts about sync: last successful run, last auth failure, worker heartbeat.
sync_state = Table(
    "sync_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)
