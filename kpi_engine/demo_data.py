"""Seeded demo data: an organisation's orders, refunds, lives, ads, FX rates and metrics as CSV."""

from __future__ import annotations

import csv
from bisect import bisect_right
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from random import Random
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml

from kpi_engine.ingest.formats import KINDS
from kpi_engine.instants import day_bounds, local_date, zone
from kpi_engine.money import minor_exponent, parse_minor
from kpi_engine.organisation import AssignmentConfig, Organisation, ShopConfig

Scale = Literal["small", "large"]

# File labels that are not import kind names, and the kind each is imported as.
FILE_KINDS = {"order_revisions": "orders"}

# (label, file name) in the order the files must be imported.
_FILES = (
    ("fx_rates", "fx_rates.csv"),
    ("live_sessions", "live_sessions.csv"),
    ("orders", "orders.csv"),
    ("order_revisions", "orders_revisions.csv"),
    ("refunds", "refunds.csv"),
    ("ad_spend", "ad_spend.csv"),
    ("metric_values", "metric_values.csv"),
)
# The positional layout of the rows written below; generate() checks it against KINDS.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "fx_rates": ("date", "currency", "quote", "rate"),
    "live_sessions": (
        "platform",
        "shop_id",
        "session_id",
        "hosts",
        "start_time",
        "end_time",
        "views",
        "viewers",
        "avg_viewing_seconds",
        "product_impressions",
        "product_clicks",
        "comments",
        "likes",
        "new_followers",
        "shares",
    ),
    "orders": (
        "platform",
        "shop_id",
        "order_id",
        "status",
        "currency",
        "create_time",
        "paid_time",
        "update_time",
        "sub_total",
        "total_amount",
        "attributed_to",
        "channel",
        "live_session_id",
        "is_sample",
    ),
    "refunds": (
        "platform",
        "shop_id",
        "refund_id",
        "order_id",
        "status",
        "currency",
        "create_time",
        "update_time",
        "refund_amount",
    ),
    "ad_spend": (
        "platform",
        "account",
        "campaign",
        "date",
        "person_id",
        "currency",
        "spend",
        "impressions",
        "clicks",
        "conversions",
        "attributed_revenue",
    ),
    "metric_values": ("metric", "entity_type", "entity_id", "date", "value"),
}

_ORDERS_PER_DAY: dict[str, int] = {"small": 1_000, "large": 27_400}
# Spread of shop sizes (log-normal sigma): a large organisation has a long tail of small shops.
_SIZE_SPREAD: dict[str, float] = {"small": 0.0, "large": 1.0}
_REGION_WEIGHT = {"US": 3.0, "GB": 1.5}

# Orders per local hour 0..23, peaking in the evening.
_HOUR_WEIGHTS: tuple[int, ...] = (
    30, 18, 10, 6, 4, 4, 6, 12, 20, 28, 34, 38, 42, 40, 38, 38, 42, 50, 62, 80, 92, 96, 88, 58,
)  # fmt: skip
_WEEKDAY_FACTOR = (0.93, 0.91, 0.95, 0.97, 1.03, 1.13, 1.08)  # Monday..Sunday, mean 1
_PROMO_DAYS = ((11, 11), (12, 12))

_DAY = 86_400
_P_NEVER_PAID = 0.025
_P_CANCEL_PAID = 0.015
_P_REVISION = 0.05
_P_REFUND = 0.05
_P_SAMPLE = 0.005
_P_CREDITED = 0.03
_P_LIVE_IN_WINDOW = 0.85
_UNPAID_TIMEOUT = _DAY
_POOL_BITS = 9  # 512 precomputed amounts per shop
_CATALOGUE_SIZE = 48  # item prices per shop

_LIVE_SHARE = {"tiktok": 0.25, "shopee": 0.2, "lazada": 0.15, "amazon": 0.05}
# Channels of orders outside a live, in percent.
_CHANNEL_MIX: dict[str, tuple[tuple[str, int], ...]] = {
    "tiktok": (("video", 55), ("mall", 27), ("ads", 14), ("other", 4)),
    "shopee": (("mall", 68), ("ads", 20), ("video", 8), ("other", 4)),
    "lazada": (("mall", 68), ("ads", 20), ("video", 8), ("other", 4)),
    "amazon": (("mall", 80), ("ads", 18), ("other", 2)),
}
_AD_SHARE_BP = {"tiktok": 1500, "shopee": 1200, "lazada": 1200, "amazon": 2500}

# Per currency, in major units: item price range, shipping fee, free shipping from.
_PRICING: dict[str, tuple[str, str, str, str]] = {
    "USD": ("10", "80", "4.99", "35"),
    "GBP": ("8", "60", "2.99", "25"),
    "EUR": ("10", "75", "3.99", "30"),
    "JPY": ("1000", "9000", "410", "2000"),
    "SGD": ("12", "100", "3.99", "40"),
    "MYR": ("30", "260", "4.90", "80"),
    "THB": ("250", "2500", "40", "500"),
    "IDR": ("50000", "600000", "15000", "150000"),
    "VND": ("120000", "1500000", "30000", "300000"),
    "CNY": ("60", "500", "0", "0"),
}
_US_SALES_TAX_BP = (0, 0, 600, 725, 825, 875, 1025)

# US dollars per unit in 1e-12 USD, the centre of each currency's random walk.
_USD_PICO: dict[str, int] = {
    "USD": 1_000_000_000_000,
    "CNY": 138_900_000_000,
    "GBP": 1_270_000_000_000,
    "EUR": 1_080_000_000_000,
    "JPY": 6_670_000_000,
    "SGD": 745_000_000_000,
    "MYR": 213_000_000_000,
    "THB": 27_800_000_000,
    "IDR": 62_500_000,
    "VND": 39_400_000,
    "HKD": 128_000_000_000,
    "PHP": 17_500_000_000,
    "KRW": 720_000_000,
    "AUD": 655_000_000_000,
    "CAD": 730_000_000_000,
}

_LIFECYCLE: tuple[str, ...] = (
    "AWAITING_SHIPMENT",
    "AWAITING_COLLECTION",
    "IN_TRANSIT",
    "DELIVERED",
    "COMPLETED",
)
_PAID_THEN_CANCELLED: tuple[str, ...] = ("AWAITING_SHIPMENT", "CANCELLED")
_NEVER_PAID: tuple[str, ...] = ("UNPAID", "CANCELLED")


@dataclass(frozen=True)
class GeneratedData:
    """The CSV files written for one organisation, in import order, with their row counts."""

    config_dir: Path
    files: dict[str, Path]
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class _Day:
    day: date
    text: str
    start: int
    end: int
    hours: tuple[int, ...]  # epoch of each local hour's start, correct on DST days


class _Sink:
    def __init__(self, stack: ExitStack, path: Path, header: Sequence[str]) -> None:
        handle = stack.enter_context(
            path.open("w", encoding="utf-8", newline="", buffering=1 << 20)
        )
        self._handle = handle
        self._writer = csv.writer(handle, lineterminator="\n")
        self._writer.writerow(header)
        self.rows = 0

    def add(self, row: Sequence[Any]) -> None:
        self._writer.writerow(row)
        self.rows += 1

    def extend_lines(self, lines: list[str]) -> None:
        """Append rows already formatted as CSV lines (fields escaped with `_field`)."""
        self._handle.write("".join(lines))
        self.rows += len(lines)


def _field(text: str) -> str:
    """`text` as one CSV field, quoted as csv.writer would quote it."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


@dataclass
class _Context:
    organisation: Organisation
    dates: list[date]  # the range's dates where it ends (the latest local date anywhere)
    sinks: dict[str, _Sink]
    orders_per_day: int
    seed: int
    cutoff: int | None  # nothing happens at or after this instant (the data ends "now")

    def dates_in(self, tz: ZoneInfo) -> list[date]:
        """The range's local dates in `tz`: as many days, ending on the cutoff's local date."""
        if self.cutoff is None:
            return self.dates
        last = local_date(self.cutoff - 1, tz)
        return [last - timedelta(days=len(self.dates) - 1 - i) for i in range(len(self.dates))]

    def complete(self, day: _Day) -> bool:
        """True when the whole local day lies before the cutoff."""
        return self.cutoff is None or day.end <= self.cutoff


@dataclass
class _Pricing:
    pool: list[tuple[int, str, str]]  # (sub_total minor, sub_total text, total text)
    average: int
    zero: str


def generate(
    organisation: Organisation,
    config_dir: Path,
    out_dir: Path,
    *,
    scale: Scale = "small",
    days: int = 90,
    end: date | None = None,
    now: int | None = None,
    seed: int = 42,
) -> GeneratedData:
    """Write CSV files for `days` whole days ending on `end` (inclusive), or for the `days`
    local days up to the instant `now` — today partial, nothing at or after `now` (a live
    still running is exported as it stands: it ends at `now`) — into out_dir."""
    if days < 1:
        raise ValueError("days must be at least 1")
    if (end is None) == (now is None):
        raise ValueError("give either end (whole days) or now (data up to that instant)")
    if now is not None:  # the latest local date anywhere: the eastern-most zone's today
        zones = [zone(s.timezone) for s in organisation.shops.values()]
        zones += [zone(t.timezone) for t in organisation.teams.values()]
        end = max(local_date(now - 1, tz) for tz in zones)
    assert end is not None
    for kind, columns in _COLUMNS.items():
        expected = tuple(c.name for c in KINDS[kind].columns)
        if columns != expected:
            raise RuntimeError(f"demo data for {kind} is out of date with its import format")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {label: out_dir / name for label, name in _FILES}
    dates = [end - timedelta(days=days - 1 - i) for i in range(days)]
    with ExitStack() as stack:
        sinks = {
            label: _Sink(stack, path, _COLUMNS[FILE_KINDS.get(label, label)])
            for label, path in files.items()
        }
        context = _Context(organisation, dates, sinks, _ORDERS_PER_DAY[scale], seed, now)
        _write_fx(context)
        weights = _shop_weights(organisation, scale, seed)
        staff = _staff_by_shop(organisation)
        for index, shop in enumerate(organisation.shops.values()):
            _write_shop(context, shop, index, weights[shop.id], staff[shop.id])
        _write_person_metrics(context)
    counts = {label: sink.rows for label, sink in sinks.items()}
    return GeneratedData(config_dir=config_dir, files=files, counts=counts)


def _shop_weights(organisation: Organisation, scale: Scale, seed: int) -> dict[str, float]:
    rng = Random(f"{seed}/weights")
    raw = {
        shop.id: _REGION_WEIGHT.get(shop.region, 1.0) * rng.lognormvariate(0, _SIZE_SPREAD[scale])
        for shop in organisation.shops.values()
    }
    total = sum(raw.values()) or 1.0
    return {shop_id: weight / total for shop_id, weight in raw.items()}


def _money(minor: int, exponent: int) -> str:
    if exponent == 0:
        return str(minor)
    unit = 10**exponent
    return f"{minor // unit}.{minor % unit:0{exponent}d}"


def _ratio(ten_thousandths: int) -> str:
    return f"{ten_thousandths // 10_000}.{ten_thousandths % 10_000:04d}"


def _write_fx(context: _Context) -> None:
    rng = Random(f"{context.seed}/fx")
    org = context.organisation
    quotes = sorted({team.currency for team in org.teams.values()})
    bases = sorted({shop.currency for shop in org.shops.values()} | set(quotes))
    pairs = [(base, quote) for base in bases for quote in quotes if base != quote]
    centre = {c: _USD_PICO.get(c, _USD_PICO["USD"]) for c in bases}
    value = dict(centre)
    sink = context.sinks["fx_rates"]
    # One day beyond the range: an order paid just before local midnight in a western shop can
    # fall on the next day in an eastern one, and its amounts still need that day's rate.
    for day in [*context.dates, context.dates[-1] + timedelta(days=1)]:
        for currency in bases:
            if currency != "USD":  # the numeraire: other currencies move against it
                v = value[currency]
                v += v * rng.randint(-40, 40) // 10_000 + (centre[currency] - v) // 40
                value[currency] = v
        text = day.isoformat()
        for base, quote in pairs:
            rate = Decimal(value[base]) / Decimal(value[quote])
            places = max(4, 4 - rate.adjusted())
            sink.add((text, base, quote, str(rate.quantize(Decimal(1).scaleb(-places)))))


def _local_days(dates: list[date], tz: ZoneInfo) -> list[_Day]:
    result = []
    for day in dates:
        start, stop = day_bounds(day, tz)
        if stop - start == _DAY:
            hours = tuple(range(start, stop, 3600))
        else:  # a DST change: ask the zone for each local hour
            hours = tuple(
                int(datetime(day.year, day.month, day.day, h, tzinfo=tz).timestamp())
                for h in range(24)
            )
        result.append(_Day(day, day.isoformat(), start, stop, hours))
    return result


_Staff = list[tuple[str, str, AssignmentConfig]]  # (person id, role, assignment)


def _staff_by_shop(organisation: Organisation) -> dict[str, _Staff]:
    staff: dict[str, _Staff] = {shop_id: [] for shop_id in organisation.shops}
    for a in organisation.assignments:
        if a.shop in staff and a.person in organisation.people:
            staff[a.shop].append((a.person, organisation.people[a.person].role, a))
    if not any(role == "streamer" for found in staff.values() for _, role, _ in found):
        # Nobody is assigned to host anywhere (the templates assign operators only): the
        # team's streamers host its shops, from their hire date.
        for shop in organisation.shops.values():
            for person in organisation.people.values():
                if person.role == "streamer" and person.team == shop.team:
                    since = person.hired or date(2000, 1, 1)
                    hosting = AssignmentConfig.model_validate(
                        {"person": person.id, "shop": shop.id, "from": since}
                    )
                    staff[shop.id].append((person.id, person.role, hosting))
    return staff


def _on(staff: _Staff, day: date, roles: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for person, role, a in staff:
        active = a.valid_from <= day and (a.valid_to is None or day <= a.valid_to)
        if active and role in roles and person not in found:
            found.append(person)
    return found


def _pricing(rng: Random, currency: str, exponent: int, taxed: bool) -> _Pricing:
    """A pool of (sub_total, formatted sub_total, formatted total) drawn from a shop's catalogue."""
    default = _PRICING["JPY"] if exponent == 0 else _PRICING["USD"]
    low, high, fee, free_over = (parse_minor(t, currency) for t in _PRICING.get(currency, default))
    unit = 10**exponent
    low_major, high_major = low // unit, high // unit
    catalogue = []
    for _ in range(_CATALOGUE_SIZE):
        if low_major >= 100:  # big-unit currencies: prices such as 2,980 or 149,000
            step = 10 ** (len(str(low_major)) - 2)
            price = (rng.randint(low_major // step + 1, high_major // step) * step) * unit
            price -= rng.choice((0, 0, step // 5, step // 10)) * unit
        else:  # prices such as 19.99, 24.50 or 12.37
            cents = rng.choice((99, 99, 99, 95, 90, 50, 0, rng.randrange(unit)))
            price = rng.randrange(low_major, high_major) * unit + min(cents, unit - 1)
        catalogue.append(price)
    rnd = rng.random
    texts: dict[int, str] = {}
    pool: list[tuple[int, str, str]] = []
    for _ in range(1 << _POOL_BITS):
        price = catalogue[int(rnd() * _CATALOGUE_SIZE)]
        draw = rnd()
        quantity = 1 if draw < 0.78 else 2 if draw < 0.95 else 3
        sub = price * quantity if price * quantity <= high else price
        if rnd() < 0.3:  # a seller or platform discount of 5-30%
            sub = max(low, sub * (95 - int(rnd() * 26)) // 100)
        total = sub + (fee if sub < free_over else 0)
        if taxed:
            total += sub * _US_SALES_TAX_BP[int(rnd() * len(_US_SALES_TAX_BP))] // 10_000
        for amount in (sub, total):
            if amount not in texts:
                texts[amount] = _money(amount, exponent)
        pool.append((sub, texts[sub], texts[total]))
    average = sum(p[0] for p in pool) // len(pool)
    return _Pricing(pool, average, _money(0, exponent))


def _daily_counts(rng: Random, days: list[_Day], base: float) -> list[int]:
    counts = []
    for day in days:
        factor = _WEEKDAY_FACTOR[day.day.weekday()] * rng.uniform(0.85, 1.15)
        if (day.day.month, day.day.day) in _PROMO_DAYS:
            factor *= rng.uniform(3.0, 5.0)
        counts.append(round(base * factor))
    return counts


def _write_shop(
    context: _Context, shop: ShopConfig, index: int, weight: float, staff: _Staff
) -> None:
    rng = Random(f"{context.seed}/{shop.id}")
    tz = zone(shop.timezone)
    exponent = minor_exponent(shop.currency)
    days = _local_days(context.dates_in(tz), tz)
    counts = _daily_counts(rng, days, context.orders_per_day * weight)
    pricing = _pricing(rng, shop.currency, exponent, taxed=shop.region == "US")
    live_share = _LIVE_SHARE.get(shop.platform, 0.1)
    lives = _write_lives(context, shop, index, rng, days, counts, staff, live_share)
    export = days[-1].end if context.cutoff is None else min(days[-1].end, context.cutoff - 1)
    orders = _OrderWriter(context, shop, index, rng, pricing, exponent, export)
    sinks = context.sinks
    quality = rng.randint(9000, 9700)
    first = 0  # lives are in time order and never overlap: skip those that ended
    for day, count in zip(days, counts, strict=True):
        while first < len(lives) and lives[first][1] <= day.start:
            first += 1
        windows = []
        for start, stop, session_id in lives[first:]:
            if start >= day.end:
                break
            windows.append((max(start, day.start), min(stop, day.end), session_id))
        credit = _on(staff, day.day, ("streamer", "operator")) or _on(
            staff, day.day, ("streamer", "operator", "ad_buyer", "editor", "cs", "manager")
        )
        written = orders.write_day(day, count, windows, live_share if windows else 0.0, credit)
        _write_ads(context, shop, index, rng, day, written, pricing.average, staff)
        value = min(9900, max(8500, quality + rng.randint(-300, 300)))
        if context.complete(day):  # a day's rate is known once the day is over
            sinks["metric_values"].add(
                ("on_time_delivery_rate", "shop", shop.id, day.text, _ratio(value))
            )


def _local_epoch(day: _Day, minute: int) -> int:
    if minute < 24 * 60:
        return day.hours[minute // 60] + minute % 60 * 60
    return day.end + (minute - 24 * 60) * 60


def _write_lives(
    context: _Context,
    shop: ShopConfig,
    index: int,
    rng: Random,
    days: list[_Day],
    counts: list[int],
    staff: _Staff,
    live_share: float,
) -> list[tuple[int, int, str]]:
    """Schedule and write the shop's lives; return their (start, end, session id) windows."""
    sink = context.sinks["live_sessions"]
    tz = zone(shop.timezone)
    base_id = 7_300_000_000_000_000_000 + index * 10**9
    # Shares draw from their own sequence: the other figures stay what they were before them.
    sharing = Random(f"{context.seed}/{shop.id}/shares")
    windows: list[tuple[int, int, str]] = []
    for day, count in zip(days, counts, strict=True):
        streamers = _on(staff, day.day, ("streamer",))
        if not streamers:
            continue
        wanted = rng.choices((1, 2, 3), (45, 40, 15))[0]
        minute = 19 * 60 - (wanted - 1) * 150 + rng.randint(-30, 30)
        sessions: list[tuple[int, int]] = []
        for _ in range(wanted):
            if minute > 23 * 60 + 30:
                break
            duration = rng.randint(90, 240)
            start = _local_epoch(day, minute)
            sessions.append((start, start + duration * 60))
            minute += duration + rng.randint(10, 40)
        if context.cutoff is not None:  # not started yet: none; still running: as it stands
            sessions = [(s, min(e, context.cutoff)) for s, e in sessions if s < context.cutoff]
        live_orders = count * live_share
        total_seconds = sum(stop - start for start, stop in sessions)
        for start, stop in sessions:
            session_id = str(base_id + len(windows))
            windows.append((start, stop, session_id))
            hosts = rng.sample(streamers, 2 if len(streamers) > 1 and rng.random() < 0.4 else 1)
            expected = live_orders * (stop - start) / total_seconds
            viewers = max(50, round(expected / rng.uniform(0.01, 0.04)))
            views = round(viewers * rng.uniform(1.3, 2.6))
            impressions = round(viewers * rng.uniform(1.5, 4.0))
            tenths = rng.randint(250, 1400)  # average viewing time, 25.0-140.0 s
            sink.add(
                (
                    shop.platform,
                    shop.id,
                    session_id,
                    ",".join(hosts),
                    datetime.fromtimestamp(start, tz).isoformat(),
                    datetime.fromtimestamp(stop, tz).isoformat(),
                    views,
                    viewers,
                    f"{tenths // 10}.{tenths % 10}",
                    impressions,
                    round(impressions * rng.uniform(0.03, 0.12)),
                    round(viewers * rng.uniform(0.01, 0.08)),
                    round(views * rng.uniform(0.5, 3.0)),
                    round(viewers * rng.uniform(0.003, 0.02)),
                    round(viewers * sharing.uniform(0.002, 0.015)),
                )
            )
    return windows


class _OrderWriter:
    """Writes one shop's orders day by day, with their later revisions and refunds."""

    def __init__(
        self,
        context: _Context,
        shop: ShopConfig,
        index: int,
        rng: Random,
        pricing: _Pricing,
        exponent: int,
        export_time: int,
    ) -> None:
        self.orders = context.sinks["orders"]
        self.revisions = context.sinks["order_revisions"]
        self.refunds = context.sinks["refunds"]
        self.shop = shop
        self.rng = rng
        self.pricing = pricing
        self.exponent = exponent
        # Orders are as exported at the end of the range; revisions come from a day later —
        # unless the range ends now: then both are as they stand now.
        self.export_time = export_time
        self.cutoff = context.cutoff
        self.revision_time = export_time + _DAY if context.cutoff is None else export_time
        self.next_order = 5770 * 10**14 + index * 10**10
        self.next_refund = 5780 * 10**14 + index * 10**10
        total = sum(_HOUR_WEIGHTS)
        self.hour_weights = _HOUR_WEIGHTS
        self.hour_ends = [3600 * sum(_HOUR_WEIGHTS[: h + 1]) for h in range(24)]
        self.hour_starts = [0, *self.hour_ends[:-1]]
        self.hour_span = 3600 * total
        mix = _CHANNEL_MIX.get(shop.platform, _CHANNEL_MIX["tiktok"])
        self.channels = [name for name, percent in mix for _ in range(percent)]

    def _create_times(self, day: _Day, count: int) -> list[int]:
        """Creation times following the hour-of-day profile, in the shop's local day."""
        rnd = self.rng.random
        weights, ends, starts = self.hour_weights, self.hour_ends, self.hour_starts
        span, hours = self.hour_span, day.hours
        times = []
        for _ in range(count):
            x = int(rnd() * span)  # a point on the day's cumulative weight, in weight-seconds
            h = bisect_right(ends, x)
            times.append(hours[h] + (x - starts[h]) // weights[h])
        return times

    def write_day(
        self,
        day: _Day,
        count: int,
        windows: list[tuple[int, int, str]],
        live_share: float,
        credit: list[str],
    ) -> int:
        """Write `count` orders created on `day` (those before the cutoff: the number written
        is returned); about `live_share` of them in the live windows."""
        rng = self.rng
        rnd = rng.random
        live_count = round(count * live_share)
        times = self._create_times(day, count - live_count)
        live_seconds = sum(e - s for s, e, _ in windows)
        for start, stop, _ in windows:
            share = round(live_count * (stop - start) / live_seconds) if live_seconds else 0
            times.extend(start + int(rnd() * (stop - start)) for _ in range(share))
        times.sort()
        if self.cutoff is not None:
            times = times[: bisect_right(times, self.cutoff - 1)]

        # Order, revision and refund lines are formatted here rather than by csv.writer, which
        # costs more than generating the row; every text from the config is escaped once.
        prefix = f"{_field(self.shop.platform)},{_field(self.shop.id)},"
        currency = _field(self.shop.currency)
        credit = [_field(person) for person in credit]
        pool, zero, bits = self.pricing.pool, self.pricing.zero, rng.getrandbits
        channels = self.channels
        export, revision_time = self.export_time, self.revision_time
        credited = len(credit)
        order_lines: list[str] = []
        revision_lines: list[str] = []
        refund_lines: list[str] = []
        window, windows_left = 0, len(windows)
        order_number = self.next_order
        for created in times:
            order_number += 1
            while window < windows_left and windows[window][1] <= created:
                window += 1
            if (
                window < windows_left
                and windows[window][0] <= created
                and rnd() < _P_LIVE_IN_WINDOW
            ):
                channel, session = "live", windows[window][2]
            else:
                channel, session = channels[int(rnd() * 100)], ""
            sub, sub_text, total_text = pool[bits(_POOL_BITS)]
            sample = "false"
            if rnd() < _P_SAMPLE:
                sub, sub_text, total_text, sample = 0, zero, zero, "true"
            person = credit[int(rnd() * credited)] if credited and rnd() < _P_CREDITED else ""

            fate = rnd()
            paid = min(created + 5 + int(rnd() * rnd() * 600), export)
            # The order's states and when each began; the row shows the last one by export time.
            steps: tuple[int, ...]
            states: tuple[str, ...]
            paid_text: int | str
            if fate < _P_NEVER_PAID:
                steps, states, paid_text = (created, created + _UNPAID_TIMEOUT), _NEVER_PAID, ""
                delivered = 0
            elif fate < _P_NEVER_PAID + _P_CANCEL_PAID:
                cancelled = paid + 600 + int(rnd() * 2 * _DAY)
                steps, states, paid_text = (paid, cancelled), _PAID_THEN_CANCELLED, paid
                delivered = 0
            else:
                ready = paid + 4 * 3600 + int(rnd() * 68 * 3600)
                collected = ready + 2 * 3600 + int(rnd() * 28 * 3600)
                delivered = collected + 2 * _DAY + int(rnd() * 5 * _DAY)
                completed = delivered + 3 * _DAY + int(rnd() * 5 * _DAY)
                steps, states = (paid, ready, collected, delivered, completed), _LIFECYCLE
                paid_text = paid
            shown = len(steps) - 1
            while steps[shown] > export:
                shown -= 1
            if rnd() < _P_REVISION:
                latest = len(steps) - 1
                while steps[latest] > revision_time:
                    latest -= 1
                earlier = min(latest - 1, shown)
                if earlier > 0 and steps[latest] - steps[earlier] < _DAY:
                    earlier -= 1  # a revision a day or more later, not minutes
                if earlier >= 0:
                    revision_lines.append(
                        f"{prefix}{order_number},{states[latest]},{currency},{created},"
                        f"{paid_text},{steps[latest]},{sub_text},{total_text},{person},"
                        f"{channel},{session},{sample}\n"
                    )
                    shown = earlier
            order_lines.append(
                f"{prefix}{order_number},{states[shown]},{currency},{created},{paid_text},"
                f"{steps[shown]},{sub_text},{total_text},{person},{channel},{session},{sample}\n"
            )
            if delivered and sub and rnd() < _P_REFUND:
                refund = self._refund(order_number, paid, sub)
                if refund:
                    refund_lines.append(f"{prefix}{refund}")
        self.next_order = order_number
        self.orders.extend_lines(order_lines)
        self.revisions.extend_lines(revision_lines)
        self.refunds.extend_lines(refund_lines)
        return len(times)

    def _refund(self, order_number: int, paid: int, sub_total: int) -> str:
        """A refund line after the shop prefix, requested 1–14 days after payment, never after
        the end of the range; empty when there is no time left for one."""
        rng, export = self.rng, self.export_time
        earliest, latest = paid + _DAY, min(paid + 14 * _DAY, export)
        if earliest > latest:
            return ""
        created = earliest + int(rng.random() * (latest - earliest))
        if export - created < 2 * _DAY:
            status = rng.choices(
                ("REQUESTED", "APPROVED", "COMPLETED", "REJECTED"), (50, 30, 15, 5)
            )
        else:
            status = rng.choices(
                ("COMPLETED", "REJECTED", "APPROVED", "CANCELLED", "REQUESTED"), (82, 8, 4, 3, 3)
            )
        updated = created
        if status[0] != "REQUESTED":
            updated = min(created + 3600 + int(rng.random() * 5 * _DAY), export)
        amount = sub_total
        if rng.random() < 0.3:  # a partial refund
            amount = max(1, sub_total * rng.randint(20, 90) // 100)
        self.next_refund += 1
        return (
            f"{self.next_refund},{order_number},{status[0]},{_field(self.shop.currency)},"
            f"{created},{updated},{_money(amount, self.exponent)}\n"
        )


def _write_ads(
    context: _Context,
    shop: ShopConfig,
    index: int,
    rng: Random,
    day: _Day,
    orders: int,
    average: int,
    staff: _Staff,
) -> None:
    buyers = _on(staff, day.day, ("ad_buyer",))
    account = str(7_100_000_000_000_000_000 + index)
    campaigns = 1 if rng.random() < 0.5 else 2
    share_bp = _AD_SHARE_BP.get(shop.platform, 1500)
    exponent = minor_exponent(shop.currency)
    for number in range(campaigns):
        split = (100 if campaigns == 1 else 70) if number == 0 else 30
        revenue = orders * average * share_bp * split * rng.randint(70, 130) // 100_000_000
        spend = revenue * 100 // rng.randint(180, 520)
        conversions = revenue // average if average else 0
        clicks = conversions * rng.randint(25, 80)
        context.sinks["ad_spend"].add(
            (
                shop.platform,
                account,
                str(1_780_000_000_000_000_000 + index * 10 + number),
                day.text,
                buyers[number % len(buyers)] if buyers else "",
                shop.currency,
                _money(spend, exponent),
                clicks * rng.randint(40, 160),
                clicks,
                conversions,
                _money(revenue, exponent),
            )
        )


def _write_person_metrics(context: _Context) -> None:
    rng = Random(f"{context.seed}/people")
    sink = context.sinks["metric_values"]
    agents = [p.id for p in context.organisation.people.values() if p.role == "cs"]
    levels = {person: rng.randint(8800, 9800) for person in agents}
    last = {
        t.id: context.dates_in(zone(t.timezone))[-1] for t in context.organisation.teams.values()
    }
    for day in context.dates:
        text = day.isoformat()
        for person in agents:
            if context.cutoff is not None and day >= last[context.organisation.people[person].team]:
                continue  # the day is not over in the agent's team: no rate yet
            value = min(10_000, max(8000, levels[person] + rng.randint(-600, 500)))
            sink.add(("response_rate_12h", "person", person, text, _ratio(value)))
    _write_declared_metrics(context)


# Imported metrics the demo simulates when the configuration declares them (the templates do):
# per person of a role, or per shop ("shop"), a day's value from a random level and spread.
# (key, role, level range, spread, decimals)
_DECLARED: tuple[tuple[str, str, tuple[float, float], float, int], ...] = (
    ("conversations", "cs", (60, 160), 0.3, 0),
    ("first_response_seconds", "cs", (25, 75), 0.25, 0),
    ("dispute_days", "cs", (1.5, 4.0), 0.3, 1),
    ("videos_published", "editor", (1, 4), 0.5, 0),
    ("video_views", "editor", (5_000, 30_000), 0.4, 0),
    ("video_completion_rate", "editor", (0.18, 0.4), 0.15, 4),
    ("on_time_dispatch_rate", "shop", (0.93, 0.99), 0.02, 4),
)


def _write_declared_metrics(context: _Context) -> None:
    """Customer service's, editors' and shops' daily numbers for the imported metrics the
    configuration declares (first response time, on-time dispatch…), each day once it is
    over in its zone; from a sequence of their own, so the other data stays as it was."""
    org = context.organisation
    sink = context.sinks["metric_values"]
    declared = {
        k for k, m in org.catalogue.metrics.items() if m.imported is not None and not m.builtin
    }
    for key, role, (low, high), spread, places in _DECLARED:
        if key not in declared:
            continue
        rng = Random(f"{context.seed}/{key}")
        if role == "shop":
            entities = [("shop", s.id, zone(s.timezone)) for s in org.shops.values()]
        else:
            entities = [
                ("person", p.id, zone(org.teams[p.team].timezone))
                for p in org.people.values()
                if p.role == role
            ]
        for n, (kind, entity, tz) in enumerate(entities):
            level = rng.uniform(low, high)
            if kind == "shop" and n == 0:
                level = rng.uniform(0.92, 0.935)  # the first shop ships late: an alert to show
            for day in _local_days(context.dates_in(tz), tz):
                if not context.complete(day):
                    continue  # the day is not over there: no figure yet
                value = level * (1 + rng.uniform(-spread, spread))
                if places == 4:  # a rate
                    value = min(value, 1.0)
                sink.add((key, kind, entity, day.text, f"{value:.{places}f}"))


# (id prefix, name, time zone, currency, language, home regions, number of teams)
_LARGE_TEAMS: tuple[tuple[str, str, str, str, str, tuple[str, ...], int], ...] = (
    (
        "sz-live",
        "深圳直播",
        "Asia/Shanghai",
        "CNY",
        "zh",
        ("US", "GB", "SG", "MY", "TH", "ID", "VN", "JP"),
        6,
    ),
    ("gz-live", "广州直播", "Asia/Shanghai", "CNY", "zh", ("US", "SG", "MY", "TH", "VN"), 2),
    ("hz-ops", "杭州运营", "Asia/Shanghai", "CNY", "zh", ("US", "GB", "JP", "ID"), 2),
    ("la-ops", "LA Operations", "America/Los_Angeles", "USD", "en", ("US",), 2),
    ("ny-ops", "New York Operations", "America/New_York", "USD", "en", ("US",), 1),
    ("ldn-ops", "London Operations", "Europe/London", "GBP", "en", ("GB",), 2),
    ("tyo-ops", "东京运营", "Asia/Tokyo", "JPY", "zh", ("JP",), 1),
    ("sg-ops", "Singapore Operations", "Asia/Singapore", "SGD", "en", ("SG", "MY"), 1),
    ("kl-ops", "Kuala Lumpur Operations", "Asia/Kuala_Lumpur", "MYR", "en", ("MY",), 1),
    ("bkk-ops", "Bangkok Operations", "Asia/Bangkok", "THB", "en", ("TH",), 1),
    ("jkt-ops", "Jakarta Operations", "Asia/Jakarta", "IDR", "en", ("ID", "VN"), 1),
)
_SHOPS_PER_TEAM = 10
# Region: shop time zone, currency and the marketplaces there with their relative weights.
_REGIONS: dict[str, tuple[str, str, tuple[tuple[str, int], ...]]] = {
    "US": ("America/Los_Angeles", "USD", (("tiktok", 3), ("amazon", 2))),
    "GB": ("Europe/London", "GBP", (("tiktok", 3), ("amazon", 2))),
    "JP": ("Asia/Tokyo", "JPY", (("amazon", 3), ("tiktok", 1))),
    "SG": ("Asia/Singapore", "SGD", (("shopee", 3), ("lazada", 2), ("tiktok", 2), ("amazon", 1))),
    "MY": ("Asia/Kuala_Lumpur", "MYR", (("shopee", 3), ("lazada", 2), ("tiktok", 2))),
    "TH": ("Asia/Bangkok", "THB", (("shopee", 3), ("lazada", 2), ("tiktok", 2))),
    "ID": ("Asia/Jakarta", "IDR", (("shopee", 3), ("tiktok", 3), ("lazada", 1))),
    "VN": ("Asia/Ho_Chi_Minh", "VND", (("shopee", 3), ("tiktok", 3), ("lazada", 1))),
}
_PLATFORM_NAMES = {
    "tiktok": ("tts", "TikTok Shop"),
    "shopee": ("shp", "Shopee"),
    "lazada": ("lzd", "Lazada"),
    "amazon": ("amz", "Amazon"),
}
_BRANDS = (
    "Glow Beauty", "Nova Home", "Petal Skin", "Urban Trail", "Lumi Kids", "Zen Kitchen",
    "Aura Fit", "Mochi Pets", "Coral Swim", "Pixel Gear", "Silk & Stone", "Bamboo Living",
)  # fmt: skip
# Role counts of a team of 100 (the first team trades one cs agent for the admin).
_TEAM_ROLES: tuple[tuple[str, int], ...] = (
    ("manager", 1), ("streamer", 35), ("operator", 20), ("ad_buyer", 10), ("editor", 12),
    ("cs", 22),
)  # fmt: skip
_ZH_SURNAMES = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
    ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("林", "lin"),
    ("高", "gao"), ("罗", "luo"), ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"),
)  # fmt: skip
_ZH_GIVEN = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("洋", "yang"), ("艳", "yan"), ("勇", "yong"), ("军", "jun"),
    ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("霞", "xia"),
    ("平", "ping"), ("婷", "ting"), ("欣怡", "xinyi"), ("子涵", "zihan"), ("浩然", "haoran"),
    ("雨桐", "yutong"), ("梓萱", "zixuan"), ("宇轩", "yuxuan"), ("佳怡", "jiayi"), ("晨", "chen"),
    ("悦", "yue"), ("思远", "siyuan"),
)  # fmt: skip
_EN_FIRST = (
    "Emily", "Jessica", "Marcus", "Daniel", "Sophia", "Olivia", "James", "Ava", "Liam", "Mia",
    "Noah", "Chloe", "Ethan", "Grace", "Lucas", "Hannah", "Ryan", "Zoe", "Nathan", "Ella",
    "Aisha", "Wei Ming", "Siti", "Arjun", "Nurul", "Somchai", "Putri", "Minh", "Kenji", "Yuki",
)  # fmt: skip
_EN_LAST = (
    "Carter", "Lee", "Brown", "Kim", "Nguyen", "Martinez", "Smith", "Johnson", "Williams",
    "Garcia", "Davis", "Wilson", "Taylor", "Clark", "Lewis", "Walker", "Hall", "Young", "Tan",
    "Lim", "Wong", "Rahman", "Abdullah", "Srisuk", "Santoso", "Tran", "Pham", "Sato", "Suzuki",
    "Patel",
)  # fmt: skip
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def write_large_config(out_dir: Path, *, seed: int = 7) -> Path:
    """Write a large organisation (DESIGN §6: 200 shops, 2,000 people) as YAML into out_dir."""
    rng = Random(f"{seed}/large-config")
    out_dir.mkdir(parents=True, exist_ok=True)
    teams: list[dict[str, Any]] = []
    team_regions: list[tuple[str, ...]] = []
    for prefix, name, timezone, currency, language, regions, number in _LARGE_TEAMS:
        for n in range(1, number + 1):
            team_id = f"{prefix}-{n:02d}"
            teams.append(
                {
                    "id": team_id,
                    "name": f"{name} {n}" if number > 1 else name,
                    "timezone": timezone,
                    "currency": currency,
                    "language": language,
                    "manager": None,  # filled in below
                    "channels": {
                        "slack": "C" + "".join(rng.choices(_ALNUM, k=10)),
                        "feishu": f"oc_{rng.getrandbits(128):032x}",
                        "dingtalk": f"cid{rng.getrandbits(96):024x}==",
                    },
                }
            )
            team_regions.append(regions)

    shops: list[dict[str, Any]] = []
    shops_of_team: list[list[dict[str, Any]]] = []
    sequence: dict[tuple[str, str], int] = {}
    for team, regions in zip(teams, team_regions, strict=True):
        own: list[dict[str, Any]] = []
        for j in range(_SHOPS_PER_TEAM):
            region = regions[j % len(regions)]
            timezone, currency, platforms = _REGIONS[region]
            platform = rng.choices([p for p, _ in platforms], [w for _, w in platforms])[0]
            sequence[(platform, region)] = number = sequence.get((platform, region), 0) + 1
            abbr, label = _PLATFORM_NAMES[platform]
            shop = {
                "id": f"{abbr}-{region.lower()}-{number:02d}",
                "name": f"{label} {region} — {rng.choice(_BRANDS)}",
                "platform": platform,
                "region": region,
                "timezone": timezone,
                "currency": currency,
                "team": team["id"],
            }
            own.append(shop)
        shops.extend(own)
        shops_of_team.append(own)

    people: list[dict[str, Any]] = []
    assignments: list[dict[str, Any]] = []
    taken: dict[str, set[str]] = {"id": set(), "slack": set(), "feishu": set(), "dingtalk": set()}
    admin = _person(rng, taken, teams[0], "admin", None)
    people.append(admin)
    for t, team in enumerate(teams):
        manager = _person(rng, taken, team, "manager", admin["id"])
        team["manager"] = manager["id"]
        people.append(manager)
        own_shops = shops_of_team[t]
        live_shops = [s for s in own_shops if s["platform"] != "amazon"] or own_shops
        for role, count in _TEAM_ROLES[1:]:
            for k in range(count - (1 if t == 0 and role == "cs" else 0)):
                person = _person(rng, taken, team, role, manager["id"])
                people.append(person)
                if role == "streamer":
                    _assign(rng, assignments, person["id"], [live_shops[k % len(live_shops)]])
                elif role in ("operator", "cs"):
                    _assign(rng, assignments, person["id"], [own_shops[k % len(own_shops)]])
                elif role == "ad_buyer":
                    _assign(rng, assignments, person["id"], rng.sample(own_shops, 2))

    header = f"# Generated by kpi_engine.demo_data.write_large_config(seed={seed}).\n"
    documents = {
        "organisation.yaml": {
            "organisation": {
                "name": "环球跨境 Global Cross-border (demo, large)",
                "default_language": "zh",
                "week_start": "monday",
            },
            "teams": teams,
        },
        "people.yaml": {"people": people},
        "shops.yaml": {"shops": shops, "assignments": assignments},
    }
    for name, data in documents.items():
        text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120)
        (out_dir / name).write_text(header + text, encoding="utf-8")
    return out_dir


def _unique(taken: set[str], make: Callable[[], str]) -> str:
    value = make()
    while value in taken:
        value = make()
    taken.add(value)
    return value


def _person(
    rng: Random, taken: dict[str, set[str]], team: dict[str, Any], role: str, manager: str | None
) -> dict[str, Any]:
    chinese = team["language"] == "zh"
    if chinese:
        (surname, surname_py), (given, given_py) = rng.choice(_ZH_SURNAMES), rng.choice(_ZH_GIVEN)
        name, stem = surname + given, f"{surname_py}.{given_py}"
    else:
        first, last = rng.choice(_EN_FIRST), rng.choice(_EN_LAST)
        name, stem = f"{first} {last}", f"{first}.{last}".lower().replace(" ", "")
    person_id, number = stem, 1
    while person_id in taken["id"]:  # namesakes get li.na2, li.na3…
        number += 1
        person_id = f"{stem}{number}"
    taken["id"].add(person_id)
    lead = role in ("admin", "manager")
    chat: dict[str, str] = {}
    if not chinese or lead or rng.random() < 0.2:
        chat["slack"] = _unique(taken["slack"], lambda: "U" + "".join(rng.choices(_ALNUM, k=10)))
    if chinese or lead or rng.random() < 0.4:
        chat["feishu"] = _unique(taken["feishu"], lambda: f"ou_{rng.getrandbits(128):032x}")
    if chinese and (lead or rng.random() < 0.5):
        plain = person_id.replace(".", "")
        chat["dingtalk"] = _unique(taken["dingtalk"], lambda: f"{plain}{rng.randint(10, 9999)}")
    person: dict[str, Any] = {"id": person_id, "name": name, "role": role, "team": team["id"]}
    if manager is not None:
        person["manager"] = manager
    person["chat"] = chat
    return person


def _assign(
    rng: Random, assignments: list[dict[str, Any]], person: str, shops: list[dict[str, Any]]
) -> None:
    start = date(2025, 1, 1) + timedelta(days=rng.randint(0, 180))
    for shop in shops:
        assignments.append({"person": person, "shop": shop["id"], "from": start})
