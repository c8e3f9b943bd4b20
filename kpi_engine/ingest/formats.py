"""The canonical import formats: one declarative spec per kind of data.

Columns are parsed in declaration order, so a column may depend on one declared before it
(amounts on `currency`, naive times on the time zone of `shop_id`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table

from kpi_engine.instants import UTC, InstantError, parse_date, parse_instant, zone
from kpi_engine.models import AdSpend, FxRate, LiveSession, MetricValue, Order, Refund
from kpi_engine.money import MoneyError, is_currency, parse_minor
from kpi_engine.organisation import Organisation

ORDER_STATUSES = (
    "UNPAID",
    "ON_HOLD",
    "AWAITING_SHIPMENT",
    "PARTIALLY_SHIPPING",
    "AWAITING_COLLECTION",
    "IN_TRANSIT",
    "DELIVERED",
    "COMPLETED",
    "CANCELLED",
)
REFUND_STATUSES = ("REQUESTED", "APPROVED", "REJECTED", "COMPLETED", "CANCELLED")
CHANNELS = ("live", "video", "mall", "ads", "other")
SHOP_PLATFORMS = ("tiktok", "shopee", "lazada", "amazon")
ENTITY_TYPES = ("person", "team", "shop")
_TRUE = frozenset({"true", "1", "yes", "y"})
_FALSE = frozenset({"false", "0", "no", "n"})


class FieldError(ValueError):
    """A value that does not fit its column; the message says why."""


Parsed = dict[str, Any]
Parser = Callable[[str, Parsed, Organisation], Any]

# Parsers whose result depends only on the cell and on the earlier columns named, and which
# accept few values (a fixed list, the config's shops or people): an importer may remember
# each result it got (`importer._RowParser`) instead of parsing the same text again.
CACHEABLE: dict[Parser, tuple[str, ...]] = {}


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a format: its name, meaning, parser and whether it may be empty."""

    name: str
    parse: Parser
    doc: str
    required: bool = True
    default: Any = None
    column: str = ""  # the table column, when it is not `name`

    @property
    def stored_as(self) -> str:
        """The name of the table column that holds this value."""
        return self.column or self.name


RowCheck = Callable[[Parsed], list[tuple[str, str]]]


def _no_checks(_row: Parsed) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class ImportKind:
    """A kind of data: its columns, its natural key and, if any, the column that versions it."""

    name: str
    table: Table
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    version: str | None
    summary: str
    check: RowCheck = _no_checks
    column_index: Mapping[str, ColumnSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_index", {c.name: c for c in self.columns})

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the columns that must be present."""
        return tuple(c.name for c in self.columns if c.required)


# The longest id kept: platforms' order, refund, live, account and campaign ids are far shorter;
# a longer cell is something else pasted into the column.
MAX_ID = 128


def _id(value: str, _row: Parsed, _org: Organisation) -> str:
    if len(value) > MAX_ID:
        raise FieldError(f"is longer than {MAX_ID} characters: not an id")
    if not value.isprintable():
        raise FieldError("holds a line break, tab or other control character: not an id")
    return value


def _choice(options: tuple[str, ...], *, upper: bool = False) -> Parser:
    allowed = frozenset(options)

    def parse(value: str, _row: Parsed, _org: Organisation) -> str:
        candidate = value.upper() if upper else value.lower()
        if candidate not in allowed:
            raise FieldError(f"must be one of {', '.join(options)}")
        return candidate

    CACHEABLE[parse] = ()
    return parse


def _currency(value: str, _row: Parsed, _org: Organisation) -> str:
    code = value.upper()
    if not is_currency(code):
        raise FieldError("unknown currency (expected an ISO 4217 code such as USD)")
    return code


def _amount(value: str, row: Parsed, _org: Organisation) -> int:
    try:
        minor = parse_minor(value, row["currency"])
    except MoneyError as exc:
        raise FieldError(str(exc)) from None
    if minor < 0:  # prices, refunds and spend: a reversal is a refund row, not a negative sale
        raise FieldError("is negative: amounts are 0 or more")
    return minor


def _shop_zone(row: Parsed, org: Organisation) -> ZoneInfo:
    return zone(org.shops[row["shop_id"]].timezone)


def _instant(value: str, row: Parsed, org: Organisation) -> int:
    try:
        # Epoch seconds need no zone: skip the shop lookup on the common TikTok form.
        return parse_instant(value, UTC if value.isdigit() else _shop_zone(row, org))
    except InstantError as exc:
        raise FieldError(str(exc)) from None


def is_time(spec: ColumnSpec) -> bool:
    """Does the column hold an instant (which may not lie in the future)?"""
    return spec.parse is _instant


def is_amount(spec: ColumnSpec) -> bool:
    """Does the column hold an amount of money in the row's `currency` (0 or more)?"""
    return spec.parse is _amount


def _date(value: str, _row: Parsed, _org: Organisation) -> Any:
    try:
        return parse_date(value)
    except InstantError as exc:
        raise FieldError(str(exc)) from None


def _count(value: str, _row: Parsed, _org: Organisation) -> int:
    if not value.isdigit():
        raise FieldError("must be a whole number ≥ 0")
    return int(value)


def _decimal_text(*, positive: bool = False) -> Parser:
    def parse(value: str, _row: Parsed, _org: Organisation) -> str:
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise FieldError("must be a decimal number") from None
        if not number.is_finite() or (positive and number <= 0):
            raise FieldError("must be a positive decimal number" if positive else "must be finite")
        return str(number)

    return parse


def _seconds_as_ms(value: str, _row: Parsed, _org: Organisation) -> int:
    try:
        seconds = Decimal(value)
    except InvalidOperation:
        raise FieldError("must be a number of seconds") from None
    if not seconds.is_finite() or seconds < 0:
        raise FieldError("must be a number of seconds ≥ 0")
    return int((seconds * 1000).to_integral_value())


def _flag(value: str, _row: Parsed, _org: Organisation) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise FieldError("must be true or false")


def _shop(value: str, row: Parsed, org: Organisation) -> str:
    shop = org.shops.get(value)
    if shop is None:
        raise FieldError("unknown shop (add it to the shops section of the config)")
    platform = row.get("platform")
    if platform is not None and shop.platform != platform:
        raise FieldError(f"shop {value} is a {shop.platform} shop, not {platform}")
    return value


def _person(value: str, _row: Parsed, org: Organisation) -> str:
    if value not in org.people:
        raise FieldError("unknown person id (add them to the people section of the config)")
    return value


def _people(value: str, row: Parsed, org: Organisation) -> str:
    ids = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    if not ids:
        raise FieldError("needs at least one person id")
    for person_id in ids:
        if person_id not in org.people:
            raise FieldError(f"unknown person id {person_id!r}")
    return ",".join(ids)


def _entity(value: str, row: Parsed, org: Organisation) -> str:
    known = {"person": org.people, "team": org.teams, "shop": org.shops}[row["entity_type"]]
    if value not in known:
        raise FieldError(f"unknown {row['entity_type']} id")
    return value


def _metric_key(value: str, _row: Parsed, _org: Organisation) -> str:
    if not value.replace("_", "").isalnum() or not value.islower():
        raise FieldError("metric keys are lower_snake_case, such as on_time_delivery_rate")
    return value


CACHEABLE.update(
    {_currency: (), _flag: (), _shop: ("platform",), _person: (), _entity: ("entity_type",)}
)


def _col(
    name: str,
    parse: Parser,
    doc: str,
    *,
    required: bool = True,
    default: Any = None,
    column: str = "",
) -> ColumnSpec:
    return ColumnSpec(name, parse, doc, required, default, column)


_PAID_STATUSES = frozenset(ORDER_STATUSES) - {"UNPAID", "CANCELLED"}


def _check_order(row: Parsed) -> list[tuple[str, str]]:
    problems = []
    status, paid, created = row.get("status"), row.get("paid_time"), row.get("create_time")
    if status in _PAID_STATUSES and paid is None:
        problems.append(("paid_time", f"a {status} order must have a paid_time"))
    if status == "UNPAID" and paid is not None:
        problems.append(("paid_time", "an UNPAID order cannot have a paid_time"))
    if paid is not None and created is not None and paid < created:
        problems.append(("paid_time", "paid before it was created"))
    return problems


def _check_live(row: Parsed) -> list[tuple[str, str]]:
    start, end = row.get("start_time"), row.get("end_time")
    if start is not None and end is not None and end < start:
        return [("end_time", "the live ends before it starts")]
    return []


_PLATFORM = _col("platform", _choice(SHOP_PLATFORMS), "tiktok, shopee, lazada or amazon")
_SHOP = _col("shop_id", _shop, "a shop id from the config; its time zone reads naive times")
_CURRENCY = _col("currency", _currency, "ISO 4217 code of the amounts in this row")

ORDERS = ImportKind(
    name="orders",
    table=Order.__table__,  # type: ignore[attr-defined]
    summary="one row per order, its latest state",
    key=("platform", "shop_id", "order_id"),
    version="update_time",
    check=_check_order,
    columns=(
        _PLATFORM,
        _SHOP,
        _col("order_id", _id, "the platform's order id"),
        _col("status", _choice(ORDER_STATUSES, upper=True), "TikTok Shop order status"),
        _CURRENCY,
        _col("create_time", _instant, "when the order was placed"),
        _col("paid_time", _instant, "when it was paid; empty while unpaid", required=False),
        _col("update_time", _instant, "last change on the platform; a newer one revises the row"),
        _col("sub_total", _amount, "item price after seller and platform discounts"),
        _col("total_amount", _amount, "sub_total + shipping + taxes: what the buyer paid"),
        _col("attributed_to", _person, "person credited with the order", required=False),
        _col("channel", _choice(CHANNELS), "live, video, mall, ads or other", required=False),
        _col("live_session_id", _id, "the live session it came from", required=False),
        _col("is_sample", _flag, "true for free sample orders", required=False, default=False),
    ),
)

REFUNDS = ImportKind(
    name="refunds",
    table=Refund.__table__,  # type: ignore[attr-defined]
    summary="one row per refund or return",
    key=("platform", "shop_id", "refund_id"),
    version="update_time",
    columns=(
        _PLATFORM,
        _SHOP,
        _col("refund_id", _id, "the platform's return/refund id"),
        _col("order_id", _id, "the order it refunds"),
        _col("status", _choice(REFUND_STATUSES, upper=True), "REQUESTED … COMPLETED"),
        _CURRENCY,
        _col("create_time", _instant, "when the refund was requested"),
        _col("update_time", _instant, "last change; a newer one revises the row"),
        _col("refund_amount", _amount, "refund_total: the amount returned to the buyer"),
    ),
)

LIVE_SESSIONS = ImportKind(
    name="live_sessions",
    table=LiveSession.__table__,  # type: ignore[attr-defined]
    summary="one row per live-stream session",
    key=("platform", "shop_id", "session_id"),
    version=None,
    check=_check_live,
    columns=(
        _PLATFORM,
        _SHOP,
        _col("session_id", _id, "the platform's live id"),
        _col("hosts", _people, "host person id(s), comma-separated"),
        _col("start_time", _instant, "when the live started"),
        _col("end_time", _instant, "when it ended"),
        _col("views", _count, "views", required=False, default=0),
        _col("viewers", _count, "unique viewers", required=False, default=0),
        _col(
            "avg_viewing_seconds",
            _seconds_as_ms,
            "average viewing duration in seconds",
            required=False,
            default=0,
            column="avg_viewing_ms",
        ),
        _col("product_impressions", _count, "product impressions", required=False, default=0),
        _col("product_clicks", _count, "product clicks", required=False, default=0),
        _col("comments", _count, "comments", required=False, default=0),
        _col("likes", _count, "likes", required=False, default=0),
        _col("new_followers", _count, "new followers", required=False, default=0),
        _col(
            "shares",
            _count,
            "times viewers shared the live",
            required=False,
            default=0,
            column="social_shares",
        ),
    ),
)

AD_SPEND = ImportKind(
    name="ad_spend",
    table=AdSpend.__table__,  # type: ignore[attr-defined]
    summary="one row per campaign per day",
    key=("platform", "account", "campaign", "date"),
    version=None,
    columns=(
        _PLATFORM,
        _col("account", _id, "advertiser account id"),
        _col("campaign", _id, "campaign id"),
        _col("date", _date, "the day, YYYY-MM-DD, in the ad account's time zone"),
        _col("person_id", _person, "the ad buyer responsible", required=False),
        _CURRENCY,
        _col("spend", _amount, "spend that day"),
        _col("impressions", _count, "impressions", required=False, default=0),
        _col("clicks", _count, "clicks", required=False, default=0),
        _col("conversions", _count, "conversions (purchases)", required=False, default=0),
        _col(
            "attributed_revenue",
            _amount,
            "revenue the platform attributes to the campaign",
            required=False,
            default=0,
        ),
    ),
)

FX_RATES = ImportKind(
    name="fx_rates",
    table=FxRate.__table__,  # type: ignore[attr-defined]
    summary="one row per currency pair per day",
    key=("currency", "quote", "date"),
    version=None,
    columns=(
        _col("date", _date, "the day the rate applies to, YYYY-MM-DD"),
        _CURRENCY,
        _col("quote", _currency, "the reporting currency the rate converts to"),
        _col("rate", _decimal_text(positive=True), "units of quote per unit of currency, exact"),
    ),
)

METRIC_VALUES = ImportKind(
    name="metric_values",
    table=MetricValue.__table__,  # type: ignore[attr-defined]
    summary="one row per metric per entity per day (values an ERP provides)",
    key=("metric", "entity_type", "entity_id", "date"),
    version=None,
    columns=(
        _col("metric", _metric_key, "metric key, lower_snake_case"),
        _col("entity_type", _choice(ENTITY_TYPES), "person, team or shop"),
        _col("entity_id", _entity, "the person, team or shop id"),
        _col("date", _date, "the day, YYYY-MM-DD"),
        _col("value", _decimal_text(), "the value, as an exact decimal"),
    ),
)

KINDS: dict[str, ImportKind] = {
    kind.name: kind for kind in (ORDERS, REFUNDS, LIVE_SESSIONS, AD_SPEND, FX_RATES, METRIC_VALUES)
}
