"""configuration history: versions, closed months' versions, the configuration audit trail

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "config_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("recorded_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_versions")),
    )
    with op.batch_alter_table("config_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_config_versions_recorded_at"), ["recorded_at"], unique=False
        )
    op.create_table(
        "period_configs",
        sa.Column("month", sa.String(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("bound_at", sa.BigInteger(), nullable=False),
        sa.Column("bound_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_period_configs")),
    )
    op.create_table(
        "config_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_events")),
    )
    with op.batch_alter_table("config_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_config_events_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_config_events_kind_subject"), ["kind", "subject"], unique=False
        )


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("config_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_config_events_kind_subject"))
        batch_op.drop_index(batch_op.f("ix_config_events_at"))
    op.drop_table("config_events")
    op.drop_table("period_configs")
    with op.batch_alter_table("config_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_config_versions_recorded_at"))
    op.drop_table("config_versions")
