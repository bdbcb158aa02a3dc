"""drop changes sku index: a SKU's changes are no longer looked up by index

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 02:00:00.000000

ix_changes_sku took one entry per new change at a place that depends on the SKU, so with many
SKUs every change in a group commit dirtied another page of it: measured 74 → 28 pages written
to the WAL per commit of 40 updates, and 25-30 µs of CPU per update (docs/performance.md,
"The update path: decisions and their reasons"). Its readers now do without: pending totals are kept on inventory_items in every
writer's transaction, and listing a SKU's changes scans a bounded window by id.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_changes_sku", table_name="changes")


def downgrade() -> None:
    op.create_index("ix_changes_sku", "changes", ["sku"], unique=False)
