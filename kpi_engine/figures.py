"""Figures: the value of a metric for a scope (company, team, shop, person) over a period.

Every figure is exact (Decimal), in an explicit time zone (the period's), converted to one
reporting currency with the FX rate of each amount's local date in its shop's zone, and says
whether it is provisional (a source has not settled yet), how fresh its data is (`as_of`),
which FX rates were missing (then it is incomplete, never silently wrong), whether part of a
person's figure is credited to several people at once (`shared`), and which accepted
corrections it includes.

Base measures come from the rollups (`kpi_engine.rollups`) where they are kept for the
period's zone, and otherwise from the raw rows through the very same generated SQL
(`kpi_engine.measure_sql`) run over the period alone (`rollups=False` forces the raw rows: the
comparison point of the benchmarks and of the tests that check rollups equal raw figures).
Derived metrics are evaluated from the base values, formulas over formulas inner first.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from fractions import Fraction
from typing import Any, NamedTuple

from sqlalchemy import Date, Engine, bindparam, func, select, text

from kpi_engine.compare import EXPLAIN_METRICS, Explanation, Ranked, explain_gmv, rank
from kpi_engine.formulas import PRECISION
from kpi_engine.measure_sql import (
    CTES,
    Axis,
    Segment,
    credit_windows,
    credits_ctes,
    hosts_ctes,
    segments,
    values_cte,
)
from kpi_engine.metrics import Imported, Measure, Metric, Source, Unit, aggregate_imported
from kpi_engine.models import Correction, FxRate, ImportBatch, MetricValue
from kpi_engine.money import MAX_WHOLE_DIGITS, minor_exponent
from kpi_engine.organisation import Organisation, PersonConfig, ShopConfig
from kpi_engine.periods import Period, day_of, earlier_period
from kpi_engine.rollups import AXIS_OF, Rollups, Sums, company_zone, from_epoch_day, read_days
from kpi_engine.rollups import read as read_rollups
from kpi_engine.scopes import Scope, ScopeError, parse_scope

_KEPT_READS = 8  # rollup reads remembered inside `Figures.held()`, the most recent first
_FX = FxRate.__table__  # type: ignore[attr-defined]
_BATCHES = ImportBatch.__table__  # type: ignore[attr-defined]
_VALUES = MetricValue.__table__  # type: ignore[attr-defined]
_CORRECTIONS = Correction.__table__  # type: ignore[attr-defined]


class FigureError(ScopeError):
    """A request that names an unknown metric or scope."""


log = logging.getLogger(__name__)


def storable_amount(text: str | None) -> bool:
    """Is a stored correction amount one a figure can take? A row written before claims were
    bounded (or by hand) must not break every figure over its day, nor the others'."""
    if text is None:
        return True
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError):
        return False
    return value.is_finite() and abs(value) < Decimal(10) ** MAX_WHOLE_DIGITS


_IGNORED: set[int] = set()  # corrections already reported as left out


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


def quantize(value: Decimal | None, unit: Unit, currency: str | None) -> Decimal | None:
    """A value rounded (half up) to its unit, as programs receive it: money to its currency's
    minor unit ("4500000.00"); ratios to six places (0.0001 %), counts and seconds to two (a
    split credit gives halves), other decimals to four — without trailing zeros ("0.9712")."""
    if value is None:
        return None
    if unit == "money" and currency:
        return _round(value, minor_exponent(currency))
    places = {"ratio": 6, "count": 2, "seconds": 2}.get(unit, 4)
    rounded = _round(value, places)
    if rounded == rounded.to_integral_value():
        return rounded.quantize(Decimal(1))
    return rounded.quantize(Decimal(1).scaleb(-len(str(rounded).split(".")[1].rstrip("0"))))


def _round(value: Decimal, places: int) -> Decimal:
    """Half-up rounding, as people round money (Python's default is half-even)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


class Standing(NamedTuple):
    """What a figure says of its data, apart from its value: still provisional for its
    period, and when its sources were last imported."""

    provisional: bool
    as_of: int | None


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
    shared: bool = False  # part of it is credited to several people at once (co-hosts…)
    corrections: tuple[int, ...] = ()  # accepted corrections it includes (their ids)
    # Computed from the raw rows because another process was rebuilding the rollups (the
    # same value; said in the API, the CLI's JSON and the logs).
    from_raw: bool = False

    @property
    def standing(self) -> Standing:
        return Standing(self.provisional, self.as_of)

    @property
    def incomplete(self) -> bool:
        """True when some amounts could not be converted (their FX rate is missing): the value
        is then the sum of the amounts that could be, and says so everywhere."""
        return bool(self.missing_rates)


@dataclass
class _Money:
    """Exact amounts in minor units, by (currency, local date) for conversion."""

    # Whole minor units stay ints (most parts); a split credit makes a part a Fraction.
    parts: dict[tuple[str, date], Fraction | int] = field(default_factory=lambda: defaultdict(int))


_BaseValue = _Money | Decimal | None


@dataclass(frozen=True)
class _Effect:
    """What one accepted correction adds now to the figures it applies to."""

    id: int
    metric: str
    scope: str
    first: date
    last: date
    amount: Decimal  # 0 once the raw data has reached the claimed value
    currency: str | None
    counted: bool = False  # added to a base measure already

    @property
    def adds(self) -> bool:
        """True when the correction changes the figure now."""
        return self.counted or bool(self.amount)


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
        computes over a hundred), and a rollup read asked twice (a page's teams and then its
        shops) is answered from the first."""
        depth = getattr(self._held, "depth", 0)
        self._held.depth = depth + 1
        try:
            yield
        finally:
            self._held.depth = depth
            if depth == 0:
                self._held.checked = False
                self._held.busy = False
                self._held.reads = None

    @property
    def split_credit(self) -> bool:
        """True when orders credited to several people are split among them."""
        return self.organisation.settings.attribution.cohost_credit == "split"

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
        return company_zone(self.organisation)

    def explain(
        self, scope: Scope, period: Period, *, now: int, previous: Period | None = None
    ) -> Explanation | None:
        """Why GMV moved from the period before — to date, as the comparison is: a period
        under way against as many days of the previous one (`earlier_period`)."""
        previous = previous or earlier_period(period, "previous", now)
        with self.held():
            shop_traffic = self.shop_traffic_covers(scope, (period, previous))
            keys = [*EXPLAIN_METRICS, *(["shop_visitors"] if shop_traffic else [])]
            after = self.figures(keys, scope, period, now=now)
            before = self.figures(keys, scope, previous, now=now)
        found = explain_gmv(
            {k: f.value for k, f in before.items()},
            {k: f.value for k, f in after.items()},
            shop_traffic=shop_traffic,
        )
        return None if found is None else replace(found, period=period, previous=previous)

    def ranking(
        self, metric: str, scopes: Iterable[Scope], period: Period, *, now: int
    ) -> list[Ranked]:
        """Scopes ranked by a metric over one period (ties share a place)."""
        definition = self.catalogue.get(metric)  # None for a ready-made daily metric
        found = self.figures_of([metric], list(scopes), period, now=now)
        values = {scope.id or scope.kind: found[scope][metric].value for scope in found}
        return rank(values, definition.direction if definition else "higher")

    def figure(
        self, metric: str, scope: Scope, period: Period, *, now: int, currency: str | None = None
    ) -> Figure:
        """One metric's figure (money in `currency` when given, else the scope's own)."""
        return self.figures([metric], scope, period, now=now, currency=currency)[metric]

    def uncorrected(
        self, metric: str, scope: Scope, period: Period, *, now: int, currency: str | None = None
    ) -> Figure:
        """A figure as the data alone gives it, without accepted corrections."""
        return self._figures_of([metric], [scope], period, now, currency, corrected=False)[scope][
            metric
        ]

    def figures(
        self,
        metrics: Iterable[str],
        scope: Scope,
        period: Period,
        *,
        now: int,
        currency: str | None = None,
    ) -> dict[str, Figure]:
        """Several metrics' figures, computing each base measure once."""
        return self.figures_of(metrics, [scope], period, now=now, currency=currency)[scope]

    def figures_of(
        self,
        metrics: Iterable[str],
        scopes: Iterable[Scope],
        period: Period,
        *,
        now: int,
        currency: str | None = None,
    ) -> dict[Scope, dict[str, Figure]]:
        """Several metrics' figures for several scopes, reading each rollup once for all; money
        in `currency` when given (each amount at its own date's rate), else each scope's."""
        return self._figures_of(list(metrics), list(dict.fromkeys(scopes)), period, now, currency)

    def _figures_of(
        self,
        wanted: list[str],
        scopes: list[Scope],
        period: Period,
        now: int,
        currency: str | None,
        *,
        corrected: bool = True,
    ) -> dict[Scope, dict[str, Figure]]:
        resolved: dict[str, Metric] = {}
        generic: list[str] = []  # keys that only exist as imported metric_values
        for name in wanted:
            metric = self.catalogue.get(name)
            if metric is None:
                generic.append(name)
            else:
                resolved[name] = metric
        currencies = {scope: currency or self.reporting_currency(scope) for scope in scopes}
        bases = sorted(
            {b for m in resolved.values() for b in self.catalogue.base_dependencies(m.key)}
        )
        self._current(bases, now)
        wanted_keys = {m.key for m in resolved.values()} | set(generic)
        with self.engine.connect() as conn:
            corrections = (
                self._corrections(conn, wanted_keys | set(bases), scopes, period)
                if corrected
                else []
            )
            effects = self._effects(corrections, now)
            raws, shared = self._bases(conn, bases, scopes, period)
            applied = {scope: self._apply(effects, scope, raws[scope]) for scope in scopes}
            rates: dict[str, dict[tuple[str, date], Decimal]] = {
                code: self._rates(
                    conn,
                    [v for s in scopes if currencies[s] == code for v in raws[s].values()],
                    code,
                )
                for code in set(currencies.values())
            }
            freshness = self._freshness(conn)
            found = {
                scope: self._scope_figures(
                    conn,
                    resolved,
                    generic,
                    scope,
                    period,
                    raws[scope],
                    shared[scope],
                    applied[scope],
                    currencies[scope],
                    rates[currencies[scope]],
                    freshness,
                    now,
                )
                for scope in scopes
            }
        return {scope: {name: found[scope][name] for name in wanted} for scope in scopes}

    def standing(self, metrics: Iterable[str], period: Period, *, now: int) -> dict[str, Standing]:
        """Each metric's `Figure.standing` over `period` (the same for every scope), without
        computing its value."""
        with self.engine.connect() as conn:
            freshness = self._freshness(conn)
        found = {}
        for name in metrics:
            metric = self.catalogue.get(name)
            if metric is None:
                raise FigureError(f"unknown metric {name!r}")
            key = metric.key
            sources = self.catalogue.sources(key)
            found[name] = Standing(
                self._provisional(sources, period, now, key), _as_of(sources, freshness)
            )
        return found

    def series(
        self, metric: str, scope: Scope, period: Period, *, now: int, currency: str | None = None
    ) -> list[Figure]:
        """One metric's figure for each day of the period, each equal to `figure(metric, scope,
        day_of(day))`, with the rollups read once for the whole period (by day) instead of once
        per day: a chart's daily series. A metric or scope the rollups do not keep is computed
        day by day."""
        days = [day_of(day, period.timezone) for day in period.dates()]
        definition = self.catalogue.get(metric)
        bases = [] if definition is None else self.catalogue.base_dependencies(definition.key)
        with self.held():
            self._current(sorted(bases), now)  # rebuilding elsewhere: not `_kept`
            if (
                definition is None
                or not bases
                or self.rollups is None
                or any(b not in AXIS_OF for b in bases)
                or not self._kept(scope, period)
            ):
                return [self.figure(metric, scope, day, now=now, currency=currency) for day in days]
            code = currency or self.reporting_currency(scope)
            with self.engine.connect() as conn:
                rows = self._corrections(conn, {definition.key, *bases}, [scope], period)
                effects = self._effects(rows, now)
                raws, shared = self._bases_by_day(conn, sorted(bases), scope, period)
                rates = self._rates(conn, [v for raw in raws.values() for v in raw.values()], code)
                freshness = self._freshness(conn)
                found = []
                for day in days:
                    # A correction counts for a day when it is of that day alone (`_corrections`).
                    own = [e for e in effects if e.last == day.first and e.first >= day.first]
                    applied = self._apply(own, scope, raws[day.first])
                    figures = self._scope_figures(
                        conn,
                        {metric: definition},
                        [],
                        scope,
                        day,
                        raws[day.first],
                        shared[day.first],
                        applied,
                        code,
                        rates,
                        freshness,
                        now,
                    )
                    found.append(figures[metric])
        return found

    def _current(self, bases: Iterable[str], now: int) -> None:
        """Bring the rollups up to date for figures over these base measures (once inside
        `held()`)."""
        if self.rollups is not None and any(b in AXIS_OF for b in bases):
            inside = getattr(self._held, "depth", 0) > 0
            if not (inside and getattr(self._held, "checked", False)):
                # Another process rebuilding them: read the raw rows meanwhile (`_covered`).
                self._held.busy = not self.rollups.try_current(now=now)
                self._held.checked = inside
                if self._held.busy:
                    log.warning("rollups being rebuilt elsewhere: figures from the raw rows")

    @staticmethod
    def _freshness(conn: Any) -> dict[str, int]:
        """When each kind of data was last imported."""
        return dict(
            conn.execute(
                select(_BATCHES.c.kind, func.max(_BATCHES.c.imported_at))
                .where(_BATCHES.c.rows > 0)  # an import still publishing (SQLite) is not in yet
                .group_by(_BATCHES.c.kind)
            ).all()
        )

    # -- corrections ---------------------------------------------------------------------

    def _applies(self, target: str, scope: Scope) -> bool:
        """A person's correction counts for the person, their team and the company; a team's or
        shop's for itself and the company."""
        kind, _, ident = target.partition(":")
        people = self.organisation.people
        return (
            scope.kind == "company"
            or (scope.kind == kind and scope.id == ident)
            or (
                scope.kind == "team"
                and kind == "person"
                and ident in people
                and people[ident].team == scope.id
            )
        )

    def _corrections(
        self, conn: Any, keys: set[str], scopes: list[Scope], period: Period
    ) -> list[Mapping[str, Any]]:
        """The accepted corrections of these metrics inside the period that apply to these
        scopes (usually none: one indexed look-up)."""
        c = _CORRECTIONS
        rows = conn.execute(
            select(c).where(
                c.c.metric.in_(sorted(keys)),
                c.c.day >= period.first,
                c.c.day <= period.last,
            )
        ).mappings()
        return [
            row
            for row in rows
            if (row["first_day"] or row["day"]) >= period.first
            and any(self._applies(row["scope"], scope) for scope in scopes)
        ]

    def _effects(self, found: list[Mapping[str, Any]], now: int) -> list[_Effect]:
        """What each correction adds now: the claimed value less the raw figure of the appealed
        period, until the raw data reaches (or passes) the claimed value — then nothing, so a
        correction never counts twice (docs/metrics.md, "Corrections")."""
        effects = []
        for row in found:
            if not all(storable_amount(row[k]) for k in ("delta", "claimed", "reported")):
                if row["id"] not in _IGNORED:  # said once per process, not per figure
                    _IGNORED.add(row["id"])
                    log.warning("correction %s holds an impossible amount: left out", row["id"])
                continue
            amount = Decimal(row["delta"])
            if row["claimed"] is not None:
                kind, _, ident = str(row["scope"]).partition(":")
                appealed = Period(
                    "custom", row["first_day"] or row["day"], row["day"], row["timezone"]
                )
                scope = Scope(kind, ident)  # type: ignore[arg-type]
                raw = self.uncorrected(
                    row["metric"], scope, appealed, now=now, currency=row["currency"]
                ).value
                amount = still_owed(Decimal(row["claimed"]), Decimal(row["reported"]), raw)
            effects.append(
                _Effect(
                    row["id"],
                    row["metric"],
                    row["scope"],
                    row["first_day"] or row["day"],
                    row["day"],
                    amount,
                    row["currency"],
                )
            )
        return effects

    def _apply(
        self, effects: list[_Effect], scope: Scope, raw: dict[str, _BaseValue]
    ) -> list[_Effect]:
        """Add the effects on base measures to the scope's base values (so every formula over
        them follows); return the effects left for derived or imported metrics, and those
        applied (for the figures' `corrections`)."""
        rest = []
        for effect in effects:
            if not self._applies(effect.scope, scope):
                continue
            metric = self.catalogue.metrics.get(effect.metric)
            if metric is None or metric.formula is not None or effect.metric not in raw:
                rest.append(effect)
                continue
            value = raw[effect.metric]
            if isinstance(value, _Money):
                if effect.currency is None:
                    continue
                minor = Fraction(effect.amount) * 10 ** minor_exponent(effect.currency)
                value.parts[(effect.currency, effect.last)] += minor
            elif value is not None:
                raw[effect.metric] = value + effect.amount
            rest.append(replace(effect, amount=Decimal(0), counted=bool(effect.amount)))
        return rest

    # -- assembling figures ----------------------------------------------------------------

    def _scope_figures(
        self,
        conn: Any,
        resolved: Mapping[str, Metric],
        generic: list[str],
        scope: Scope,
        period: Period,
        raw: Mapping[str, _BaseValue],
        shared: set[str],
        effects: list[_Effect],
        currency: str,
        rates: Mapping[tuple[str, date], Decimal],
        freshness: Mapping[str, int],
        now: int,
    ) -> dict[str, Figure]:
        generic_values = {name: self._generic(conn, name, scope, period) for name in generic}
        missing: set[tuple[str, date]] = set()
        bases = {key: self._convert(value, currency, rates, missing) for key, value in raw.items()}
        values = self.catalogue.evaluate([m.key for m in resolved.values()], bases)
        result: dict[str, Figure] = {}
        for name, metric in resolved.items():
            value = values[metric.key]
            bases_of = self.catalogue.base_dependencies(metric.key)
            parts = {p for b in bases_of if isinstance(m := raw[b], _Money) for p in m.parts}
            lacking = missing & parts
            applied = [e for e in effects if e.metric in bases_of or e.metric == metric.key]
            value = self._add_effects(value, metric.key, metric.unit, applied, currency, lacking)
            result[name] = self._figure(
                metric.key,
                scope,
                period,
                value,
                metric.unit,
                currency,
                self.catalogue.sources(metric.key),
                freshness,
                now,
                tuple(sorted(lacking)),
                shared=bool(shared & bases_of),
                corrections=tuple(sorted({e.id for e in applied if e.adds})),
            )
        for name, value in generic_values.items():
            unit: Unit = "ratio" if name.endswith(("_rate", "_ratio", "_share")) else "decimal"
            applied = [e for e in effects if e.metric == name]
            result[name] = self._figure(
                name,
                scope,
                period,
                self._add_effects(value, name, unit, applied, currency, set()),
                unit,
                currency,
                frozenset({"metric_values"}),
                freshness,
                now,
                (),
                corrections=tuple(sorted({e.id for e in applied if e.adds})),
            )
        return result

    @staticmethod
    def _add_effects(
        value: Decimal | None,
        key: str,
        unit: Unit,
        effects: list[_Effect],
        currency: str,
        missing: set[tuple[str, date]],
    ) -> Decimal | None:
        """Corrections of the figure's own (derived or imported) metric, added to its value; one
        in another currency cannot be converted safely and makes the figure incomplete."""
        for effect in effects:
            if effect.metric != key or not effect.amount:
                continue
            if unit == "money" and effect.currency and effect.currency != currency:
                missing.add((effect.currency, effect.last))
                continue
            value = (value or Decimal(0)) + effect.amount
        return value

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
        *,
        shared: bool = False,
        corrections: tuple[int, ...] = (),
    ) -> Figure:
        return Figure(
            metric=key,
            scope=scope,
            period=period,
            value=value,
            unit=unit,
            currency=currency if unit == "money" else None,
            provisional=self._provisional(sources, period, now, key),
            as_of=_as_of(sources, freshness),
            missing_rates=missing,
            sources=sources,
            unimported=frozenset(s for s in sources if s not in freshness),
            shared=shared,
            corrections=corrections,
            from_raw=self._busy
            and key in self.catalogue.metrics
            and any(b in AXIS_OF for b in self.catalogue.base_dependencies(key)),
        )

    def _imported(
        self, conn: Any, key: str, spec: Imported, scope: Scope, period: Period
    ) -> Decimal | None:
        """An imported metric's value: the scope's own rows, else those it answers for — a
        person's assigned shops, a team's people (else its shops), the company's teams (else
        people, else shops) — added up by the metric's aggregation (docs/metrics.md,
        "Imported metrics")."""
        v = _VALUES
        names = [key] if spec.weight is None else [key, spec.weight]
        for kind, ids in self._imported_owners(scope, period):
            if not ids:
                continue
            rows = conn.execute(
                select(v.c.metric, v.c.entity_id, v.c.date, v.c.value).where(
                    v.c.metric.in_(names),
                    v.c.entity_type == kind,
                    v.c.entity_id.in_(ids),
                    v.c.date >= period.first,
                    v.c.date <= period.last,
                )
            ).all()
            values = {
                (r.entity_id, _as_date(r.date)): Decimal(r.value) for r in rows if r.metric == key
            }
            if values:
                weights = {
                    (r.entity_id, _as_date(r.date)): Decimal(r.value)
                    for r in rows
                    if r.metric == spec.weight
                }
                return aggregate_imported(spec, values, weights)
        return None

    def _imported_owners(self, scope: Scope, period: Period) -> list[tuple[str, list[str]]]:
        """Whose `metric_values` rows make a scope's imported figure, in order of preference."""
        org = self.organisation
        if scope.kind == "shop":
            self._shop(scope.id)  # validates the id
            return [("shop", [scope.id])]
        if scope.kind == "person":
            self._person(scope.id)
            assigned = sorted(  # an operator answers for the shops they are assigned to
                {
                    a.shop
                    for a in org.assignments
                    if a.person == scope.id
                    and a.valid_from <= period.last
                    and (a.valid_to is None or a.valid_to >= period.first)
                }
            )
            return [("person", [scope.id]), ("shop", assigned)]
        shops = [s.id for s in self._shops(scope)]
        people = self._people(scope)
        if scope.kind == "team":
            return [("team", [scope.id]), ("person", people or []), ("shop", shops)]
        return [("team", list(org.teams)), ("person", list(org.people)), ("shop", shops)]

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

    # -- base measures -------------------------------------------------------------------

    def _bases(
        self, conn: Any, keys: list[str], scopes: list[Scope], period: Period
    ) -> tuple[dict[Scope, dict[str, _BaseValue]], dict[Scope, set[str]]]:
        """Every base measure for every scope — from rollups where kept, else from the raw rows
        by the same SQL — and, per scope, the measures part of which is shared credit."""
        found: dict[Scope, dict[str, _BaseValue]] = {scope: {} for scope in scopes}
        shared: dict[Scope, set[str]] = {scope: set() for scope in scopes}
        measures = self.catalogue.measures()
        for key in keys:
            imported = self.catalogue.metrics[key].imported
            if imported is not None:
                for scope in scopes:
                    found[scope][key] = self._imported(conn, key, imported, scope, period)
            elif measures[key].by_day:
                for scope in scopes:
                    found[scope][key] = self._by_day(conn, key, measures[key], scope, period)
        rolled = [key for key in keys if key in AXIS_OF]
        people = [s for s in scopes if s.kind == "person"]
        totals = [s for s in scopes if s.kind != "person"]
        shop_ids = {scope: [shop.id for shop in self._shops(scope)] for scope in totals}
        # Each person or shop is read from the rollups where they are kept in the period's
        # zone, else from the raw rows by the same SQL: the two agree, so they mix freely.
        all_shops = sorted({i for ids in shop_ids.values() for i in ids})
        kept_shops = [i for i in all_shops if self._covered("shop", i, period)]
        raw_shops = [i for i in all_shops if i not in kept_shops]
        kept_people = [s.id for s in people if self._covered("person", s.id, period)]
        raw_people = [s.id for s in people if s.id not in kept_people]
        for axis in {AXIS_OF[key]: None for key in rolled}:
            keys_of = [key for key in rolled if AXIS_OF[key] is axis]
            where = (axis, period.timezone, period.first, period.last)
            by_person = self._read(conn, *where, people=kept_people) if kept_people else {}
            by_shop = self._read(conn, *where, shops=kept_shops) if kept_shops else {}
            if raw_people:
                by_person.update(self._raw_people(conn, axis, period, raw_people))
            if raw_shops:
                by_shop.update(self._raw_shops(conn, axis, period, raw_shops))
            for scope in people + totals:
                parts = (
                    [by_person.get(scope.id, {})]
                    if scope.kind == "person"
                    else [by_shop.get(shop, {}) for shop in shop_ids[scope]]
                )
                self._from_parts(keys_of, axis, parts, found[scope], shared[scope])
        return found, shared

    def _from_parts(
        self,
        keys: Iterable[str],
        axis: Axis,
        parts: list[Sums],
        found: dict[str, _BaseValue],
        shared: set[str],
    ) -> None:
        """The base measures `keys` of one axis from the rollup sums of an entity's parts (a
        person, or a scope's shops) into `found`, noting in `shared` those with shared
        credit."""
        for key in keys:
            metric = self.catalogue.metrics[key]
            assert metric.measure is not None  # a rolled-up key is a base measure
            value, is_shared = _from_sums(
                axis.value(key),
                metric.unit == "money",
                metric.measure.per,
                parts,
                split=self.split_credit,
            )
            found[key] = value
            if is_shared:
                shared.add(key)

    def _bases_by_day(
        self, conn: Any, keys: list[str], scope: Scope, period: Period
    ) -> tuple[dict[date, dict[str, _BaseValue]], dict[date, set[str]]]:
        """`_bases` for one scope kept in the rollups, for each day of the period apart: one
        rollup read per axis."""
        dates = period.dates()
        found: dict[date, dict[str, _BaseValue]] = {day: {} for day in dates}
        shared: dict[date, set[str]] = {day: set() for day in dates}
        owners = [scope.id] if scope.kind == "person" else [s.id for s in self._shops(scope)]
        for axis in {AXIS_OF[key]: None for key in keys}:
            where = (axis, period.timezone, period.first, period.last)
            sums = (
                read_days(conn, *where, people=owners)
                if scope.kind == "person"
                else read_days(conn, *where, shops=owners)
            )
            keys_of = [key for key in keys if AXIS_OF[key] is axis]
            for day in dates:
                parts = [sums.get((owner, day), {}) for owner in owners]
                self._from_parts(keys_of, axis, parts, found[day], shared[day])
        return found, shared

    def _read(
        self,
        conn: Any,
        axis: Axis,
        zone_name: str,
        first: date,
        last: date,
        *,
        people: Sequence[str] = (),
        shops: Sequence[str] = (),
    ) -> dict[str, Sums]:
        """`rollups.read`, remembered inside `held()` (one state of the rollups) for the
        figures that ask the same again; the caller may add to the dict it gets."""
        if getattr(self._held, "depth", 0) == 0:
            return read_rollups(conn, axis, zone_name, first, last, people=people, shops=shops)
        reads = getattr(self._held, "reads", None)
        if reads is None:
            reads = self._held.reads = OrderedDict()
        key = (axis.name, zone_name, first, last, tuple(people), tuple(shops))
        if key in reads:
            reads.move_to_end(key)
        else:
            reads[key] = read_rollups(
                conn, axis, zone_name, first, last, people=people, shops=shops
            )
            if len(reads) > _KEPT_READS:  # a digest round reads hundreds: keep memory flat
                reads.popitem(last=False)
        return dict(reads[key])

    def _kept(self, scope: Scope, period: Period) -> bool:
        """True when the scope's rollups are kept in the period's zone."""
        if scope.kind == "person":
            self._person(scope.id)  # validates the id
            return self._covered("person", scope.id, period)
        return all(self._covered("shop", s.id, period) for s in self._shops(scope))

    def _covered(self, kind: str, ident: str, period: Period) -> bool:
        return (
            self.rollups is not None
            and not self._busy
            and self.rollups.covers(kind, [ident], period.timezone)
        )

    @property
    def _busy(self) -> bool:
        """True while another process rebuilds the rollups (as found by `_current`)."""
        return bool(getattr(self._held, "busy", False))

    def _by_zone(self, shops: Iterable[str]) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = defaultdict(list)
        for shop in sorted(shops):
            grouped[self.organisation.shops[shop].timezone].append(shop)
        return grouped

    @property
    def _effective_live_seconds(self) -> int:
        return self.organisation.settings.effective_live_minutes * 60

    def _raw_shops(
        self, conn: Any, axis: Axis, period: Period, shops: list[str]
    ) -> dict[str, Sums]:
        """Shops' own sums over the period, by the rollup's SQL run over the period alone."""
        zone_name, (start, end) = period.timezone, period.bounds()
        found: dict[str, Sums] = defaultdict(dict)
        for shop_zone, members in self._by_zone(shops).items():
            for a, b, offsets in segments([zone_name, shop_zone], start, end):
                segment = Segment(
                    axis,
                    a,
                    b,
                    {zone_name: (start, end)},
                    offsets,
                    shop_zone,
                    effective_live_seconds=self._effective_live_seconds,
                )
                query = text(segment.shop_rows()).bindparams(bindparam("shops", expanding=True))
                for row in conn.execute(query, {"zone": zone_name, "shops": members}).mappings():
                    _add_row(found[row["shop_id"]], row)
        return found

    def _raw_people(
        self, conn: Any, axis: Axis, period: Period, people: list[str]
    ) -> dict[str, Sums]:
        """People's sums over the period, by the rollup's SQL with the attribution chain (and
        the hosts' split) as common table expressions instead of the rollups' tables."""
        zone_name, (start, end) = period.timezone, period.bounds()
        dialect = conn.dialect.name
        tail = self.organisation.settings.attribution.live_tail_minutes * 60
        longest = conn.execute(text("SELECT MAX(end_time - start_time) FROM live_sessions"))
        reach = int(longest.scalar() or 0) + tail
        zones = values_cte(
            "zones", ("kind", "id", "zone"), [("person", p, zone_name) for p in people]
        )
        windows = values_cte(
            "windows",
            ("person", "shop_id", "start_time:BIGINT", "end_time:BIGINT"),
            [
                (w["person"], w["shop_id"], w["start_time"], w["end_time"])
                for w in credit_windows(self.organisation)
            ],
        )
        found: dict[str, Sums] = defaultdict(dict)
        for shop_zone, members in self._by_zone(self.organisation.shops).items():
            for a, b, offsets in segments([zone_name, shop_zone], start, end):
                segment = Segment(
                    axis,
                    a,
                    b,
                    {zone_name: (start, end)},
                    offsets,
                    shop_zone,
                    CTES,
                    self._effective_live_seconds,
                )
                if axis.credit == "hosts":
                    lives = f"shop_id IN :shops AND start_time >= {a} AND start_time < {b}"
                    ctes = hosts_ctes(dialect, lives)
                else:
                    base, chain = credits_ctes(a, b, tail, reach, "hosts", "windows")
                    near = (
                        f"shop_id IN :shops AND start_time > (SELECT MIN(create_time) FROM base) "
                        f"- {reach} AND start_time <= (SELECT MAX(create_time) FROM base)"
                    )
                    ctes = f"{base}, {hosts_ctes(dialect, near)}, {windows}, {chain}"
                sql = f"WITH RECURSIVE {ctes}, {zones} {segment.person_rows()}"
                query = text(sql).bindparams(bindparam("shops", expanding=True))
                for row in conn.execute(query, {"shops": members}).mappings():
                    _add_row(found[row["owner"]], row)
        return found

    def _by_day(
        self, conn: Any, key: str, measure: Measure, scope: Scope, period: Period
    ) -> _BaseValue:
        """A measure of a table keyed by local date (ad spend, shop traffic), for the dates of
        the period; credited by the row's person, or by its shop."""
        where = [*measure.where, f"{measure.time} >= :first", f"{measure.time} <= :last"]
        params: dict[str, Any] = {"first": period.first, "last": period.last}
        if measure.credit == "person":
            if scope.kind == "shop":
                return None  # ad accounts are tied to people, not shops
            people = self._people(scope)
            if people is not None:
                where.append("t.person_id IN :people")
                params["people"] = people
        else:  # shop-level data: people have none
            if scope.kind == "person":
                return None
            column = "t.entity_id" if measure.table == "metric_values" else "t.shop_id"
            where.append(f"{column} IN :shops")
            params["shops"] = [shop.id for shop in self._shops(scope)]
        condition = " AND ".join(where)
        money = self.catalogue.metrics[key].unit == "money"
        if money:
            sql = (
                f"SELECT t.currency, {measure.time}, SUM({measure.value}) FROM {measure.table} t "
                f"WHERE {condition} GROUP BY t.currency, {measure.time}"
            )
        else:  # metric_values hold exact decimal text: added up here, not by the database
            sql = f"SELECT {measure.value} FROM {measure.table} t WHERE {condition}"
        query = text(sql).bindparams(bindparam("first", type_=Date), bindparam("last", type_=Date))
        for name in ("people", "shops"):
            if name in params:
                query = query.bindparams(bindparam(name, expanding=True))
        rows = conn.execute(query, params).all()
        if money:
            total = _Money()
            for currency, day, amount in rows:
                if amount:
                    total.parts[(currency, _as_date(day))] += int(amount)
            return total
        if not rows:
            return Decimal(0)
        return sum((Decimal(str(value)) for (value,) in rows), Decimal(0)) / measure.per

    def shop_traffic_covers(self, scope: Scope, periods: Iterable[Period]) -> bool:
        """True when every shop of the scope has its traffic (`shop_visitors`) imported for
        every day of the periods (one query)."""
        if scope.kind == "person":
            return False
        shops = [shop.id for shop in self._shops(scope)]
        days = {day for period in periods for day in period.dates()}
        if not shops or not days:
            return False
        v = _VALUES
        with self.engine.connect() as conn:
            counts: dict[Any, int] = dict(
                conn.execute(
                    select(v.c.date, func.count())
                    .where(
                        v.c.metric == "shop_visitors",
                        v.c.entity_type == "shop",
                        v.c.entity_id.in_(shops),
                        v.c.date >= min(days),
                        v.c.date <= max(days),
                    )
                    .group_by(v.c.date)
                ).all()
            )
        found = {_as_date(day): count for day, count in counts.items()}
        return all(found.get(day, 0) >= len(shops) for day in days)

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

    # -- settlement ----------------------------------------------------------------------

    def _provisional(
        self, sources: frozenset[Source], period: Period, now: int, key: str | None = None
    ) -> bool:
        """True until the settlement lag of each source behind the figure has passed for the
        whole period (an imported metric may have its own lag instead of metric_values')."""
        lags = self.organisation.settings.settlement_lag_days
        days = {getattr(lags, source) for source in sources}
        if key is not None and key in self.catalogue.metrics:
            days = set()
            for base in self.catalogue.base_dependencies(key):
                metric = self.catalogue.metrics[base]
                if metric.imported is not None and metric.imported.lag_days is not None:
                    days.add(metric.imported.lag_days)
                elif metric.source is not None:
                    days.add(getattr(lags, metric.source))
        end = period.bounds()[1]
        return any(now < end + lag * 86400 for lag in days)

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
        with localcontext() as context:
            context.prec = PRECISION
            for (code, day), minor in value.parts.items():
                amount = _decimal(minor).scaleb(-minor_exponent(code))
                if code == currency:
                    total += amount
                elif (code, day) in rates:
                    total += amount * rates[(code, day)]
                else:
                    missing.add((code, day))
        return total


def still_owed(claimed: Decimal, reported: Decimal, raw: Decimal | None) -> Decimal:
    """What an accepted claim still adds to the raw figure of its period: the difference until
    the raw data reaches the claimed value in the claim's direction, then nothing."""
    current = raw if raw is not None else Decimal(0)
    if claimed > reported:
        return max(claimed - current, Decimal(0))
    if claimed < reported:
        return min(claimed - current, Decimal(0))
    return Decimal(0)


def _add_row(sums: Sums, row: Mapping[str, Any]) -> None:
    """Add one generated rollup row (read back instead of stored) to a scope's sums."""
    key = (str(row["currency"]), from_epoch_day(int(row["fx_day"])), int(row["shares"]))
    values = [int(row[v] or 0) for v in ("v0", "v1", "v2", "v3", "v4", "v5")]
    if key in sums:
        sums[key] = [a + b for a, b in zip(sums[key], values, strict=True)]
    else:
        sums[key] = values


def _from_sums(
    index: int, money: bool, per: int, parts: Iterable[Sums], *, split: bool
) -> tuple[_BaseValue, bool]:
    """A base measure from rollup sums (or generated rows), and whether part of it is shared
    credit; with `split`, rows credited to n people count 1/n."""
    # Whole amounts are added as integers, and each divisor's sum divided once: the same
    # exact result as a Fraction per row, without tens of thousands of Fractions on a page.
    shared = False
    by_divisor: dict[tuple[str, date, int], int] = defaultdict(int)
    for sums in parts:
        for (currency, day, shares), values in sums.items():
            value = values[index]
            if value:
                shared = shared or shares > 1
                divisor = shares if split else 1
                by_divisor[(currency, day, divisor) if money else ("", date.min, divisor)] += value
    if money:
        total = _Money()
        for (currency, day, divisor), value in by_divisor.items():
            total.parts[(currency, day)] += value if divisor == 1 else Fraction(value, divisor)
        return total, shared
    whole = sum(value for (_, _, divisor), value in by_divisor.items() if divisor == 1)
    count = sum(
        (Fraction(value, d) for (_, _, d), value in by_divisor.items() if d != 1), Fraction(whole)
    )
    return _decimal(count / per), shared


def _decimal(value: Fraction | int) -> Decimal:
    """An exact fraction as a Decimal (34 significant digits where it does not terminate)."""
    if isinstance(value, int):
        return Decimal(value)
    value = Fraction(value)
    if value.denominator == 1:
        return Decimal(value.numerator)
    with localcontext() as context:
        context.prec = PRECISION
        return Decimal(value.numerator) / Decimal(value.denominator)


def _as_of(sources: frozenset[Source], freshness: Mapping[str, int]) -> int | None:
    times = [freshness.get(source) for source in sources]
    return None if any(t is None for t in times) else min(t for t in times if t is not None)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
