"""inbound deliveries kept until answered

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 08:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration: a delivery carries what was said until it is answered; the
    deliveries recorded before were all answered (state "done")."""
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(), server_default="message", nullable=False)
        )
        batch_op.add_column(sa.Column("payload", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("state", sa.String(), server_default="done", nullable=False))
        batch_op.add_column(sa.Column("lease_until", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("done_at", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_inbound_events_state"), ["state"], unique=False)


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_events_state"))
        batch_op.drop_column("done_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("state")
        batch_op.drop_column("payload")
        batch_op.drop_column("kind")
