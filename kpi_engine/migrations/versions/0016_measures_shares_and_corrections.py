"""measures: shares of shared credit in rollups, corrections that never count twice,
the currency of posted figures

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 08:00:00.000000

Rollups are derived data: the table is recreated with `shares` in its key and rebuilt from
the raw rows at the next figure (the stored fingerprint is dropped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VALUES = ("v0", "v1", "v2", "v3", "v4", "v5")


def _rollups(with_shares: bool) -> None:
    key = ["zone", "axis", "owner", "shop_id", "day", "fx_day", "currency"]
    columns: list[sa.Column[Any]] = [
        sa.Column("zone", sa.String(), nullable=False),
        sa.Column("axis", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("shop_id", sa.String(), nullable=False),
        sa.Column("day", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("fx_day", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("currency", sa.String(), nullable=False),
    ]
    if with_shares:
        columns.append(sa.Column("shares", sa.Integer(), autoincrement=False, nullable=False))
        key.append("shares")
    columns += [sa.Column(v, sa.BigInteger(), nullable=False) for v in _VALUES]
    op.create_table("rollups", *columns, sa.PrimaryKeyConstraint(*key, name=op.f("pk_rollups")))


def upgrade() -> None:
    """Apply this migration."""
    op.drop_table("rollups")
    _rollups(with_shares=True)
    op.execute("DELETE FROM rollup_state")  # rebuild every rollup at the next figure
    op.execute("DELETE FROM live_hosts")
    op.execute("DELETE FROM rollup_credits")
    with op.batch_alter_table("live_hosts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("shares", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
    with op.batch_alter_table("rollup_credits", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("shares", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
    with op.batch_alter_table("corrections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_day", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("timezone", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("claimed", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("reported", sa.String(), nullable=True))
    with op.batch_alter_table("posted_figures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("currency", sa.String(), nullable=True))


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("posted_figures", schema=None) as batch_op:
        batch_op.drop_column("currency")
    with op.batch_alter_table("corrections", schema=None) as batch_op:
        batch_op.drop_column("reported")
        batch_op.drop_column("claimed")
        batch_op.drop_column("timezone")
        batch_op.drop_column("first_day")
    with op.batch_alter_table("rollup_credits", schema=None) as batch_op:
        batch_op.drop_column("shares")
    with op.batch_alter_table("live_hosts", schema=None) as batch_op:
        batch_op.drop_column("shares")
    op.drop_table("rollups")
    _rollups(with_shares=False)
    op.execute("DELETE FROM rollup_state")
