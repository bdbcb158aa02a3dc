"""partial finalized index: only final changes are indexed by finalized_at

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 22:40:00.000000

Every new change is pending, with finalized_at NULL, and ix_changes_finalized_at held an entry
for each of them: one more index write per local update for an index that only the purge of
final changes reads (`finalized_at < ?`, which implies NOT NULL, so SQLite uses the partial
index). Measured in docs/performance.md.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_finalized_at")
        batch_op.create_index(
            "ix_changes_finalized_at",
            ["finalized_at"],
            unique=False,
            sqlite_where=sa.text("finalized_at IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_finalized_at")
        batch_op.create_index("ix_changes_finalized_at", ["finalized_at"], unique=False)
