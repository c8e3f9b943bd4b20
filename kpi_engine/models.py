"""Storage tables. Instants are integer Unix seconds (UTC); money is integer minor units.

Every imported table carries the same bookkeeping: the import batch that last wrote the row,
its revision number and the raw source row. Superseded versions move to `record_history`, so
a revision never loses data.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# Named constraints keep later migrations (and SQLite batch mode) deterministic.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class ImportBatch(SQLModel, table=True):
    """One import: a file or an API call, with its header and outcome counts."""

    __tablename__ = "import_batches"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True)
    source: str
    columns: str = Field(sa_column=Column(Text, nullable=False))
    imported_at: int = Field(sa_type=BigInteger)
    rows: int = 0
    inserted: int = 0
    revised: int = 0
    unchanged: int = 0
    stale: int = 0


class Imported(SQLModel):
    """Bookkeeping columns shared by every imported table."""

    revision: int = 1
    # No foreign key: a per-row constraint check would cost more than the rest of the insert
    # (PostgreSQL fires a trigger per row). The importer creates the batch in the same
    # transaction as its rows.
    batch_id: int
    raw: str = Field(sa_column_kwargs={"nullable": False}, sa_type=Text)


class Order(Imported, table=True):
    """An order's latest known state (TikTok Shop semantics, see docs/import-formats.md)."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("platform", "shop_id", "order_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    shop_id: str
    order_id: str
    status: str
    create_time: int = Field(sa_type=BigInteger)
    paid_time: int | None = Field(default=None, sa_type=BigInteger)
    update_time: int = Field(sa_type=BigInteger)
    currency: str
    sub_total: int = Field(sa_type=BigInteger)
    total_amount: int = Field(sa_type=BigInteger)
    attributed_to: str | None = None
    channel: str | None = None
    live_session_id: str | None = None
    is_sample: bool = False


class Refund(Imported, table=True):
    """A refund or return against an order."""

    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("platform", "shop_id", "refund_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    shop_id: str
    refund_id: str
    order_id: str
    status: str
    create_time: int = Field(sa_type=BigInteger)
    update_time: int = Field(sa_type=BigInteger)
    currency: str
    refund_amount: int = Field(sa_type=BigInteger)


class LiveSession(Imported, table=True):
    """A live-stream session with its audience figures; `hosts` is a comma-separated id list."""

    __tablename__ = "live_sessions"
    __table_args__ = (UniqueConstraint("platform", "shop_id", "session_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    shop_id: str
    session_id: str
    hosts: str
    start_time: int = Field(sa_type=BigInteger)
    end_time: int = Field(sa_type=BigInteger)
    views: int = Field(default=0, sa_type=BigInteger)
    viewers: int = Field(default=0, sa_type=BigInteger)
    avg_viewing_ms: int = Field(default=0, sa_type=BigInteger)
    product_impressions: int = Field(default=0, sa_type=BigInteger)
    product_clicks: int = Field(default=0, sa_type=BigInteger)
    comments: int = Field(default=0, sa_type=BigInteger)
    likes: int = Field(default=0, sa_type=BigInteger)
    new_followers: int = Field(default=0, sa_type=BigInteger)


class AdSpend(Imported, table=True):
    """Daily spend and results of one ad campaign."""

    __tablename__ = "ad_spend"
    __table_args__ = (UniqueConstraint("platform", "account", "campaign", "date"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    account: str
    campaign: str
    date: dt.date
    person_id: str | None = None
    currency: str
    spend: int = Field(sa_type=BigInteger)
    impressions: int = Field(default=0, sa_type=BigInteger)
    clicks: int = Field(default=0, sa_type=BigInteger)
    conversions: int = Field(default=0, sa_type=BigInteger)
    attributed_revenue: int = Field(default=0, sa_type=BigInteger)


class FxRate(Imported, table=True):
    """How many units of `quote` one unit of `currency` buys on a date (exact decimal text)."""

    __tablename__ = "fx_rates"
    __table_args__ = (UniqueConstraint("currency", "quote", "date"),)

    id: int | None = Field(default=None, primary_key=True)
    currency: str
    quote: str
    date: dt.date
    rate: str


class MetricValue(Imported, table=True):
    """A daily value of a metric that arrives ready-made (on-time delivery, response rate)."""

    __tablename__ = "metric_values"
    __table_args__ = (UniqueConstraint("metric", "entity_type", "entity_id", "date"),)

    id: int | None = Field(default=None, primary_key=True)
    metric: str
    entity_type: str
    entity_id: str
    date: dt.date
    value: str


class RecordHistory(SQLModel, table=True):
    """A superseded version of an imported row, kept when a newer version replaced it."""

    __tablename__ = "record_history"

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    record_id: int = Field(index=True)
    revision: int
    data: str = Field(sa_type=Text)
    superseded_at: int = Field(sa_type=BigInteger)
    superseded_by_batch: int = Field(foreign_key="import_batches.id")
