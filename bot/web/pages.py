"""What each dashboard page shows, computed from the engine under the reader's permissions.

Figures come from the same engine calls chat makes (`Figures`, `Plans.progress`,
`scoring.scorecard`, `Figures.explain`, `kpi_engine.compare.movers`), who may see what from the
one access policy (`bot.chat.access.Access`), and every word from the message catalogues in the
reader's language; numbers, money and dates are written by `bot.i18n.format`. A page is a dict
for its template: strings already written for the reader, and the chart's series as numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from bot.chat.access import Access
from bot.i18n import MissingText, Texts, texts
from bot.i18n.format import day as day_text
from bot.i18n.format import moment, money, number, percent
from bot.i18n.format import pace as pace_text
from kpi_engine.alerts import AlertRow
from kpi_engine.annotations import notes
from kpi_engine.appeals import OPEN as APPEAL_OPEN
from kpi_engine.appeals import AppealRow
from kpi_engine.audit import AuditEntry
from kpi_engine.compare import Delta, movers
from kpi_engine.figures import Figure, Figures, Standing
from kpi_engine.freshness import last_imports, shop_freshness
from kpi_engine.languages import Language
from kpi_engine.organisation import Organisation, PersonConfig
from kpi_engine.periods import (
    Period,
    PeriodError,
    day_of,
    earlier_period,
    month_of,
    today,
    week_of,
)
from kpi_engine.scopes import Scope
from kpi_engine.scoring import scorecard
from kpi_engine.targets import Plans, Progress

PERIOD_KINDS = ("day", "week", "month", "custom")
MAX_CUSTOM_DAYS = 92
ROLES = ("streamer", "operator", "ad_buyer", "editor", "cs", "manager", "admin")
# One metric per data source: its figure says whether that source is settled for the period
# and when it was last imported.
SOURCE_METRICS = (
    ("orders", "gmv"),
    ("refunds", "refund_amount"),
    ("live_sessions", "views"),
    ("ad_spend", "ad_spend"),
)
TEAM_METRICS = ("gmv", "orders", "aov", "refund_rate")


@dataclass(frozen=True)
class Reader:
    """Who is looking: the signed-in person, in their language."""

    person: PersonConfig
    language: Language
    t: Texts


def reader_of(organisation: Organisation, person: PersonConfig) -> Reader:
    """The reader for `person`: their configured language (else their team's)."""
    language = organisation.language_of(person)
    return Reader(person, language, texts(language))


@dataclass(frozen=True)
class Choice:
    """The period picked: its kind (day, week, month, custom), the day it was picked around,
    and the period itself in the page's time zone."""

    kind: str
    anchor: date
    period: Period

    def query(self) -> dict[str, str]:
        """The picker's fields that select this period again."""
        if self.kind == "custom":
            return {
                "p": "custom",
                "from": self.period.first.isoformat(),
                "to": self.period.last.isoformat(),
            }
        return {"p": self.kind, "d": self.anchor.isoformat()}


def _date(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{name} must be a date such as 2026-11-24, not {text[:20]!r}") from None


def choose_period(
    params: Mapping[str, str],
    *,
    now: int,
    timezone: str,
    week_start: str,
    default: str = "month",
) -> Choice:
    """The period the picker's fields (`p`, `d`, `from`, `to`) ask for, in `timezone`; the
    default kind around today when none is given. PeriodError for anything else."""
    kind = params.get("p") or default
    if kind not in PERIOD_KINDS:
        raise PeriodError(f"p must be one of {', '.join(PERIOD_KINDS)}")
    current = today(now, timezone)
    if kind == "custom":
        first = _date(params.get("from", ""), "from")
        last = _date(params.get("to", ""), "to")
        if last < first or (last - first).days >= MAX_CUSTOM_DAYS:
            raise PeriodError(f"a custom period runs forward, at most {MAX_CUSTOM_DAYS} days")
        return Choice(kind, first, Period("custom", first, last, timezone))
    anchor = _date(params["d"], "d") if params.get("d") else current
    if abs((anchor - current).days) > 3660:
        raise PeriodError("d is too far from today")
    if kind == "day":
        period = day_of(anchor, timezone)
    elif kind == "week":
        period = week_of(anchor, timezone, week_start)  # type: ignore[arg-type]
    else:
        period = month_of(anchor, timezone)
    return Choice(kind, anchor, period)


# -- writing values -------------------------------------------------------------------------


def metric_name(organisation: Organisation, metric: str, reader: Reader) -> str:
    """A metric's name for the reader: the catalogue's `web.metric.*` text, else the
    configured name (custom metrics have theirs in the organisation's config)."""
    try:
        return reader.t(f"web.metric.{metric}")
    except MissingText:
        found = organisation.catalogue.metrics.get(metric)
        if found is None:
            return metric
        return found.name(reader.language)


def value_text(value: Decimal | None, unit: str, currency: str | None, reader: Reader) -> str:
    """A figure's value as the reader's locale writes it."""
    if unit == "money" and currency:
        return money(value, currency, reader.language)
    if unit == "ratio":
        return percent(value, reader.language, places=1)
    if unit == "seconds":
        if value is None:
            return number(None, reader.language)
        return reader.t("web.unit.seconds", value=number(value, reader.language))
    if unit == "count":
        return number(value, reader.language)
    return number(value, reader.language, places=2)


def change_text(delta: Delta, unit: str, currency: str | None, reader: Reader) -> str:
    """A change against the previous period, signed."""
    change = delta.change
    if change is None:
        return "—"
    sign = "+" if change > 0 else ""
    if unit == "ratio":
        return reader.t(
            "web.change.points", value=sign + number(change * 100, reader.language, places=1)
        )
    return sign + value_text(change, unit, currency, reader)


def period_text(period: Period, reader: Reader) -> str:
    """A period as people write it: one day, or its first and last days."""
    if period.first == period.last:
        return day_text(period.first, reader.language)
    return reader.t(
        "web.period.range",
        first=day_text(period.first, reader.language),
        last=day_text(period.last, reader.language),
    )


def _ratio_value(value: Decimal | None) -> str:
    """A ratio for a <meter>: 0..1.5, as plain text."""
    if value is None:
        return "0"
    return str(min(max(value, Decimal(0)), Decimal("1.5")).quantize(Decimal("0.001")))


def stat(
    organisation: Organisation, progress: Progress, reader: Reader, *, label: str | None = None
) -> dict[str, Any]:
    """One figure against its target, written for the reader."""
    figure = progress.figure
    unit, currency = figure.unit, figure.currency
    return {
        "label": label or metric_name(organisation, figure.metric, reader),
        "value": value_text(figure.value, unit, currency, reader),
        "target": value_text(progress.target, unit, currency, reader)
        if progress.target is not None
        else None,
        "achievement": percent(progress.achievement, reader.language),
        "achievement_ratio": _ratio_value(progress.achievement),
        "pace": pace_text(progress, reader.language),
        "expected": value_text(progress.expected, unit, currency, reader)
        if progress.expected is not None
        else None,
        "projection": value_text(progress.projection, unit, currency, reader)
        if progress.projection is not None
        else None,
        "pilot": progress.pilot,
        "status": _status(progress),
        "trust": trust_line(figure, reader),
    }


def _status(progress: Progress) -> str:
    """ "ahead", "close", "behind" or "none": how the figure stands against its plan (none
    while it is too early for a pace: a few hours into the day everyone is "behind" the whole
    day's target)."""
    if progress.early:
        return "none"
    ratio = progress.pace if progress.pace is not None else progress.achievement
    if ratio is None:
        return "none"
    if ratio >= 1:
        return "ahead"
    return "close" if ratio >= Decimal("0.8") else "behind"


def trust_line(figure: Figure, reader: Reader) -> str:
    """Provisional or settled, as of when, FX gaps: what the reader needs to trust a figure."""
    t = reader.t
    parts = [t("web.trust.provisional") if figure.provisional else t("web.trust.settled")]
    if figure.as_of is not None:
        parts.append(
            t(
                "web.trust.as_of",
                moment=moment(figure.as_of, figure.period.timezone, reader.language),
                timezone=figure.period.timezone,
            )
        )
    if figure.missing_rates:
        parts.append(t("web.trust.missing_fx"))
    if figure.unimported:
        parts.append(t("web.trust.unimported"))
    return " · ".join(parts)


# -- the pages ------------------------------------------------------------------------------


class Pages:
    """Computes the dashboard's pages for one organisation, reading the same engine as chat."""

    def __init__(self, organisation: Organisation, figures: Figures, plans: Plans) -> None:
        self.organisation = organisation
        self.figures = figures
        self.plans = plans
        self.access = Access(organisation)

    # -- who may see what (the access policy, asked, never restated) ----------------------

    def may_see(self, reader: Reader, scope: Scope) -> bool:
        """May the reader see this scope's numbers?"""
        return self.access.can_see(reader.person, scope)

    def is_admin(self, reader: Reader) -> bool:
        """Admins see the company page and the audit trail."""
        return self.access.can_see(reader.person, Scope("company"))

    def name_of(self, scope: Scope) -> str:
        """A scope as people call it."""
        org = self.organisation
        if scope.kind == "person":
            return org.people[scope.id].name
        if scope.kind == "team":
            return org.teams[scope.id].name
        if scope.kind == "shop":
            return org.shops[scope.id].name
        return org.settings.name

    def navigation(self, reader: Reader) -> list[dict[str, str]]:
        """The places the reader may go: their page, the teams they may see, the company."""
        t = reader.t
        items = [{"href": "/dashboard/me", "label": t("web.nav.me"), "key": "me"}]
        for team in self.organisation.teams.values():
            if self.may_see(reader, Scope("team", team.id)):
                items.append(
                    {"href": f"/dashboard/teams/{team.id}", "label": team.name, "key": team.id}
                )
        if self.is_admin(reader):
            items.append(
                {"href": "/dashboard/company", "label": t("web.nav.company"), "key": "company"}
            )
            items.append({"href": "/dashboard/audit", "label": t("web.nav.audit"), "key": "audit"})
        return items

    # -- series ------------------------------------------------------------------------

    def daily_series(
        self, scope: Scope, period: Period, reader: Reader, *, now: int
    ) -> dict[str, Any]:
        """Each day's GMV against its daily target over the period (up to today), with the
        notes of those days: the chart's data."""
        last = min(period.last, today(now, period.timezone))
        labels, actual, target = [], [], []
        if last >= period.first:
            # One rollup read for the whole series, not one figure per day.
            shown = Period("custom", period.first, last, period.timezone)
            for figure in self.figures.series("gmv", scope, shown, now=now):
                progress = self.plans.progress(figure, now)
                labels.append(figure.period.first.strftime("%m-%d"))
                actual.append(_number(figure.value))
                target.append(_number(progress.target))
        entities = ["company"] + ([f"{scope.kind}:{scope.id}"] if scope.kind != "company" else [])
        if scope.kind == "person":
            entities.append(f"team:{self.organisation.people[scope.id].team}")
        marks = [
            {"day": n.day.strftime("%m-%d"), "text": n.text}
            for n in notes(self.figures.engine, entities, period.first, last)
        ]
        return {
            "labels": labels,
            "actual": actual,
            "target": target,
            "notes": marks,
            "names": {
                "actual": metric_name(self.organisation, "gmv", reader),
                "target": reader.t("web.chart.target"),
            },
            "currency": self.figures.reporting_currency(scope),
        }

    # -- me ----------------------------------------------------------------------------

    def person_page(
        self, reader: Reader, person_id: str, choice: Choice, *, now: int
    ) -> dict[str, Any]:
        """A person's page: today and the chosen period against target with pace, the daily
        chart, the scorecard with its bonus preview; their appeals and alerts come from the
        routes (which hold the services)."""
        org = self.organisation
        person = org.people[person_id]
        scope = Scope("person", person_id)
        timezone = choice.period.timezone
        with self.figures.held():
            today_figure = self.figures.figure(
                "gmv", scope, day_of(today(now, timezone), timezone), now=now
            )
            period_figures = self.figures.figures(TEAM_METRICS, scope, choice.period, now=now)
        today_progress = self.plans.progress(today_figure, now)
        period_stats = [
            stat(org, self.plans.progress(f, now), reader) for f in period_figures.values()
        ]
        peers = [
            Scope("person", p.id)
            for p in org.people.values()
            if p.team == person.team and p.role == person.role
        ]
        ranked = self.figures.ranking("gmv", peers, choice.period, now=now)
        mine = next((r for r in ranked if r.entity == person_id), None)
        place = None
        if mine is not None and mine.rank is not None:
            place = reader.t(
                "web.me.rank", rank=mine.rank, total=sum(1 for r in ranked if r.rank is not None)
            )
        return {
            "person": person,
            "team": org.teams[person.team],
            "today": stat(org, today_progress, reader, label=reader.t("web.me.today")),
            "period_stats": period_stats,
            "place": place,
            "scorecard": self.scorecard_view(reader, person_id, choice.period, now=now),
            "series": self.daily_series(scope, choice.period, reader, now=now),
        }

    def scorecard_view(
        self, reader: Reader, person_id: str, period: Period, *, now: int
    ) -> dict[str, Any] | None:
        """The role scorecard: each item's points, the score, and the bonus with its reason."""
        org = self.organisation
        card = scorecard(self.figures, self.plans, person_id, period, now=now)
        if card is None:
            return None
        t, language = reader.t, reader.language
        currency = self.figures.reporting_currency(Scope("person", person_id))
        rule = next(r for r in org.scorecards if r.role == card.role)
        items = []
        for item in card.items:
            progress = item.progress
            items.append(
                {
                    "metric": metric_name(org, item.item.metric, reader),
                    "weight": number(item.item.weight, language),
                    "value": "—"
                    if progress is None
                    else value_text(
                        progress.figure.value,
                        progress.figure.unit,
                        progress.figure.currency,
                        reader,
                    ),
                    "target": "—"
                    if progress is None or progress.target is None
                    else value_text(
                        progress.target, progress.figure.unit, progress.figure.currency, reader
                    ),
                    "achievement": percent(item.achievement, language),
                    "points": number(item.points, language, places=1),
                }
            )
        reasons = []
        if card.score is None:
            reasons.append(t("web.bonus.incomplete"))
        elif card.failed_gates:
            gates = ", ".join(metric_name(org, g.metric, reader) for g in card.failed_gates)
            reasons.append(t("web.bonus.gate", metrics=gates))
        else:
            reached = [tier for tier in rule.tiers if card.score >= tier.min_score]
            if reached:
                best = max(reached, key=lambda tier: tier.amount)
                reasons.append(
                    t(
                        "web.bonus.tier",
                        score=number(card.score, language, places=1),
                        minimum=number(best.min_score, language),
                        amount=money(best.amount, currency, language),
                    )
                )
            elif rule.tiers:
                lowest = min(tier.min_score for tier in rule.tiers)
                reasons.append(t("web.bonus.no_tier", minimum=number(lowest, language)))
            if rule.commission is not None and card.commission:
                reasons.append(
                    t(
                        "web.bonus.commission",
                        percent=number(rule.commission.percent, language, places=1),
                        metric=metric_name(org, rule.commission.metric, reader),
                        above=money(rule.commission.above, currency, language),
                        amount=money(card.commission, currency, language),
                    )
                )
        if card.pilot:
            reasons.append(t("web.bonus.pilot"))
        return {
            "items": items,
            "score": number(card.score, language, places=1),
            "bonus": money(card.bonus, currency, language),
            "reasons": reasons,
            "provisional": card.provisional,
        }

    # -- team --------------------------------------------------------------------------

    def team_page(
        self, reader: Reader, team_id: str, choice: Choice, role: str, *, now: int
    ) -> dict[str, Any]:
        """A team's page: its figures against target, the ranking (as the reader may see it)
        with movers, the daily chart with notes, why GMV moved, breakdowns by shop, person and
        channel, and each source's settlement and freshness."""
        org = self.organisation
        t, language = reader.t, reader.language
        team = org.teams[team_id]
        scope = Scope("team", team_id)
        period = choice.period
        show = self.access.ranking_values(reader.person, team_id)
        with self.figures.held():
            team_figures = self.figures.figures(
                [*TEAM_METRICS, "live_gmv", *(m for _, m in SOURCE_METRICS)],
                scope,
                period,
                now=now,
            )
            people = [
                Scope("person", p.id)
                for p in org.people.values()
                if p.team == team_id and p.role == role
            ]
            # A period under way is compared with as many days of the one before (as in chat).
            earlier = earlier_period(period, "previous", now)
            ranked = self.figures.ranking("gmv", people, period, now=now)
            before = self.figures.ranking("gmv", people, earlier, now=now)
            explanation = self.figures.explain(scope, period, now=now, previous=earlier)
            shops = [Scope("shop", s.id) for s in org.shops.values() if s.team == team_id]
            shop_figures = self.figures.figures_of(["gmv", "orders"], shops, period, now=now)
        currency = self.figures.reporting_currency(scope)
        values_before = {r.entity: r.value for r in before}
        deltas = {r.entity: Delta(values_before.get(r.entity), r.value) for r in ranked}
        ranking = []
        for row in ranked:
            own = row.entity == reader.person.id
            if show == "own" and not own:
                continue
            visible = show == "values" or own
            ranking.append(
                {
                    "rank": str(row.rank) if row.rank is not None else "—",
                    "name": org.people[row.entity].name,
                    "you": own,
                    "value": money(row.value, currency, language) if visible else None,
                    "change": change_text(deltas[row.entity], "money", currency, reader)
                    if visible
                    else None,
                    "href": f"/dashboard/people/{row.entity}"
                    if self.may_see(reader, Scope("person", row.entity)) and not own
                    else ("/dashboard/me" if own else None),
                }
            )
        risers, fallers = movers(deltas) if show == "values" else ([], [])

        def moved(rows: Iterable[tuple[str, Delta]]) -> list[dict[str, str]]:
            return [
                {
                    "name": org.people[entity].name,
                    "change": change_text(delta, "money", currency, reader),
                }
                for entity, delta in rows
            ]

        drivers = None
        if explanation is not None:
            names = {
                "traffic": t("web.why.traffic"),
                "conversion": t("web.why.conversion"),
                "aov": t("web.why.aov"),
                "orders": t("web.why.orders"),
            }
            units = {"traffic": "count", "conversion": "ratio", "aov": "money", "orders": "count"}
            drivers = {
                "before": money(explanation.before, currency, language),
                "after": money(explanation.after, currency, language),
                "change": change_text(
                    Delta(explanation.before, explanation.after), "money", currency, reader
                ),
                "biggest": names.get(explanation.biggest.name) if explanation.biggest else None,
                "rows": [
                    {
                        "name": names.get(d.name, d.name),
                        "before": value_text(
                            d.before, units.get(d.name, "count"), currency, reader
                        ),
                        "after": value_text(d.after, units.get(d.name, "count"), currency, reader),
                        "effect": change_text(
                            Delta(Decimal(0), d.contribution), "money", currency, reader
                        ),
                    }
                    for d in explanation.drivers
                ],
                "previous": period_text(earlier, reader),
            }
        gmv, live = team_figures["gmv"].value, team_figures["live_gmv"].value
        channels = [
            {"name": t("web.channel.live"), "value": money(live, currency, language)},
            {
                "name": t("web.channel.other"),
                "value": money(
                    None if gmv is None or live is None else gmv - live, currency, language
                ),
            },
        ]
        by_shop = [
            {
                "name": org.shops[s.id].name,
                "platform": org.shops[s.id].platform,
                "gmv": value_text(f["gmv"].value, "money", f["gmv"].currency, reader),
                "orders": number(f["orders"].value, language),
                "trust": trust_line(f["gmv"], reader),
            }
            for s, f in shop_figures.items()
        ]
        by_person = None
        if show == "values":
            by_person = [
                {"name": r["name"], "value": r["value"]} for r in ranking if r["value"] != "—"
            ]
        found_notes = notes(
            self.figures.engine, ["company", f"team:{team_id}"], period.first, period.last
        )
        return {
            "team": team,
            "stats": [
                stat(org, self.plans.progress(team_figures[m], now), reader) for m in TEAM_METRICS
            ],
            "role": role,
            "roles": [
                r
                for r in ROLES
                if any(p.team == team_id and p.role == r for p in org.people.values())
            ],
            "show": show,
            "ranking": ranking,
            "risers": moved(risers),
            "fallers": moved(fallers),
            "why": drivers,
            "channels": channels,
            "by_shop": by_shop,
            "by_person": by_person,
            "notes": [
                {
                    "day": day_text(n.day, language),
                    "text": n.text,
                    "author": org.people[n.author].name if n.author in org.people else n.author,
                }
                for n in found_notes
            ],
            "sources": self.sources(
                {m: f.standing for m, f in team_figures.items()},
                reader,
                now=now,
                timezone=period.timezone,
            ),
            "shop_sync": self.shop_sync([s.id for s in shops], reader, timezone=team.timezone),
            "series": self.daily_series(scope, period, reader, now=now),
        }

    def sources(
        self, found: Mapping[str, Standing], reader: Reader, *, now: int, timezone: str
    ) -> list[dict[str, Any]]:
        """Per data source: provisional or settled for the period, last imported, silent?"""
        limits = self.organisation.settings.freshness_hours
        rows = []
        for source, metric in SOURCE_METRICS:
            figure = found[metric]
            silent = (
                figure.as_of is not None and now - figure.as_of > getattr(limits, source) * 3600
            )
            rows.append(
                {
                    "name": reader.t(f"web.source.{source}"),
                    "settled": reader.t("web.trust.provisional")
                    if figure.provisional
                    else reader.t("web.trust.settled"),
                    "as_of": moment(figure.as_of, timezone, reader.language)
                    if figure.as_of is not None
                    else reader.t("web.source.never"),
                    "silent": silent,
                }
            )
        return rows

    def shop_sync(
        self, shop_ids: list[str], reader: Reader, *, timezone: str
    ) -> list[dict[str, Any]]:
        """Each synced shop's sources: last caught-up sync, data up to, rows, errors."""
        wanted = set(shop_ids)
        rows = []
        for entry in shop_freshness(self.figures.engine):
            if entry.shop_id not in wanted:
                continue

            def when(at: int | None) -> str:
                return "—" if at is None else moment(at, timezone, reader.language)

            rows.append(
                {
                    "shop": self.organisation.shops[entry.shop_id].name
                    if entry.shop_id in self.organisation.shops
                    else entry.shop_id,
                    "source": reader.t(f"web.source.{entry.source}"),
                    "last_success": when(entry.last_success),
                    "high_water": when(entry.high_water),
                    "rows": number(Decimal(entry.rows), reader.language),
                    "errors": entry.errors,
                    "last_error": entry.last_error,
                }
            )
        return rows

    # -- company -----------------------------------------------------------------------

    def company_page(self, reader: Reader, choice: Choice, *, now: int) -> dict[str, Any]:
        """The admins' page: teams side by side in the company currency (achievement against
        each team's own target), every shop, and the data's freshness."""
        org = self.organisation
        language = reader.language
        period = choice.period
        company = Scope("company")
        currency = self.figures.reporting_currency(company)
        teams = [Scope("team", team_id) for team_id in org.teams]
        shops = [Scope("shop", shop_id) for shop_id in org.shops]
        # A team's own-currency GMV (for its target) is read again only where its currency is
        # not the company's: otherwise it is the figure already read.
        foreign = [t for t in teams if self.figures.reporting_currency(t) != currency]
        with self.figures.held():
            same = self.figures.figures_of(
                TEAM_METRICS, [company, *teams], period, now=now, currency=currency
            )
            own = self.figures.figures_of(["gmv"], foreign, period, now=now) if foreign else {}
            shop_figures = self.figures.figures_of(
                ["gmv", "orders", "refund_rate"], shops, period, now=now
            )
            sources = self.figures.standing([m for _, m in SOURCE_METRICS], period, now=now)
        rows = []
        for scope in [company, *teams]:
            found = same[scope]
            progress = self.plans.progress(own[scope]["gmv"] if scope in own else found["gmv"], now)
            rows.append(
                {
                    "name": self.name_of(scope),
                    "href": f"/dashboard/teams/{scope.id}" if scope.kind == "team" else None,
                    "gmv": value_text(found["gmv"].value, "money", currency, reader),
                    "orders": number(found["orders"].value, language),
                    "aov": value_text(found["aov"].value, "money", currency, reader),
                    "refund_rate": percent(found["refund_rate"].value, language, places=1),
                    "achievement": percent(progress.achievement, language),
                    "pace": pace_text(progress, language),
                    "own_currency": progress.figure.currency,
                    "trust": trust_line(found["gmv"], reader),
                }
            )
        shop_rows = [
            {
                "name": org.shops[s.id].name,
                "platform": org.shops[s.id].platform,
                "region": org.shops[s.id].region,
                "team": org.teams[org.shops[s.id].team or ""].name
                if (org.shops[s.id].team or "") in org.teams
                else "—",
                "gmv": value_text(
                    shop_figures[s]["gmv"].value, "money", shop_figures[s]["gmv"].currency, reader
                ),
                "orders": number(shop_figures[s]["orders"].value, language),
                "refund_rate": percent(shop_figures[s]["refund_rate"].value, language, places=1),
            }
            for s in shops
        ]
        imported = last_imports(self.figures.engine)
        return {
            "currency": currency,
            "teams": rows,
            "shops": shop_rows,
            "sources": self.sources(sources, reader, now=now, timezone=period.timezone),
            "imported": imported,
            "shop_sync": self.shop_sync(list(org.shops), reader, timezone=period.timezone),
        }

    # -- the audit trail -------------------------------------------------------------------

    def audit_row(self, entry: AuditEntry, reader: Reader, *, timezone: str) -> dict[str, str]:
        """An audit entry in the reader's language: its action, and its detail as labelled
        parts (names for ids, metrics, message kinds and amounts as the reader writes them;
        people's own words as they wrote them)."""
        t = reader.t
        facts = dict(entry.facts)
        parts: list[tuple[str, str]] = []
        days = [facts.pop(k) for k in ("first_day", "last_day") if k in facts]
        currency = facts.pop("currency", None)
        for key, value in facts.items():
            if key == "provisional":  # says itself: no label
                parts.append(
                    ("", t(f"web.trust.{'provisional' if value == 'True' else 'settled'}"))
                )
                continue
            parts.append((key, self._audit_value(key, value, currency, reader, timezone)))
            if key == "scope" and days:  # the appealed or corrected days follow whose they are
                first, last = (
                    day_text(date.fromisoformat(d), reader.language) for d in (days[0], days[-1])
                )
                shown = first if first == last else t("web.period.range", first=first, last=last)
                parts.append(("days", shown))
        if not parts and entry.detail:
            parts.append(("note", entry.detail))
        return {
            "at": moment(entry.at, timezone, reader.language),
            "kind": entry.kind,
            "id": entry.id,
            "actor": self._person_name(entry.actor),
            "action": _text_or(t, f"web.audit.actions.{entry.action}", entry.action),
            "person": self._person_name(entry.person),
            "detail": " · ".join(
                t("web.audit.pair", label=_text_or(t, f"web.audit.field.{k}", k), value=v)
                if k
                else v
                for k, v in parts
            ),
        }

    def _person_name(self, person_id: str | None) -> str:
        if not person_id:
            return ""
        people = self.organisation.people
        return people[person_id].name if person_id in people else person_id

    def _audit_value(
        self, key: str, value: str, currency: str | None, reader: Reader, timezone: str
    ) -> str:
        """One part of an audit detail, written for the reader."""
        t = reader.t
        if key in ("as_of", "until", "snoozed_until") and value.isdigit():
            return moment(int(value), timezone, reader.language)
        if key == "scope":
            kind, _, ident = value.partition(":")
            try:
                return self.name_of(Scope(kind, ident))  # type: ignore[arg-type]
            except KeyError:
                return value
        if key == "metric":
            return metric_name(self.organisation, value, reader)
        if key == "message":
            return _text_or(t, f"web.audit.message.{value}", value)
        if key == "action":
            return _text_or(t, f"web.audit.actions.{value}", value)
        if key == "source":
            return _text_or(t, f"web.source.{value}", value)
        if key in ("escalated_to", "actor"):
            return self._person_name(value)
        if key in ("amount", "claimed", "reported", "value", "threshold", "expected"):
            try:
                amount = Decimal(value)
            except ArithmeticError:
                return value
            if currency:
                return money(amount, currency, reader.language)
            return number(amount, reader.language, places=2)
        return value

    # -- alerts and appeals (rows; the routes hold the services that decide who may act) ---

    def alert_row(self, alert: AlertRow, reader: Reader, *, may_act: bool) -> dict[str, Any]:
        """An alert as a row: who, which number, why, its state, the actions the reader has."""
        org = self.organisation
        t = reader.t
        scope = alert.subject
        metric = org.catalogue.metrics.get(alert.metric)
        unit = metric.unit if metric else "count"
        detail = alert.detail
        amount = value_text(alert.threshold, unit, alert.currency, reader)
        if alert.reason == "below_pace":
            reason = t(
                "web.alert.below_pace",
                pace=percent(Decimal(detail.get("pace", "0")), reader.language),
                limit=percent(Decimal(detail.get("limit", "0")), reader.language),
                expected=amount,
            )
        elif alert.reason in ("below", "above"):
            reason = t(f"web.alert.{alert.reason}", threshold=amount)
        elif alert.reason == "change":
            reason = t("web.alert.change", change=detail.get("change", "?"), before=amount)
        else:
            reason = t(
                "web.alert.stale",
                source=t(f"web.source.{detail.get('source', 'orders')}"),
                hours=number(alert.value, reader.language),
                limit=number(alert.threshold, reader.language),
            )
        try:
            who = self.name_of(scope)
        except KeyError:
            who = scope.id
        return {
            "id": alert.id,
            "version": alert.version,
            "who": who,
            "metric": metric_name(org, alert.metric, reader),
            "value": value_text(alert.value, unit, alert.currency, reader)
            if alert.reason != "stale"
            else None,
            "reason": reason,
            "state": alert.state,
            "state_text": t(f"web.alert.state.{alert.state}"),
            "period": alert.period_key,
            "may_act": may_act and alert.state in ("firing", "acknowledged", "snoozed"),
            "can_ack": alert.state in ("firing", "snoozed"),
            "can_snooze": alert.state in ("firing", "acknowledged"),
        }

    def appeal_row(
        self, appeal: AppealRow, reader: Reader, *, may_decide: bool, appellant: bool
    ) -> dict[str, Any]:
        """An appeal as a row: the figure as reported and as claimed, why, its state, and
        the moves the reader has."""
        org = self.organisation
        t = reader.t
        metric = org.catalogue.metrics.get(appeal.metric)
        unit = metric.unit if metric else "count"
        open_ = appeal.state in APPEAL_OPEN
        days = (
            day_text(appeal.first_day, reader.language)
            if appeal.first_day == appeal.last_day
            else t(
                "web.period.range",
                first=day_text(appeal.first_day, reader.language),
                last=day_text(appeal.last_day, reader.language),
            )
        )

        def name(person_id: str) -> str:
            return org.people[person_id].name if person_id in org.people else person_id

        return {
            "id": appeal.id,
            "version": appeal.version,
            "appellant": name(appeal.appellant),
            "reviewer": name(appeal.reviewer),
            "metric": metric_name(org, appeal.metric, reader),
            "days": days,
            "reported": value_text(appeal.reported_value, unit, appeal.currency, reader),
            "claimed": value_text(appeal.claimed_value, unit, appeal.currency, reader),
            "difference": change_text(
                Delta(appeal.reported_value or Decimal(0), appeal.claimed_value),
                unit,
                appeal.currency,
                reader,
            ),
            "reason": appeal.reason,
            "evidence": list(appeal.evidence),
            "decision": appeal.decision_note,
            "state": appeal.state,
            "state_text": t(f"web.appeal.state.{appeal.state}"),
            "can_review": may_decide and appeal.state == "open",
            "can_decide": may_decide and open_,
            "can_withdraw": appellant and open_,
        }


def _text_or(t: Texts, message_id: str, fallback: str) -> str:
    """The catalogue's text for a code, else the code itself (an action recorded by a newer
    version, a kind this one does not know)."""
    try:
        return t(message_id)
    except MissingText:
        return fallback


def _number(value: Decimal | None) -> str | None:
    """A value for the chart, as exact decimal text (the browser only draws it)."""
    return None if value is None else str(value)
