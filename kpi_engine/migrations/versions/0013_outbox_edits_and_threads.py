"""outbox edits and threads

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-01 08:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("edits", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("thread_of", sa.String(), nullable=True))
        batch_op.create_index(batch_op.f("ix_outbox_edits"), ["edits"], unique=False)


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_edits"))
        batch_op.drop_column("thread_of")
        batch_op.drop_column("edits")
