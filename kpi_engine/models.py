"""Storage tables. Instants are integer Unix seconds (UTC); money is integer minor units.

Every imported table carries the same bookkeeping: the import batch that last wrote the row,
its revision number and the raw source row. Superseded versions move to `record_history`, so
a revision never loses data.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint, text
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
    __table_args__ = (
        UniqueConstraint("platform", "shop_id", "order_id"),
        # Time-range reads per shop: the rollup refresh and raw figures.
        Index(None, "shop_id", "paid_time"),
        Index(None, "shop_id", "create_time"),
    )

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
    __table_args__ = (
        UniqueConstraint("platform", "shop_id", "refund_id"),
        Index(None, "shop_id", "update_time"),
        Index(None, "platform", "shop_id", "order_id"),  # an order's refunds
    )

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
    __table_args__ = (
        UniqueConstraint("platform", "shop_id", "session_id"),
        Index(None, "platform", "shop_id", "start_time"),
    )

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
    # Times viewers shared the live (the import's `shares`); not the hosts' `shares` of credit.
    social_shares: int = Field(default=0, sa_type=BigInteger)


class AdSpend(Imported, table=True):
    """Daily spend and results of one ad campaign."""

    __tablename__ = "ad_spend"
    __table_args__ = (
        UniqueConstraint("platform", "account", "campaign", "date"),
        Index(None, "person_id", "date"),
    )

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


# -- rollups (kpi_engine/rollups.py): derived data, rebuilt from the tables above ------------


class Rollup(SQLModel, table=True):
    """Daily sums of one axis's measures for an owner and shop, kept in one time zone.

    `day` is the local date in `zone` and `fx_day` the shop's local date (the FX date), both
    as days since 1970-01-01; `owner` is a person id, or "" for the shop's own total; `shares`
    is how many people the rows' orders (or sessions) are credited to (1 for shop totals).
    What `v0`…`v5` hold depends on `axis` (see `kpi_engine.measure_sql.axes`).
    """

    __tablename__ = "rollups"

    zone: str = Field(primary_key=True)
    axis: str = Field(primary_key=True)
    owner: str = Field(primary_key=True)
    shop_id: str = Field(primary_key=True)
    day: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    fx_day: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    currency: str = Field(primary_key=True)
    shares: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    v0: int = Field(default=0, sa_type=BigInteger)
    v1: int = Field(default=0, sa_type=BigInteger)
    v2: int = Field(default=0, sa_type=BigInteger)
    v3: int = Field(default=0, sa_type=BigInteger)
    v4: int = Field(default=0, sa_type=BigInteger)
    v5: int = Field(default=0, sa_type=BigInteger)


class RollupDirty(SQLModel, table=True):
    """Hours [first_hour, end_hour) of a shop whose rollups an import made stale.

    With `credit`, orders created in those hours may be credited to other people now, so
    their paid hours and their refunds' hours are stale too. With `order_id` (and no hours),
    the paid hour of that order is stale (one of its refunds changed).
    """

    __tablename__ = "rollup_dirty"

    id: int | None = Field(default=None, primary_key=True)
    shop_id: str
    first_hour: int = Field(sa_type=BigInteger)
    end_hour: int = Field(sa_type=BigInteger)
    credit: bool = False
    order_id: str | None = None


class RollupState(SQLModel, table=True):
    """The configuration the rollups were built for (a fingerprint), and when."""

    __tablename__ = "rollup_state"

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str
    built_at: int = Field(sa_type=BigInteger)


class RollupZone(SQLModel, table=True):
    """The time zones in which a person's (or a shop's) rollups are kept."""

    __tablename__ = "rollup_zones"

    kind: str = Field(primary_key=True)  # "person" or "shop"
    id: str = Field(primary_key=True)
    zone: str = Field(primary_key=True)


class RollupCreditWindow(SQLModel, table=True):
    """When a fallback-role person is credited with a shop's orders no live session covers."""

    __tablename__ = "rollup_credit_windows"

    id: int | None = Field(default=None, primary_key=True)
    person: str
    shop_id: str = Field(index=True)
    start_time: int = Field(sa_type=BigInteger)
    end_time: int = Field(sa_type=BigInteger)


class LiveHost(SQLModel, table=True):
    """One host of one live session: `live_sessions.hosts` split, for joins."""

    __tablename__ = "live_hosts"
    __table_args__ = (Index(None, "platform", "shop_id", "start_time"),)

    session: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    person: str = Field(primary_key=True)
    platform: str
    shop_id: str
    start_time: int = Field(sa_type=BigInteger)
    end_time: int = Field(sa_type=BigInteger)
    shares: int = 1  # the session's number of hosts


# -- conversation ----------------------------------------------------------------------------


class InboundEvent(SQLModel, table=True):
    """A chat delivery the bot has accepted: its unique key stops duplicate deliveries, and it
    holds what was said (`payload`, a message or a click as JSON) until it is answered —
    `state` "pending", then "done" (payload cleared). A worker answering it holds a lease
    (`lease_until`, epoch seconds); when the lease runs out another worker takes it over."""

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("platform", "workspace", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    workspace: str
    event_id: str
    sender: str
    channel: str
    received_at: int = Field(sa_type=BigInteger)
    kind: str = Field(default="message", sa_column_kwargs={"server_default": "message"})
    payload: str | None = Field(default=None, sa_type=Text)
    state: str = Field(default="done", index=True, sa_column_kwargs={"server_default": "done"})
    lease_until: float | None = None
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    done_at: int | None = Field(default=None, sa_type=BigInteger)


class Annotation(SQLModel, table=True):
    """A dated note on an entity's numbers ("TikTok algorithm change", "11.11")."""

    __tablename__ = "annotations"
    __table_args__ = (Index(None, "entity", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    entity: str  # "company", "team:<id>", "shop:<id>" or "person:<id>"
    day: dt.date
    text: str = Field(sa_type=Text)
    author: str  # person id
    created_at: int = Field(sa_type=BigInteger)


class RollupCredit(SQLModel, table=True):
    """Scratch for a rollup refresh: who is credited with each order it recomputes."""

    __tablename__ = "rollup_credits"

    order_pk: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    person: str = Field(primary_key=True)
    shares: int = 1  # how many people the order is credited to


class OutboxMessage(SQLModel, table=True):
    """A message on its way out: written before it is sent, so nothing is lost in a crash.

    `state`: pending (due at `due_at`), sending (claimed until `lease_until`), sent, dead (a
    permanent failure, `error` says why) or dropped (by an admin). A `sending` row whose lease
    ran out was claimed by a process that died: it is due again.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index(None, "state", "due_at"), Index(None, "edits"))

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)  # idempotency key: one message per key, ever
    kind: str  # reply, digest, alert, notice, revision, edit
    platform: str
    workspace: str
    channel: str
    user: str | None = None
    thread: str | None = None
    private: bool = False
    payload: str = Field(sa_type=Text)  # the Reply as JSON
    state: str = "pending"
    attempts: int = 0
    due_at: float = 0.0  # epoch seconds
    lease_until: float | None = None
    error: str | None = Field(default=None, sa_type=Text)
    message_id: str | None = None  # the platform's id of the sent message
    created_at: int = Field(sa_type=BigInteger)
    sent_at: int | None = Field(default=None, sa_type=BigInteger)
    # An edit replaces the message sent under this key (kind "edit"); a thread message goes
    # in the thread of the message sent under `thread_of` (once that one is sent).
    edits: str | None = None
    thread_of: str | None = None


class ScheduledRun(SQLModel, table=True):
    """One firing of a scheduled job: the unique (job, scheduled_for) makes it happen once."""

    __tablename__ = "scheduled_runs"
    __table_args__ = (UniqueConstraint("job", "scheduled_for"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str
    scheduled_for: int = Field(sa_type=BigInteger)  # the nominal firing, epoch seconds
    state: str  # running, done, failed, skipped
    started_at: int = Field(sa_type=BigInteger)
    finished_at: int | None = Field(default=None, sa_type=BigInteger)
    delayed: bool = False
    detail: str | None = Field(default=None, sa_type=Text)


class PostedFigure(SQLModel, table=True):
    """A number the bot posted (a digest, a chat answer), kept to notice when it is later
    revised."""

    __tablename__ = "posted_figures"
    __table_args__ = (Index(None, "posted_at"),)

    id: int | None = Field(default=None, primary_key=True)
    outbox_key: str  # the message it appeared in
    scope: str  # "company", "team:<id>", "shop:<id>" or "person:<id>"
    metric: str
    first_day: dt.date
    last_day: dt.date
    timezone: str
    value: str | None  # exact decimal as text; None for "no value"
    posted_at: int = Field(sa_type=BigInteger)
    currency: str | None = None  # money shown converted into this currency (else the scope's)
    revised_value: str | None = None  # the value of the last revision notice
    revised_at: int | None = Field(default=None, sa_type=BigInteger)


class Alert(SQLModel, table=True):
    """An alert: a rule breached for a scope in a period.

    `state`: firing, acknowledged, snoozed (until `snoozed_until`), resolved. At most one alert
    that is not resolved exists per (rule, scope, period_key) (a partial unique index); after it
    resolves, a new breach in the same period opens a new one (re-arm). Every change is a
    conditional update on `version`, so concurrent acknowledgement, auto-resolve and escalation
    leave one consistent state, and each is recorded in `alert_events`.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "uq_alerts_open",
            "rule",
            "scope",
            "period_key",
            unique=True,
            sqlite_where=text("state <> 'resolved'"),
            postgresql_where=text("state <> 'resolved'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    rule: str
    scope: str  # "person:li.na", "team:sz-live"
    period_key: str  # "2026-11-24" (a day), "2026-W48", "2026-11"
    metric: str
    state: str = "firing"
    version: int = 1
    value: str | None = None  # the figure when it fired (Decimal as text)
    threshold: str | None = None  # what it was compared with
    target: str | None = None
    currency: str | None = None
    reason: str  # a condition code: below_pace, below, above, change, stale
    provisional: bool = False
    level: int = 0  # escalation level: 0 owner, 1 their manager, 2 the next one…
    notified: int = 0  # notifications sent (first one and repeats)
    last_notified_at: int | None = Field(default=None, sa_type=BigInteger)
    opened_at: int = Field(sa_type=BigInteger)
    updated_at: int = Field(sa_type=BigInteger)
    acked_by: str | None = None
    acked_at: int | None = Field(default=None, sa_type=BigInteger)
    note: str | None = Field(default=None, sa_type=Text)
    snoozed_until: int | None = Field(default=None, sa_type=BigInteger)
    resolved_at: int | None = Field(default=None, sa_type=BigInteger)
    resolved_by: str | None = None
    false_alarm: bool = False


class AlertEvent(SQLModel, table=True):
    """The append-only audit trail of alerts: fired, notified, acknowledged, snoozed,
    escalated, resolved, false alarm, refused."""

    __tablename__ = "alert_events"
    __table_args__ = (Index(None, "alert_id"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int
    at: int = Field(sa_type=BigInteger)
    actor: str  # a person id, or "kpibot"
    kind: str
    detail: str | None = Field(default=None, sa_type=Text)


class AlertStreak(SQLModel, table=True):
    """Consecutive evaluations in which a rule's condition held for a scope (noise control)."""

    __tablename__ = "alert_streaks"

    rule: str = Field(primary_key=True)
    scope: str = Field(primary_key=True)
    period_key: str
    count: int = 0
    updated_at: int = Field(sa_type=BigInteger)


class AlertPost(SQLModel, table=True):
    """A message that shows an alert's card (by its outbox key), for updating it in place."""

    __tablename__ = "alert_posts"
    __table_args__ = (Index(None, "alert_id"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int
    outbox_key: str = Field(unique=True)
    created_at: int = Field(sa_type=BigInteger)


class Appeal(SQLModel, table=True):
    """A disputed figure: what was reported (a snapshot), what the appellant claims, and why.

    `state`: open → in_review → accepted / rejected, or withdrawn. Changes are conditional
    updates on `version`, each recorded in `appeal_events`.
    """

    __tablename__ = "appeals"

    id: int | None = Field(default=None, primary_key=True)
    appellant: str  # person id
    metric: str
    scope: str
    first_day: dt.date
    last_day: dt.date
    timezone: str
    reported_value: str | None = None
    reported_as_of: int | None = Field(default=None, sa_type=BigInteger)
    currency: str | None = None
    claimed_value: str
    reason: str = Field(default="", sa_type=Text)
    evidence: str = Field(default="[]", sa_type=Text)  # JSON list: order ids, links
    state: str = "open"
    version: int = 1
    reviewer: str  # person id
    escalated_to: str | None = None
    platform: str
    workspace: str = ""
    channel: str = ""
    thread: str | None = None  # the platform id of the thread's first message
    created_at: int = Field(sa_type=BigInteger)
    due_at: int = Field(sa_type=BigInteger)
    reminded_at: int | None = Field(default=None, sa_type=BigInteger)
    decided_at: int | None = Field(default=None, sa_type=BigInteger)
    decided_by: str | None = None
    decision_note: str | None = Field(default=None, sa_type=Text)


class AppealEvent(SQLModel, table=True):
    """The append-only audit trail of appeals."""

    __tablename__ = "appeal_events"
    __table_args__ = (Index(None, "appeal_id"),)

    id: int | None = Field(default=None, primary_key=True)
    appeal_id: int
    at: int = Field(sa_type=BigInteger)
    actor: str
    kind: str  # opened, in_review, accepted, rejected, withdrawn, reminded, escalated
    detail: str | None = Field(default=None, sa_type=Text)


class Correction(SQLModel, table=True):
    """An accepted appeal's correction of a figure: the claimed value of `metric` for `scope`
    over `first_day`..`day` (local dates in `timezone`), against the value reported then.

    It adds the claimed value less the raw figure of that period, until the raw data reaches
    (or passes) the claimed value: it never counts twice (docs/metrics.md, "Corrections").
    Rows from before that rule have no `claimed` and add their fixed `delta`.
    """

    __tablename__ = "corrections"
    __table_args__ = (Index(None, "metric", "scope", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    appeal_id: int | None = None
    metric: str
    scope: str
    day: dt.date  # the last day of the appealed period
    delta: str  # Decimal as text, in `currency` for money: the difference when accepted
    currency: str | None = None
    created_by: str
    created_at: int = Field(sa_type=BigInteger)
    reason: str = Field(default="", sa_type=Text)
    first_day: dt.date | None = None
    timezone: str | None = None
    claimed: str | None = None  # Decimal as text
    reported: str | None = None  # Decimal as text; None: no value was reported


class AuditLog(SQLModel, table=True):
    """The append-only audit trail of what has no trail of its own: admins' actions on the
    outbox, configuration and target changes, re-scores, API key use, refused attempts.
    (Alerts, appeals and corrections keep their own trails; `kpi_engine.audit` reads all.)"""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "at"), Index(None, "kind", "subject"))

    id: int | None = Field(default=None, primary_key=True)
    at: int = Field(sa_type=BigInteger)
    kind: str  # outbox, config, target, score, apikey, access, …
    subject: str  # the id of what it is about, within its kind
    actor: str  # a person id, "kpibot", or "cli"
    action: str
    person: str | None = None  # the person it concerns, when one does
    detail: str | None = Field(default=None, sa_type=Text)


class ConfigSnapshot(SQLModel, table=True):
    """A version of the configuration scores depend on (plans, targets, scorecards), stored
    whenever a process starts with a configuration that differs from the latest one."""

    __tablename__ = "config_versions"
    __table_args__ = (Index(None, "recorded_at"),)

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str  # SHA-256 of `content`
    content: str = Field(sa_type=Text)  # canonical JSON
    recorded_at: int = Field(sa_type=BigInteger)
    recorded_by: str


class PeriodConfig(SQLModel, table=True):
    """The configuration version a closed month is judged by: bound once when the month has
    ended, changed only by an explicit re-score (both recorded in `config_events`)."""

    __tablename__ = "period_configs"

    month: str = Field(primary_key=True)  # "2026-11"
    version_id: int
    bound_at: int = Field(sa_type=BigInteger)
    bound_by: str


class ConfigEvent(SQLModel, table=True):
    """The append-only audit trail of configuration: versions recorded, months closed on a
    version, re-scores (with the scores before and after)."""

    __tablename__ = "config_events"
    __table_args__ = (Index(None, "at"), Index(None, "kind", "subject"))

    id: int | None = Field(default=None, primary_key=True)
    at: int = Field(sa_type=BigInteger)
    actor: str  # a person id, or "kpibot"
    kind: str  # config_recorded, month_closed, rescored
    subject: str  # "config", "month:2026-11"
    before: str | None = Field(default=None, sa_type=Text)  # JSON
    after: str | None = Field(default=None, sa_type=Text)  # JSON
    reason: str = Field(default="", sa_type=Text)


class ShopConnection(SQLModel, table=True):
    """A shop's authorization on its platform: tokens (encrypted), state and sync settings.

    `state`: pending (an authorization URL was handed out), active, or revoked (the platform
    refused the tokens; an admin must connect again). `token_version` grows with every write
    of the tokens, so a rotated refresh token is written once, by one process.
    """

    __tablename__ = "shop_connections"

    shop_id: str = Field(primary_key=True)
    platform: str
    state: str = "pending"
    oauth_state: str | None = Field(default=None, unique=True)  # the pending `state` nonce
    oauth_expires: int | None = Field(default=None, sa_type=BigInteger)
    tokens: str | None = Field(default=None, sa_type=Text)  # encrypted JSON
    token_version: int = 0
    refreshing_until: int | None = Field(default=None, sa_type=BigInteger)
    detail: str = Field(default="{}", sa_type=Text)  # platform ids: cipher, seller, marketplace
    every_minutes: int = 10
    created_at: int = Field(sa_type=BigInteger)
    updated_at: int = Field(sa_type=BigInteger)
    revoked_reason: str | None = Field(default=None, sa_type=Text)


class SyncCursor(SQLModel, table=True):
    """Where a shop's sync of one source stands: everything updated before `high_water` is in;
    a window in progress resumes at `page_token`."""

    __tablename__ = "sync_cursors"

    shop_id: str = Field(primary_key=True)
    source: str = Field(primary_key=True)  # orders, refunds
    high_water: int | None = Field(default=None, sa_type=BigInteger)
    window_start: int | None = Field(default=None, sa_type=BigInteger)
    window_end: int | None = Field(default=None, sa_type=BigInteger)
    page_token: str | None = Field(default=None, sa_type=Text)
    pages: int = 0
    rows: int = 0
    last_success: int | None = Field(default=None, sa_type=BigInteger)
    last_attempt: int | None = Field(default=None, sa_type=BigInteger)
    last_error: str | None = Field(default=None, sa_type=Text)
    errors: int = 0  # failures in a row
    due_at: int = Field(default=0, sa_type=BigInteger)
    lease_owner: str | None = None
    lease_until: int | None = Field(default=None, sa_type=BigInteger)


class SyncRun(SQLModel, table=True):
    """One sync of a shop's source: when, how many pages and rows, and how it ended."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index(None, "shop_id", "source", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: str
    source: str
    started_at: int = Field(sa_type=BigInteger)
    finished_at: int | None = Field(default=None, sa_type=BigInteger)
    state: str = "running"  # running, done, failed, revoked
    pages: int = 0
    rows: int = 0
    inserted: int = 0
    revised: int = 0
    error: str | None = Field(default=None, sa_type=Text)


class DashboardLink(SQLModel, table=True):
    """A redeemed one-time dashboard link: its nonce is the key, so a second redemption (a
    replayed or forwarded link) fails on the unique key."""

    __tablename__ = "dashboard_links"

    nonce: str = Field(primary_key=True)
    person: str
    expires_at: int = Field(sa_type=BigInteger)
    used_at: int = Field(sa_type=BigInteger)
    client: str | None = None  # the address that redeemed it


class DashboardSession(SQLModel, table=True):
    """A dashboard session opened by a link: the cookie holds a random id, stored here only as
    its SHA-256; the CSRF token of the session's forms; expiry and logout."""

    __tablename__ = "dashboard_sessions"
    __table_args__ = (Index(None, "person"),)

    id_hash: str = Field(primary_key=True)
    person: str
    csrf: str
    created_at: int = Field(sa_type=BigInteger)
    expires_at: int = Field(sa_type=BigInteger)
    ended_at: int | None = Field(default=None, sa_type=BigInteger)  # logged out


class ApiKey(SQLModel, table=True):
    """An API key: its name, scopes and the SHA-256 of its secret (the secret itself is shown
    once, when it is created). A revoked key stays, for the audit trail."""

    __tablename__ = "api_keys"
    __table_args__ = (Index(None, "key_id", unique=True), Index(None, "name"))

    id: int | None = Field(default=None, primary_key=True)
    key_id: str  # the public part of the key, which finds its row
    name: str
    secret_hash: str
    scopes: str  # comma-separated
    created_at: int = Field(sa_type=BigInteger)
    created_by: str
    last_used_at: int | None = Field(default=None, sa_type=BigInteger)
    revoked_at: int | None = Field(default=None, sa_type=BigInteger)
