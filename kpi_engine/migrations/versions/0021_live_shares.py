"""live sessions: times viewers shared them (the interaction rate counts shares)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 08:00:00.000000

A new base measure changes the rollups' axes, so their fingerprint no longer matches and they
are rebuilt from the raw rows at the next figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("live_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("social_shares", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("live_sessions", schema=None) as batch_op:
        batch_op.drop_column("social_shares")
