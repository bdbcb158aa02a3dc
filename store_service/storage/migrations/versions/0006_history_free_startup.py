"""history-free start-up: final counts kept by triggers, an index for parking expired changes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:30:00.000000

With a long outbox history (millions of final changes), three reads walked it:
counting changes by state (`GROUP BY status`, a scan of every change, for the summary, health
and the backlog metrics), parking pending changes first sent before central's idempotency
window (every pending change read from the table: first_sent_at was in no index) and the purge
(whose `status IN (final)` led SQLite to the status index: every final change read to test
finalized_at). Now:

- `change_counts` holds the number of changes in each final state, kept by triggers on insert,
  status change and delete; the states still to send are counted on the status index, which
  holds them apart from the history. Filled here once from the changes (the only time the
  history is counted).
- `ix_changes_pending_first_sent` indexes pending changes that were sent before (retries,
  rebases): a new change has no first_sent_at, so the update path never writes to it.
- The purge walks `ix_changes_finalized_at` (a query change, store_service/storage/outbox.py).

Measured in docs/performance.md, "(f) Recovery".
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The final states as of this revision (domain.FINAL_STATES), spelled out: a migration must not
# change when the code's vocabulary does.
FINAL = ("synced", "rejected", "discarded")
_FINAL_SQL = "(" + ",".join(f"'{state}'" for state in FINAL) + ")"

TRIGGERS = {
    "tr_changes_count_insert": f"""
        CREATE TRIGGER tr_changes_count_insert AFTER INSERT ON changes
        WHEN NEW.status IN {_FINAL_SQL}
        BEGIN
            UPDATE change_counts SET n = n + 1 WHERE status = NEW.status;
        END""",
    "tr_changes_count_status": f"""
        CREATE TRIGGER tr_changes_count_status AFTER UPDATE OF status ON changes
        WHEN OLD.status IS NOT NEW.status
            AND (OLD.status IN {_FINAL_SQL} OR NEW.status IN {_FINAL_SQL})
        BEGIN
            UPDATE change_counts SET n = n - 1 WHERE status = OLD.status;
            UPDATE change_counts SET n = n + 1 WHERE status = NEW.status;
        END""",
    "tr_changes_count_delete": f"""
        CREATE TRIGGER tr_changes_count_delete AFTER DELETE ON changes
        WHEN OLD.status IN {_FINAL_SQL}
        BEGIN
            UPDATE change_counts SET n = n - 1 WHERE status = OLD.status;
        END""",
}


def upgrade() -> None:
    op.create_table(
        "change_counts",
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("status", name=op.f("pk_change_counts")),
    )
    for state in FINAL:
        op.execute(
            "INSERT INTO change_counts (status, n) "
            f"SELECT '{state}', count(*) FROM changes WHERE status = '{state}'"
        )
    for sql in TRIGGERS.values():
        op.execute(sql)
    op.create_index(
        "ix_changes_pending_first_sent",
        "changes",
        ["first_sent_at"],
        unique=False,
        sqlite_where=sa.text("status = 'pending' AND first_sent_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_changes_pending_first_sent", table_name="changes")
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}")
    op.drop_table("change_counts")
