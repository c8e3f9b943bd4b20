"""Figures: the value of a metric for a scope (company, team, shop) over a period.

Every figure is exact (Decimal), in an explicit time zone (the period's), converted to one
reporting currency with the FX rate of each order's local date in its shop's zone, and says
whether it is provisional (a source has not settled yet), how fresh its data is (`as_of`) and
which FX rates were missing (then it is incomplete, never silently wrong).

Base measures come from the rollups (`kpi_engine.rollups`) where they are kept for the
period's zone, and from the raw rows otherwise (`rollups=False` forces the raw rows: the
comparison point of the benchmarks and of the tests that check rollups equal raw figures).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    and_,
    case,
    distinct,
    exists,
    func,
    literal_column,
    or_,
    select,
    true,
)

from kpi_engine.compare import Explanation, Ranked, explain_gmv, rank
from kpi_engine.instants import day_bounds, local_date, zone
from kpi_engine.metrics import Metric, Source, Unit
from kpi_engine.models import (
    AdSpend,
    Correction,
    FxRate,
    ImportBatch,
    LiveSession,
    MetricValue,
    Order,
    Refund,
)
from kpi_engine.money import minor_exponent
from kpi_engine.organisation import Organisation, PersonConfig, ShopConfig
from kpi_engine.periods import Period
from kpi_engine.rollups import AXIS_OF, Rollups, Sums
from kpi_engine.rollups import read as read_rollups
from kpi_engine.scopes import Scope, ScopeError, parse_scope

_ORDERS = Order.__table__  # type: ignore[attr-defined]
_REFUNDS = Refund.__table__  # type: ignore[attr-defined]
_LIVES = LiveSession.__table__  # type: ignore[attr-defined]
_ADS = AdSpend.__table__  # type: ignore[attr-defined]
_FX = FxRate.__table__  # type: ignore[attr-defined]
_BATCHES = ImportBatch.__table__  # type: ignore[attr-defined]
_VALUES = MetricValue.__table__  # type: ignore[attr-defined]
_CORRECTIONS = Correction.__table__  # type: ignore[attr-defined]


class FigureError(ScopeError):
    """A request that names an unknown metric or scope."""


def format_value(value: Decimal | None, unit: Unit, currency: str | None) -> str:
    """A figure as people read it: money to its currency's decimals, ratios as percentages."""
    if value is None:
        return "—"
    if unit == "money" and currency:
        places = minor_exponent(currency)
        return f"{_round(value, places):,.{places}f} {currency}"
    if unit == "ratio":
        return f"{_round(value * 100, 1):.1f}%"
    if unit in ("count", "seconds"):
        return f"{_round(value, 0):,.0f}" + (" s" if unit == "seconds" else "")
    return f"{_round(value, 2):,.2f}"


def _round(value: Decimal, places: int) -> Decimal:
    """Half-up rounding, as people round money (Python's default is half-even)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Figure:
    """A metric's value for a scope and period, with everything needed to trust it."""

    metric: str
    scope: Scope
    period: Period
    value: Decimal | None
    unit: Unit
    currency: str | None
    provisional: bool
    as_of: int | None
    missing_rates: tuple[tuple[str, date], ...] = ()
    sources: frozenset[Source] = frozenset()
    unimported: frozenset[Source] = frozenset()  # sources with no data imported at all

    @property
    def incomplete(self) -> bool:
        """True when some amounts could not be converted (their FX rate is missing)."""
        return bool(self.missing_rates)


@dataclass
class _Money:
    """Exact amounts in minor units, by (currency, local date) for conversion."""

    parts: dict[tuple[str, date], int] = field(default_factory=lambda: defaultdict(int))


_BaseValue = _Money | Decimal | None


@dataclass(frozen=True)
class _Credit:
    """A person's share of the data: credited orders and the live sessions they hosted."""

    orders: ColumnElement[bool]
    lives: ColumnElement[bool]


def _hosted_by(lives: Any, person_id: str) -> ColumnElement[bool]:
    """True for live sessions whose comma-separated `hosts` include `person_id`."""
    padded: ColumnElement[str] = literal_column("','") + lives.c.hosts + literal_column("','")
    return padded.contains(f",{person_id},", autoescape=True)


@dataclass(frozen=True)
class _Measure:
    """How a base measure is computed from one table."""

    source: Source
    money: bool


_MEASURES: dict[str, _Measure] = {
    "placed_gmv": _Measure("orders", True),
    "gmv": _Measure("orders", True),
    "placed_orders": _Measure("orders", False),
    "orders": _Measure("orders", False),
    "cancelled_orders": _Measure("orders", False),
    "cancelled_paid_gmv": _Measure("orders", True),
    "live_gmv": _Measure("orders", True),
    "live_orders": _Measure("orders", False),
    "refund_amount": _Measure("refunds", True),
    "cohort_refund_amount": _Measure("refunds", True),
    "cohort_refunded_orders": _Measure("refunds", False),
    "views": _Measure("live_sessions", False),
    "viewers": _Measure("live_sessions", False),
    "watch_seconds": _Measure("live_sessions", False),
    "product_impressions": _Measure("live_sessions", False),
    "product_clicks": _Measure("live_sessions", False),
    "ad_spend": _Measure("ad_spend", True),
    "ad_revenue": _Measure("ad_spend", True),
}


class Figures:
    """Computes figures from the database for one organisation."""

    def __init__(self, engine: Engine, organisation: Organisation, *, rollups: bool = True) -> None:
        self.engine = engine
        self.organisation = organisation
        self.catalogue = organisation.catalogue
        self.rollups = Rollups(engine, organisation) if rollups else None
        self._held = threading.local()  # per thread: inside `held()`, rollups checked already

    @contextmanager
    def held(self) -> Iterator[None]:
        """Figures computed inside (in this thread) read one state of the rollups: they are
        brought up to date at the first figure, not checked again at every one (a digest round
        computes over a hundred)."""
        depth = getattr(self._held, "depth", 0)
        self._held.depth = depth + 1
        try:
            yield
        finally:
            self._held.depth = depth
            if depth == 0:
                self._held.checked = False

    def scope_of(self, text: str) -> Scope:
        """An entity such as `team:sz-live` or `person:li.na` (ScopeError when unknown)."""
        org = self.organisation
        return parse_scope(text, teams=org.teams, shops=org.shops, people=org.people)

    def reporting_currency(self, scope: Scope) -> str:
        """The currency a scope's money is reported in."""
        if scope.kind == "shop":
            return self._shop(scope.id).currency
        if scope.kind == "team":
            return self._team_currency(scope.id)
        if scope.kind == "person":
            return self._team_currency(self._person(scope.id).team)
        return (
            self.organisation.settings.currency
            or next(iter(self.organisation.teams.values())).currency
        )

    def timezone(self, scope: Scope) -> str:
        """The time zone a scope's periods are read in by default."""
        if scope.kind == "shop":
            return self._shop(scope.id).timezone
        if scope.kind == "person":  # a person's "today" is their team's today
            return self.organisation.teams[self._person(scope.id).team].timezone
        if scope.kind == "team":
            if scope.id not in self.organisation.teams:
                raise FigureError(f"unknown team {scope.id!r}")
            return self.organisation.teams[scope.id].timezone
        return next(iter(self.organisation.teams.values())).timezone

    def explain(
        self, scope: Scope, period: Period, *, now: int, previous: Period | None = None
    ) -> Explanation | None:
        """Why GMV moved from the previous period: traffic × conversion × AOV contributions."""
        keys = ["gmv", "orders", "views"]
        after = self.figures(keys, scope, period, now=now)
        before = self.figures(keys, scope, previous or period.previous(), now=now)
        return explain_gmv(
            {k: f.value for k, f in before.items()}, {k: f.value for k, f in after.items()}
        )

    def ranking(
        self, metric: str, scopes: Iterable[Scope], period: Period, *, now: int
    ) -> list[Ranked]:
        """Scopes ranked by a metric over one period (ties share a place)."""
        definition = self.catalogue.get(metric)  # None for a ready-made daily metric
        found = self.figures_of([metric], list(scopes), period, now=now)
        values = {scope.id or scope.kind: found[scope][metric].value for scope in found}
        return rank(values, definition.direction if definition else "higher")

    def figure(self, metric: str, scope: Scope, period: Period, *, now: int) -> Figure:
        """One metric's figure."""
        return self.figures([metric], scope, period, now=now)[metric]

    def figures(
        self, metrics: Iterable[str], scope: Scope, period: Period, *, now: int
    ) -> dict[str, Figure]:
        """Several metrics' figures, computing each base measure once."""
        return self.figures_of(metrics, [scope], period, now=now)[scope]

    def figures_of(
        self, metrics: Iterable[str], scopes: Iterable[Scope], period: Period, *, now: int
    ) -> dict[Scope, dict[str, Figure]]:
        """Several metrics' figures for several scopes, reading each rollup once for all."""
        wanted = list(metrics)
        scopes = list(dict.fromkeys(scopes))
        resolved: dict[str, Metric] = {}
        generic: list[str] = []  # keys that only exist as imported metric_values
        for name in wanted:
            metric = self.catalogue.get(name)
            if metric is None:
                generic.append(name)
            else:
                resolved[name] = metric
        currencies = {scope: self.reporting_currency(scope) for scope in scopes}
        bases = sorted(
            {b for m in resolved.values() for b in self.catalogue.base_dependencies(m.key)}
        )
        if self.rollups is not None and bases:
            inside = getattr(self._held, "depth", 0) > 0
            if not (inside and getattr(self._held, "checked", False)):
                self.rollups.ensure_current(now=now)
                self._held.checked = inside
        with self.engine.connect() as conn:
            raws = self._bases(conn, bases, scopes, period)
            rates: dict[str, dict[tuple[str, date], Decimal]] = {
                currency: self._rates(
                    conn,
                    [v for s in scopes if currencies[s] == currency for v in raws[s].values()],
                    currency,
                )
                for currency in set(currencies.values())
            }
            freshness: dict[str, int] = dict(
                conn.execute(
                    select(_BATCHES.c.kind, func.max(_BATCHES.c.imported_at)).group_by(
                        _BATCHES.c.kind
                    )
                ).all()
            )
            found = {
                scope: self._scope_figures(
                    conn,
                    resolved,
                    generic,
                    scope,
                    period,
                    raws[scope],
                    currencies[scope],
                    rates[currencies[scope]],
                    freshness,
                    now,
                )
                for scope in scopes
            }
            self._correct(conn, found, wanted, period)
        return {scope: {name: found[scope][name] for name in wanted} for scope in scopes}

    def _correct(
        self, conn: Any, found: dict[Scope, dict[str, Figure]], wanted: list[str], period: Period
    ) -> None:
        """Add accepted appeals' corrections to the figures they adjust: a person's correction
        counts for the person, their team and the company; a team's or shop's for itself and
        the company. One in another currency than the figure's makes the figure incomplete
        (named currency and day) rather than silently wrong."""
        rows = conn.execute(
            select(
                _CORRECTIONS.c.metric,
                _CORRECTIONS.c.scope,
                _CORRECTIONS.c.day,
                _CORRECTIONS.c.delta,
                _CORRECTIONS.c.currency,
            ).where(
                _CORRECTIONS.c.metric.in_(wanted),
                _CORRECTIONS.c.day >= period.first,
                _CORRECTIONS.c.day <= period.last,
            )
        ).all()
        if not rows:
            return
        people = self.organisation.people
        for scope, figures in found.items():
            for metric, target, day, delta, currency in rows:
                figure = figures.get(metric)
                if figure is None:
                    continue
                kind, _, ident = str(target).partition(":")
                applies = (
                    scope.kind == "company"
                    or (scope.kind == kind and scope.id == ident)
                    or (
                        scope.kind == "team"
                        and kind == "person"
                        and ident in people
                        and people[ident].team == scope.id
                    )
                )
                if not applies:
                    continue
                if currency and figure.currency and currency != figure.currency:
                    missing = (*figure.missing_rates, (currency, day))
                    figures[metric] = replace(figure, missing_rates=missing)
                    continue
                base = figure.value or Decimal(0)
                figures[metric] = replace(figure, value=base + Decimal(delta))

    def _scope_figures(
        self,
        conn: Any,
        resolved: Mapping[str, Metric],
        generic: list[str],
        scope: Scope,
        period: Period,
        raw: Mapping[str, _BaseValue],
        currency: str,
        rates: Mapping[tuple[str, date], Decimal],
        freshness: Mapping[str, int],
        now: int,
    ) -> dict[str, Figure]:
        generic_values = {name: self._generic(conn, name, scope, period) for name in generic}
        missing: set[tuple[str, date]] = set()
        values = {key: self._convert(value, currency, rates, missing) for key, value in raw.items()}
        result: dict[str, Figure] = {}
        for name, metric in resolved.items():
            value = (
                values[metric.key] if metric.formula is None else metric.formula.evaluate(values)
            )
            sources = self.catalogue.sources(metric.key)
            bases_of = self.catalogue.base_dependencies(metric.key)
            parts = {p for b in bases_of if isinstance(m := raw[b], _Money) for p in m.parts}
            result[name] = self._figure(
                metric.key,
                scope,
                period,
                value,
                metric.unit,
                currency,
                sources,
                freshness,
                now,
                tuple(sorted(missing & parts)),
            )
        for name, value in generic_values.items():
            unit: Unit = "ratio" if name.endswith(("_rate", "_ratio", "_share")) else "decimal"
            result[name] = self._figure(
                name,
                scope,
                period,
                value,
                unit,
                currency,
                frozenset({"metric_values"}),
                freshness,
                now,
                (),
            )
        return result

    def _bases(
        self, conn: Any, keys: list[str], scopes: list[Scope], period: Period
    ) -> dict[Scope, dict[str, _BaseValue]]:
        """Every base measure for every scope: from rollups where kept, else from raw rows."""
        found: dict[Scope, dict[str, _BaseValue]] = {scope: {} for scope in scopes}
        rolled = [key for key in keys if key in AXIS_OF] if self.rollups is not None else []
        people = [s for s in scopes if s.kind == "person" and self._kept(s, period)]
        totals = [s for s in scopes if s.kind != "person" and self._kept(s, period)]
        for scope in scopes:
            on_rollups = scope in people or scope in totals
            raw_keys = [key for key in keys if not (on_rollups and key in rolled)]
            if not raw_keys:
                continue
            shops = self._shops(scope)
            credit = self._credit(conn, scope.id) if scope.kind == "person" else None
            for key in raw_keys:
                found[scope][key] = self._base(conn, key, scope, shops, period, credit)
        shop_ids = {scope: [shop.id for shop in self._shops(scope)] for scope in totals}
        person_ids = [s.id for s in people]
        shop_list = sorted({i for ids in shop_ids.values() for i in ids})
        for axis in {AXIS_OF[key] for key in rolled}:
            where = (axis, period.timezone, period.first, period.last)
            by_person = read_rollups(conn, *where, people=person_ids) if people else {}
            by_shop = read_rollups(conn, *where, shops=shop_list) if totals else {}
            for scope in people + totals:
                parts = (
                    [by_person.get(scope.id, {})]
                    if scope.kind == "person"
                    else [by_shop.get(shop, {}) for shop in shop_ids[scope]]
                )
                for key in rolled:
                    if AXIS_OF[key] is axis:
                        found[scope][key] = _from_sums(
                            key, axis.value(key), _MEASURES[key].money, parts
                        )
        return found

    def _kept(self, scope: Scope, period: Period) -> bool:
        """True when the scope's rollups are kept in the period's zone."""
        if self.rollups is None:
            return False
        if scope.kind == "person":
            self._person(scope.id)  # validates the id
            return self.rollups.covers("person", [scope.id], period.timezone)
        return self.rollups.covers("shop", [s.id for s in self._shops(scope)], period.timezone)

    def _figure(
        self,
        key: str,
        scope: Scope,
        period: Period,
        value: Decimal | None,
        unit: Unit,
        currency: str,
        sources: frozenset[Source],
        freshness: Mapping[str, int],
        now: int,
        missing: tuple[tuple[str, date], ...],
    ) -> Figure:
        return Figure(
            metric=key,
            scope=scope,
            period=period,
            value=value,
            unit=unit,
            currency=currency if unit == "money" else None,
            provisional=self._provisional(sources, period, now),
            as_of=_as_of(sources, freshness),
            missing_rates=missing,
            sources=sources,
            unimported=frozenset(s for s in sources if s not in freshness),
        )

    def _generic(self, conn: Any, name: str, scope: Scope, period: Period) -> Decimal | None:
        """The mean of a ready-made daily metric over the period's days (docs/metrics.md)."""
        v = _VALUES
        known = conn.execute(select(v.c.id).where(v.c.metric == name).limit(1)).first()
        if known is None:
            raise FigureError(f"unknown metric {name!r}")
        if scope.kind == "company":
            return None  # ready-made values belong to a person, team or shop
        rows = (
            conn.execute(
                select(v.c.value).where(
                    v.c.metric == name,
                    v.c.entity_type == scope.kind,
                    v.c.entity_id == scope.id,
                    v.c.date >= period.first,
                    v.c.date <= period.last,
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            return None
        return sum((Decimal(value) for value in rows), Decimal(0)) / len(rows)

    # -- scope ---------------------------------------------------------------------------

    def _shop(self, shop_id: str) -> ShopConfig:
        shop = self.organisation.shops.get(shop_id)
        if shop is None:
            raise FigureError(f"unknown shop {shop_id!r}")
        return shop

    def _person(self, person_id: str) -> PersonConfig:
        person = self.organisation.people.get(person_id)
        if person is None:
            raise FigureError(f"unknown person {person_id!r}")
        return person

    def _team_currency(self, team_id: str) -> str:
        team = self.organisation.teams.get(team_id)
        if team is None:
            raise FigureError(f"unknown team {team_id!r}")
        return team.currency

    def _shops(self, scope: Scope) -> list[ShopConfig]:
        shops = self.organisation.shops.values()
        if scope.kind == "shop":
            return [self._shop(scope.id)]
        if scope.kind == "team":
            self._team_currency(scope.id)  # validates the id
            return [s for s in shops if s.team == scope.id]
        if scope.kind == "person":
            self._person(scope.id)  # validates the id
        return list(shops)  # a person's credited orders may be in any shop

    def _people(self, scope: Scope) -> list[str] | None:
        """People whose ad spend counts for the scope; None means everyone's."""
        if scope.kind == "team":
            return [p.id for p in self.organisation.people.values() if p.team == scope.id]
        if scope.kind == "person":
            return [scope.id]
        return None

    def _credit(self, conn: Any, person_id: str) -> _Credit:
        """SQL conditions for a person's credited orders and hosted live sessions."""
        settings = self.organisation.settings.attribution
        o, tail = _ORDERS, settings.live_tail_minutes * 60
        # No session covers an order created later than its longest span after it starts:
        # that bound turns "some session started before the order" into a short index range.
        longest = conn.execute(select(func.max(_LIVES.c.end_time - _LIVES.c.start_time))).scalar()
        reach = int(longest or 0) + tail
        covering = _LIVES.alias("covering")
        session: Select[Any] = select(literal_column("1")).where(
            covering.c.platform == o.c.platform,
            covering.c.shop_id == o.c.shop_id,
            o.c.create_time >= covering.c.start_time,
            covering.c.start_time > o.c.create_time - reach,
            o.c.create_time < covering.c.end_time + tail,
        )
        unattributed = o.c.attributed_to.is_(None)
        rules = [
            o.c.attributed_to == person_id,
            and_(unattributed, exists(session.where(_hosted_by(covering, person_id)))),
        ]
        person = self._person(person_id)
        if person.role in settings.fallback_roles:
            windows = []
            for assignment in self.organisation.assignments:
                if assignment.person != person_id:
                    continue
                tz = zone(self.organisation.shops[assignment.shop].timezone)
                start = day_bounds(assignment.valid_from, tz)[0]
                window = [o.c.shop_id == assignment.shop, o.c.create_time >= start]
                if assignment.valid_to is not None:
                    window.append(o.c.create_time < day_bounds(assignment.valid_to, tz)[1])
                windows.append(and_(*window))
            if windows:
                rules.append(and_(unattributed, ~exists(session), or_(*windows)))
        return _Credit(orders=or_(*rules), lives=_hosted_by(_LIVES, person_id))

    # -- settlement ----------------------------------------------------------------------

    def _provisional(self, sources: frozenset[Source], period: Period, now: int) -> bool:
        lags = self.organisation.settings.settlement_lag_days
        end = period.bounds()[1]
        return any(now < end + getattr(lags, source) * 86400 for source in sources)

    # -- base measures -------------------------------------------------------------------

    def _base(
        self,
        conn: Any,
        key: str,
        scope: Scope,
        shops: list[ShopConfig],
        period: Period,
        credit: _Credit | None,
    ) -> _BaseValue:
        measure = _MEASURES.get(key)
        if measure is None:
            raise FigureError(f"metric {key!r} has no computation")
        if measure.source == "ad_spend":
            if scope.kind == "shop":
                return None  # ad accounts are tied to people, not shops
            return self._ads(conn, key, self._people(scope), period)
        if not shops:
            return _Money() if measure.money else Decimal(0)
        start, end = period.bounds()
        total: _Money | Decimal = _Money() if measure.money else Decimal(0)
        by_zone: dict[str, list[str]] = defaultdict(list)
        for shop in shops:
            by_zone[shop.timezone].append(shop.id)
        for timezone, shop_ids in by_zone.items():
            query = _measure_query(key, shop_ids, start, end, timezone, credit)
            for row in conn.execute(query):
                if isinstance(total, _Money):
                    currency, day, amount = row
                    if amount:
                        total.parts[(currency, _as_date(day))] += int(amount)
                else:
                    total += Decimal(row[0] or 0) / (1000 if key == "watch_seconds" else 1)
        return total

    def _ads(self, conn: Any, key: str, people: list[str] | None, period: Period) -> _Money:
        column = _ADS.c.spend if key == "ad_spend" else _ADS.c.attributed_revenue
        query = (
            select(_ADS.c.currency, _ADS.c.date, func.sum(column))
            .where(_ADS.c.date >= period.first, _ADS.c.date <= period.last)
            .group_by(_ADS.c.currency, _ADS.c.date)
        )
        if people is not None:
            query = query.where(_ADS.c.person_id.in_(people))
        money = _Money()
        for currency, day, amount in conn.execute(query):
            if amount:
                money.parts[(currency, _as_date(day))] += int(amount)
        return money

    # -- currency ------------------------------------------------------------------------

    def _rates(
        self, conn: Any, raw: Iterable[_BaseValue], currency: str
    ) -> dict[tuple[str, date], Decimal]:
        needed = {
            part
            for value in raw
            if isinstance(value, _Money)
            for part in value.parts
            if part[0] != currency
        }
        if not needed:
            return {}
        days = sorted({day for _, day in needed})
        query = select(_FX.c.currency, _FX.c.date, _FX.c.rate).where(
            _FX.c.quote == currency,
            _FX.c.currency.in_(sorted({c for c, _ in needed})),
            _FX.c.date >= days[0],
            _FX.c.date <= days[-1],
        )
        return {(c, _as_date(d)): Decimal(r) for c, d, r in conn.execute(query)}

    @staticmethod
    def _convert(
        value: _BaseValue,
        currency: str,
        rates: Mapping[tuple[str, date], Decimal],
        missing: set[tuple[str, date]],
    ) -> Decimal | None:
        if not isinstance(value, _Money):
            return value
        total = Decimal(0)
        for (code, day), minor in value.parts.items():
            amount = Decimal(minor).scaleb(-minor_exponent(code))
            if code == currency:
                total += amount
            elif (code, day) in rates:
                total += amount * rates[(code, day)]
            else:
                missing.add((code, day))
        return total


def _from_sums(key: str, index: int, money: bool, parts: Iterable[Sums]) -> _BaseValue:
    """A base measure from rollup sums, in the form the raw computation gives it."""
    if money:
        total = _Money()
        for sums in parts:
            for part, values in sums.items():
                if values[index]:
                    total.parts[part] += values[index]
        return total
    count = sum(values[index] for sums in parts for values in sums.values())
    return Decimal(count) / (1000 if key == "watch_seconds" else 1)


def _as_of(sources: frozenset[Source], freshness: Mapping[str, int]) -> int | None:
    times = [freshness.get(source) for source in sources]
    return None if any(t is None for t in times) else min(t for t in times if t is not None)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _local_day(column: Any, start: int, end: int, timezone: str) -> ColumnElement[Any]:
    """SQL for the local date (ISO text) of an instant column, exact across DST, in any DB.

    A CASE over the day boundaries in `timezone` between `start` and `end`: no database
    time-zone support needed, so SQLite and PostgreSQL agree.
    """
    tz = zone(timezone)
    first, last = local_date(start, tz), local_date(max(start, end - 1), tz)
    # Inline literals (our own integers and ISO dates), so the expression in GROUP BY is the
    # same SQL text as in the select list: PostgreSQL compares them as text. Every day has its
    # branch (no constant expression, which PostgreSQL refuses in GROUP BY); the WHERE clause
    # keeps instants inside [start, end), so the ELSE never applies.
    branches: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = []
    day = first
    while day <= last:
        boundary: ColumnElement[Any] = literal_column(str(day_bounds(day, tz)[1]))
        branches.append((column < boundary, literal_column(f"'{day.isoformat()}'")))
        day += timedelta(days=1)
    return case(*branches, else_=None)


def _measure_query(
    key: str, shops: list[str], start: int, end: int, timezone: str, credit: _Credit | None
) -> Select[Any]:
    """The aggregate query of a base measure over `shops` whose instants lie in [start, end).

    With `credit`, only a person's credited orders (and refunds of them) and hosted lives count.
    """
    o, r, lv = _ORDERS, _REFUNDS, _LIVES
    not_sample = o.c.is_sample.is_(False)
    if key == "refund_amount" and credit is not None:
        joined = r.join(
            o,
            and_(
                o.c.platform == r.c.platform,
                o.c.shop_id == r.c.shop_id,
                o.c.order_id == r.c.order_id,
            ),
        )
        day = _local_day(r.c.update_time, start, end, timezone)
        return (
            select(r.c.currency, day, func.sum(r.c.refund_amount))
            .select_from(joined)
            .where(
                r.c.shop_id.in_(shops),
                r.c.status == "COMPLETED",
                credit.orders,
                r.c.update_time >= start,
                r.c.update_time < end,
            )
            .group_by(r.c.currency, day)
        )
    if key in ("refund_amount",):
        day = _local_day(r.c.update_time, start, end, timezone)
        return (
            select(r.c.currency, day, func.sum(r.c.refund_amount))
            .where(
                r.c.shop_id.in_(shops),
                r.c.status == "COMPLETED",
                r.c.update_time >= start,
                r.c.update_time < end,
            )
            .group_by(r.c.currency, day)
        )
    if key in ("cohort_refund_amount", "cohort_refunded_orders"):
        joined = r.join(
            o,
            and_(
                o.c.platform == r.c.platform,
                o.c.shop_id == r.c.shop_id,
                o.c.order_id == r.c.order_id,
            ),
        )
        cohort = (
            credit.orders if credit is not None else true(),
            r.c.shop_id.in_(shops),
            r.c.status == "COMPLETED",
            not_sample,
            o.c.paid_time >= start,
            o.c.paid_time < end,
        )
        if key == "cohort_refunded_orders":
            return select(func.count(distinct(o.c.id))).select_from(joined).where(*cohort)
        day = _local_day(o.c.paid_time, start, end, timezone)
        return (
            select(r.c.currency, day, func.sum(r.c.refund_amount))
            .select_from(joined)
            .where(*cohort)
            .group_by(r.c.currency, day)
        )
    if key in ("views", "viewers", "product_impressions", "product_clicks", "watch_seconds"):
        value = (lv.c.avg_viewing_ms * lv.c.viewers) if key == "watch_seconds" else lv.c[key]
        return select(func.sum(value)).where(
            lv.c.shop_id.in_(shops),
            lv.c.start_time >= start,
            lv.c.start_time < end,
            credit.lives if credit is not None else true(),
        )
    placed = key in ("placed_gmv", "placed_orders", "cancelled_orders")
    time = o.c.create_time if placed else o.c.paid_time
    conditions = [o.c.shop_id.in_(shops), not_sample, time >= start, time < end]
    if credit is not None:
        conditions.append(credit.orders)
    if key in ("cancelled_orders", "cancelled_paid_gmv"):
        conditions.append(o.c.status == "CANCELLED")
    if key in ("live_gmv", "live_orders"):
        conditions.append(o.c.channel == "live")
    if key in ("placed_orders", "orders", "cancelled_orders", "live_orders"):
        return select(func.count()).select_from(o).where(*conditions)
    day = _local_day(time, start, end, timezone)
    return (
        select(o.c.currency, day, func.sum(o.c.sub_total))
        .where(*conditions)
        .group_by(o.c.currency, day)
    )
