"""Figures against an independent computation over the raw CSV rows, on SQLite and PostgreSQL.

The reference below re-reads the generated files with the csv module and computes every
built-in metric with plain Python (datetime for local dates, Fraction for exact maths). It
shares no code with the importer or the engine.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from kpi_engine.demo_data import FILE_KINDS, generate
from kpi_engine.figures import FigureError, Figures, Scope
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.metrics import Catalogue
from kpi_engine.organisation import Organisation
from kpi_engine.periods import Period, day_of, week_of
from tests.conftest import EXAMPLE_CONFIG

END = date(2026, 11, 12)  # covers 11.11 and the US DST change of 2026-11-01
DAYS = 16


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def instant(text: str) -> int:
    return int(text) if text.isdigit() else int(datetime.fromisoformat(text).timestamp())


def amount(text: str) -> Fraction:
    return Fraction(Decimal(text))


@dataclass
class Reference:
    """Plain-Python figures over the raw rows."""

    organisation: Organisation
    orders: list[dict[str, str]]
    refunds: list[dict[str, str]]
    lives: list[dict[str, str]]
    ads: list[dict[str, str]]
    rates: dict[tuple[str, str, date], Fraction]
    values: list[dict[str, str]]
    split: bool

    all_orders: dict[tuple[str, str, str], dict[str, str]]

    memo: dict[str, set[tuple[str, str, str]]] = field(default_factory=dict)
    spans: dict[tuple[str, str], list[tuple[int, int, list[str]]]] = field(default_factory=dict)
    rows_memo: dict[tuple[Scope, Period], tuple[list[dict[str, str]], list[dict[str, str]]]] = (
        field(default_factory=dict)
    )

    def credited(self, order: dict[str, str], person: str) -> bool:
        """Is `order` credited to `person`? (memoised: the set of their orders, once)."""
        if person not in self.memo:
            self.memo[person] = {
                key for key, row in self.all_orders.items() if self._credited(row, person)
            }
        return (order["platform"], order["shop_id"], order["order_id"]) in self.memo[person]

    def weight(self, order: dict[str, str]) -> Fraction:
        """A person's part of a credited order: all of it, or with `split` an equal part of
        the people it is credited to (docs/metrics.md, co-hosts)."""
        if not self.split:
            return Fraction(1)
        people = {p.id for p in self.organisation.people.values() if self.credited(order, p.id)}
        return Fraction(1, len(people))

    def _credited(self, order: dict[str, str], person: str) -> bool:
        """The attribution chain: explicit, else the covering live's hosts, else assignees."""
        if order["attributed_to"]:
            return order["attributed_to"] == person
        settings = self.organisation.settings.attribution
        created = instant(order["create_time"])
        if not self.spans:
            for lv in self.lives:
                self.spans.setdefault((lv["platform"], lv["shop_id"]), []).append(
                    (instant(lv["start_time"]), instant(lv["end_time"]), lv["hosts"].split(","))
                )
        tail = settings.live_tail_minutes * 60
        covering = [
            hosts
            for start, end, hosts in self.spans.get((order["platform"], order["shop_id"]), [])
            if start <= created < end + tail
        ]
        if covering:
            return any(person in hosts for hosts in covering)
        if self.organisation.people[person].role not in settings.fallback_roles:
            return False
        shop_tz = ZoneInfo(self.organisation.shops[order["shop_id"]].timezone)
        day = datetime.fromtimestamp(created, shop_tz).date()
        return any(
            a.person == person
            and a.shop == order["shop_id"]
            and a.valid_from <= day
            and (a.valid_to is None or day <= a.valid_to)
            for a in self.organisation.assignments
        )

    def shops(self, scope: Scope) -> set[str]:
        shops = self.organisation.shops.values()
        if scope.kind == "shop":
            return {scope.id}
        if scope.kind == "person":
            return {s.id for s in shops}
        return {s.id for s in shops if scope.kind == "company" or s.team == scope.id}

    def money(self, rows: list[tuple[str, str, str, int, Fraction]], currency: str) -> Fraction:
        """Σ amounts (currency, value, shop zone, instant, weight) at the rate of their local
        date."""
        total = Fraction(0)
        for code, value, shop_tz, when, weight in rows:
            day = datetime.fromtimestamp(when, ZoneInfo(shop_tz)).date()
            rate = Fraction(1) if code == currency else self.rates[(code, currency, day)]
            total += amount(value) * rate * weight
        return total

    def base(self, key: str, scope: Scope, period: Period, currency: str) -> Fraction | None:
        start, end = period.bounds()
        shops = self.shops(scope)
        tz = {s.id: s.timezone for s in self.organisation.shops.values()}
        inside = lambda t: start <= t < end  # noqa: E731
        mine = (
            (lambda o: self.credited(o, scope.id)) if scope.kind == "person" else (lambda o: True)
        )
        person = scope.kind == "person"

        def share(order: dict[str, str]) -> Fraction:
            return self.weight(order) if person else Fraction(1)

        if (scope, period) not in self.rows_memo:  # the same rows serve every metric
            real = [
                o
                for o in self.orders
                if o["shop_id"] in shops and o["is_sample"] != "true" and mine(o)
            ]
            paid = [o for o in real if o["paid_time"] and inside(instant(o["paid_time"]))]
            placed = [o for o in real if inside(instant(o["create_time"]))]
            self.rows_memo[(scope, period)] = (paid, placed)
        paid, placed = self.rows_memo[(scope, period)]

        def order_of(r: dict[str, str]) -> dict[str, str]:
            return self.all_orders.get((r["platform"], r["shop_id"], r["order_id"]), r)

        def money(rows: list[dict[str, str]], field: str, time: str) -> Fraction:
            return self.money(
                [
                    (
                        r["currency"],
                        r[field],
                        tz[r["shop_id"]],
                        instant(r[time]),
                        share(order_of(r)),
                    )
                    for r in rows
                ],
                currency,
            )

        def count(rows: list[dict[str, str]]) -> Fraction:
            return sum((share(o) for o in rows), Fraction(0))

        if key == "gmv":
            return money(paid, "sub_total", "paid_time")
        if key == "placed_gmv":
            return money(placed, "sub_total", "create_time")
        if key == "orders":
            return count(paid)
        if key == "placed_orders":
            return count(placed)
        if key == "cancelled_orders":
            return count([o for o in placed if o["status"] == "CANCELLED"])
        if key == "cancelled_paid_gmv":
            return money([o for o in paid if o["status"] == "CANCELLED"], "sub_total", "paid_time")
        if key == "live_gmv":
            return money([o for o in paid if o["channel"] == "live"], "sub_total", "paid_time")
        if key == "live_orders":
            return count([o for o in paid if o["channel"] == "live"])

        def refund_counts(r: dict[str, str]) -> bool:
            if scope.kind != "person":
                return True
            order = self.all_orders.get((r["platform"], r["shop_id"], r["order_id"]))
            return order is not None and self.credited(order, scope.id)

        done = [
            r
            for r in self.refunds
            if r["shop_id"] in shops and r["status"] == "COMPLETED" and refund_counts(r)
        ]

        def of_sample(r: dict[str, str]) -> bool:
            order = self.all_orders.get((r["platform"], r["shop_id"], r["order_id"]))
            return order is not None and order["is_sample"] == "true"

        if key == "refund_amount":  # refunds of sample orders never count
            return money(
                [r for r in done if inside(instant(r["update_time"])) and not of_sample(r)],
                "refund_amount",
                "update_time",
            )
        paid_by_key = {(o["platform"], o["shop_id"], o["order_id"]): o for o in paid}
        cohort = [
            (r, paid_by_key[(r["platform"], r["shop_id"], r["order_id"])])
            for r in done
            if (r["platform"], r["shop_id"], r["order_id"]) in paid_by_key
        ]
        if key == "cohort_refund_amount":
            return self.money(
                [
                    (
                        r["currency"],
                        r["refund_amount"],
                        tz[o["shop_id"]],
                        instant(o["paid_time"]),
                        share(o),
                    )
                    for r, o in cohort
                ],
                currency,
            )
        if key == "cohort_refunded_orders":
            refunded = {(o["platform"], o["shop_id"], o["order_id"]): o for _, o in cohort}
            return count(list(refunded.values()))
        lives = [
            lv
            for lv in self.lives
            if lv["shop_id"] in shops
            and inside(instant(lv["start_time"]))
            and (scope.kind != "person" or scope.id in lv["hosts"].split(","))
        ]

        def hosts_share(lv: dict[str, str]) -> Fraction:
            if not (person and self.split):
                return Fraction(1)
            return Fraction(1, len(set(lv["hosts"].split(","))))

        if key == "watch_seconds":
            return sum(
                (
                    amount(lv["avg_viewing_seconds"]) * int(lv["viewers"]) * hosts_share(lv)
                    for lv in lives
                ),
                Fraction(0),
            )
        if key in (
            "views",
            "viewers",
            "product_impressions",
            "product_clicks",
            "comments",
            "likes",
            "new_followers",
        ):
            return sum((int(lv[key] or 0) * hosts_share(lv) for lv in lives), Fraction(0))
        if key == "live_shares":  # the file's `shares`: viewers sharing the live
            return sum((int(lv.get("shares") or 0) * hosts_share(lv) for lv in lives), Fraction(0))
        if key in ("live_seconds", "effective_live_seconds"):
            # Effective: only lives of at least organisation.effective_live_minutes.
            shortest = 0
            if key == "effective_live_seconds":
                shortest = self.organisation.settings.effective_live_minutes * 60
            lengths = [(instant(lv["end_time"]) - instant(lv["start_time"]), lv) for lv in lives]
            return sum(
                (n * hosts_share(lv) for n, lv in lengths if n >= shortest),
                Fraction(0),
            )
        if key == "shop_visitors":  # shops' daily traffic, imported as metric_values
            if scope.kind == "person":
                return None
            return sum(
                (
                    amount(v["value"])
                    for v in self.values
                    if v["metric"] == "shop_visitors"
                    and v["entity_type"] == "shop"
                    and v["entity_id"] in shops
                    and period.first <= date.fromisoformat(v["date"]) <= period.last
                ),
                Fraction(0),
            )
        if key in ("ad_spend", "ad_revenue"):
            if scope.kind == "shop":
                return None
            people = {
                p.id
                for p in self.organisation.people.values()
                if scope.kind == "company" or p.team == scope.id or p.id == scope.id
            }
            rows = [
                a
                for a in self.ads
                if period.first <= date.fromisoformat(a["date"]) <= period.last
                and (scope.kind == "company" or a["person_id"] in people)
            ]
            column = "spend" if key == "ad_spend" else "attributed_revenue"
            total = Fraction(0)
            for a in rows:
                day = date.fromisoformat(a["date"])
                rate = (
                    Fraction(1)
                    if a["currency"] == currency
                    else self.rates[(a["currency"], currency, day)]
                )
                total += amount(a[column]) * rate
            return total
        raise AssertionError(key)


def load_reference(
    engine: Engine, organisation: Organisation, tmp_path: Path, *, import_files: bool = True
) -> Reference:
    """Generate the demo data, import it (plus a few refunded orders revised into samples,
    whose refunds then never count), and read the same files for the reference."""
    data = generate(organisation, EXAMPLE_CONFIG, tmp_path, days=DAYS, end=END, seed=11)
    latest: dict[tuple[str, str, str], dict[str, str]] = {}
    for row in read(data.files["orders"]) + read(data.files["order_revisions"]):
        key = (row["platform"], row["shop_id"], row["order_id"])
        if key not in latest or instant(row["update_time"]) > instant(latest[key]["update_time"]):
            latest[key] = row
    refunded = [
        latest[(r["platform"], r["shop_id"], r["order_id"])]
        for r in read(data.files["refunds"])
        if r["status"] == "COMPLETED" and (r["platform"], r["shop_id"], r["order_id"]) in latest
    ]
    samples = [
        dict(o, is_sample="true", update_time=str(instant(o["update_time"]) + 86400))
        for o in refunded[:: max(1, len(refunded) // 4)][:4]
    ]
    assert len(samples) == 4
    made_samples = tmp_path / "made_samples.csv"
    with made_samples.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(samples[0]))
        writer.writeheader()
        writer.writerows(samples)
    if import_files:
        for label, path in [*data.files.items(), ("orders", made_samples)]:
            report = import_file(engine, organisation, KINDS[FILE_KINDS.get(label, label)], path)
            assert report.ok, report.render()
    for row in samples:
        latest[(row["platform"], row["shop_id"], row["order_id"])] = row
    rates = {
        (r["currency"], r["quote"], date.fromisoformat(r["date"])): amount(r["rate"])
        for r in read(data.files["fx_rates"])
    }
    return Reference(
        organisation,
        list(latest.values()),
        read(data.files["refunds"]),
        read(data.files["live_sessions"]),
        read(data.files["ad_spend"]),
        rates,
        read(data.files["metric_values"]),
        organisation.settings.attribution.cohost_credit == "split",
        latest,
    )


@pytest.fixture
def imported(engine: Engine, organisation: Organisation, tmp_path: Path) -> Reference:
    return load_reference(engine, organisation, tmp_path)


def reference_value(
    catalogue: Catalogue, key: str, bases: dict[str, Fraction | None]
) -> Fraction | None:
    """A metric from the base values as docs/metrics.md defines it: a formula's references are
    metrics, derived ones included (`net_gmv / orders`), each computed first."""
    metric = catalogue.metrics[key]
    if metric.formula is None:
        return bases[key]
    inputs = {}
    for name in metric.formula.references:
        value = reference_value(catalogue, name, bases)
        inputs[name] = (
            None if value is None else Decimal(value.numerator) / Decimal(value.denominator)
        )
    result = metric.formula.evaluate(inputs)
    return None if result is None else Fraction(result)


SCOPES = [
    Scope("company"),
    Scope("team", "sz-live"),
    Scope("team", "la-ops"),
    Scope("shop", "tts-us-01"),
    Scope("shop", "amz-jp-01"),
    # a streamer in Shanghai hosting a UK shop, one in LA, an operator credited by fallback,
    # and an ad buyer
    Scope("person", "li.na"),
    Scope("person", "jessica.lee"),
    Scope("person", "zhao.lei"),
    Scope("person", "sophia.nguyen"),
]


def test_every_metric_matches_the_independent_computation(
    engine: Engine, organisation: Organisation, imported: Reference
) -> None:
    figures = Figures(engine, organisation)
    now = int(datetime(2026, 11, 13, 12, 0).timestamp())
    catalogue = organisation.catalogue
    checked = nested = 0
    for scope in SCOPES:
        tz = figures.timezone(scope)
        currency = figures.reporting_currency(scope)
        periods = [
            day_of(date(2026, 11, 11), tz),
            week_of(date(2026, 11, 2), tz),
            Period("custom", END - timedelta(days=DAYS - 3), END - timedelta(days=1), tz),
        ]
        for period in periods:
            results = figures.figures(list(catalogue.metrics), scope, period, now=now)
            bases = {
                key: imported.base(key, scope, period, currency)
                for key, metric in catalogue.metrics.items()
                if metric.formula is None
            }
            for key in catalogue.metrics:
                figure = results[key]
                assert not figure.incomplete, (key, figure.missing_rates)
                expected = reference_value(catalogue, key, bases)
                if expected is None:
                    assert figure.value is None, (scope, period.label(), key)
                    continue
                assert figure.value is not None, (scope, period.label(), key)
                nested += key == "net_gmv_per_order"
                tolerance = abs(expected) * Fraction(1, 10**24)
                assert abs(Fraction(figure.value) - expected) <= tolerance, (
                    scope,
                    period.label(),
                    key,
                )
                checked += 1
    assert checked > 700
    # Formulas over formulas have values (`net_gmv_per_order: net_gmv / orders`).
    assert nested >= 10
    # People's figures are real shares, not empty: the streamer's lives, the operator's fallback.
    week = Period(
        "custom", END - timedelta(days=DAYS - 3), END - timedelta(days=1), "Asia/Shanghai"
    )
    person = figures.figures(["gmv", "views"], Scope("person", "li.na"), week, now=now)
    operator = figures.figure("gmv", Scope("person", "zhao.lei"), week, now=now)
    team = figures.figure("gmv", Scope("team", "sz-live"), week, now=now)
    assert person["gmv"].value and person["views"].value and operator.value and team.value
    assert 0 < person["gmv"].value < team.value and 0 < operator.value < team.value
    day = figures.figure(
        "gmv", Scope("shop", "amz-jp-01"), day_of(date(2026, 11, 11), "Asia/Tokyo"), now=now
    )
    assert day.value is not None and day.value > 0 and day.currency == "JPY"


def test_provisional_as_of_and_missing_rates(
    engine: Engine, organisation: Organisation, imported: Reference
) -> None:
    figures = Figures(engine, organisation)
    team = Scope("team", "sz-live")
    period = day_of(date(2026, 11, 10), "Asia/Shanghai")
    end = period.bounds()[1]
    soon = figures.figure("net_gmv", team, period, now=end + 3600)
    assert soon.provisional and soon.as_of is not None
    assert figures.figure("gmv", team, period, now=end + 86400).provisional is False  # orders: T+1
    assert figures.figure("net_gmv", team, period, now=end + 86400).provisional  # refunds: T+3
    assert figures.figure("net_gmv", team, period, now=end + 3 * 86400).provisional is False

    # Drop one rate: the figure says exactly which one is missing instead of guessing.
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(
            text(
                "DELETE FROM fx_rates WHERE currency = 'JPY' AND quote = 'CNY' "
                "AND date = '2026-11-10'"
            )
        )
    figure = figures.figure("gmv", team, period, now=end + 86400)
    assert figure.incomplete and figure.missing_rates == (("JPY", date(2026, 11, 10)),)
    assert figures.figure("orders", team, period, now=end + 86400).incomplete is False


def test_unknown_names(engine: Engine, organisation: Organisation) -> None:
    figures = Figures(engine, organisation)
    period = day_of(date(2026, 11, 10), "UTC")
    with pytest.raises(FigureError, match="unknown metric 'gvm'"):
        figures.figure("gvm", Scope("company"), period, now=0)
    with pytest.raises(FigureError, match="unknown team 'nope'"):
        figures.figure("gmv", Scope("team", "nope"), period, now=0)
    with pytest.raises(FigureError, match="unknown shop 'nope'"):
        figures.figure("gmv", replace(Scope("shop"), id="nope"), period, now=0)
    empty = figures.figure("aov", Scope("company"), period, now=0)
    assert empty.value is None and empty.currency == "CNY"  # no orders: no value, not 0


def test_explanation_and_ranking_agree_with_the_figures(
    engine: Engine, organisation: Organisation, imported: Reference
) -> None:
    figures = Figures(engine, organisation)
    now = int(datetime(2026, 11, 13, 12, 0).timestamp())
    team = Scope("team", "sz-live")
    day = day_of(date(2026, 11, 11), "Asia/Shanghai")  # 11.11 against 11.10
    explanation = figures.explain(team, day, now=now)
    assert explanation is not None
    gmv = figures.figure("gmv", team, day, now=now).value
    gmv_before = figures.figure("gmv", team, day.previous(), now=now).value
    assert explanation.after == gmv and explanation.before == gmv_before
    total = sum((d.contribution for d in explanation.drivers), Decimal(0))
    assert abs(total + explanation.unexplained - explanation.change) < Decimal("1e-15")
    assert [d.name for d in explanation.drivers] == ["traffic", "conversion", "aov"]
    assert [d.metric for d in explanation.drivers] == ["views", "live_conversion_rate", "live_aov"]
    # Live views cover the live orders only: the drivers explain the live GMV's change, the
    # rest is stated as unexplained, with the share of orders the traffic covers.
    currency = figures.reporting_currency(team)
    live = {p: imported.base("live_gmv", team, p, currency) for p in (day, day.previous())}
    assert live[day] is not None and live[day.previous()] is not None
    assert abs(Fraction(total) - (live[day] - live[day.previous()])) < Fraction(1, 10**15)
    orders = imported.base("orders", team, day, currency)
    live_orders = imported.base("live_orders", team, day, currency)
    assert orders and live_orders is not None and explanation.covered_share is not None
    share = live_orders / orders
    assert abs(Fraction(explanation.covered_share) - share) < Fraction(1, 10**20) and share < 1
    assert explanation.traffic == "views" and explanation.unexplained != 0

    streamers = [
        Scope("person", p.id)
        for p in organisation.people.values()
        if p.team == "sz-live" and p.role == "streamer"
    ]
    ranking = figures.ranking("gmv", streamers, day, now=now)
    expected = {s.id: imported.base("gmv", s, day, currency) for s in streamers}
    ordered = sorted(
        (e for e, v in expected.items() if v is not None), key=lambda e: (-expected[e], e)
    )  # type: ignore[operator]
    assert [r.entity for r in ranking if r.rank is not None] == ordered
    assert len(ordered) == 4


def test_a_streamers_scorecard_from_real_figures(
    engine: Engine, organisation: Organisation, imported: Reference
) -> None:
    from kpi_engine.periods import month_of
    from kpi_engine.scoring import scorecard
    from kpi_engine.targets import Plans

    figures = Figures(engine, organisation)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    now = int(datetime(2026, 11, 13, 12, 0).timestamp())
    november = month_of(date(2026, 11, 1), "Asia/Shanghai")
    card = scorecard(figures, plans, "li.na", november, now=now)
    assert card is not None and card.role == "streamer" and card.provisional
    for item in card.items:
        figure = figures.figure(item.item.metric, Scope("person", "li.na"), november, now=now)
        progress = plans.progress(figure, now)
        assert progress.achievement is not None
        clamped = min(max(progress.achievement, item.item.floor), item.item.cap)
        assert item.points == item.item.weight * clamped
    assert card.score == sum((i.points for i in card.items if i.points is not None), Decimal(0))
    assert scorecard(figures, plans, "zhao.lei", november, now=now) is None  # no operator card


def _with(organisation: Organisation, **attribution: object) -> Organisation:
    settings = organisation.settings
    changed = settings.attribution.model_copy(update=attribution)
    return replace(organisation, settings=settings.model_copy(update={"attribution": changed}))


def test_split_credit_matches_the_independent_computation(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    split = _with(organisation, cohost_credit="split")
    reference = load_reference(engine, split, tmp_path)
    assert reference.split
    now = int(datetime(2026, 11, 13, 12, 0).timestamp())
    fast, slow = Figures(engine, split), Figures(engine, split, rollups=False)
    keys = list(split.catalogue.metrics)
    people = [s for s in SCOPES if s.kind == "person"] + [Scope("person", "zhang.wei")]
    halves = 0
    for scope in people:
        tz, currency = fast.timezone(scope), fast.reporting_currency(scope)
        for period in (
            day_of(date(2026, 11, 11), tz),
            Period("custom", END - timedelta(days=DAYS - 3), END - timedelta(days=1), tz),
        ):
            found = fast.figures(keys, scope, period, now=now)
            assert found == slow.figures(keys, scope, period, now=now), (scope, period)
            bases = {
                k: reference.base(k, scope, period, currency)
                for k, m in split.catalogue.metrics.items()
                if m.formula is None
            }
            for key in keys:
                expected = reference_value(split.catalogue, key, bases)
                value = found[key].value
                assert (value is None) == (expected is None), (scope, key)
                if value is not None and expected is not None:
                    assert abs(Fraction(value) - expected) <= abs(expected) / 10**24, (scope, key)
            orders = found["orders"].value
            halves += orders is not None and orders != orders.to_integral_value()
    assert halves  # co-hosted orders really were split


def _accept(engine: Engine, figures: Figures, person: str, day: Period, claimed: Decimal) -> int:
    from kpi_engine.appeals import AppealStore

    store = AppealStore(engine)
    now = int(datetime(2026, 11, 13, 12, 0).timestamp())
    appeal = store.open(
        appellant=person,
        figure=figures.figure("gmv", Scope("person", person), day, now=now),
        scope=f"person:{person}",
        claimed=claimed,
        reason="orders missing",
        evidence=[],
        reviewer="wang.fang",
        platform="slack",
        workspace="",
        channel="",
        now=now,
        sla_hours=24,
    )
    assert store.move(appeal.id, "accept", "wang.fang", now).ok
    return appeal.id


def test_a_correction_followed_by_late_data_matches_the_independent_computation(
    engine: Engine, organisation: Organisation, imported: Reference, tmp_path: Path
) -> None:
    """docs/metrics.md, "Corrections": the accepted value rules until the data reaches it;
    then the data's, never both; the team and derived figures follow."""
    now = int(datetime(2026, 11, 13, 12, 0).timestamp())
    figures = Figures(engine, organisation)
    day = day_of(date(2026, 11, 11), "Asia/Shanghai")
    li, team = Scope("person", "li.na"), Scope("team", "sz-live")

    def ref(key: str, scope: Scope) -> Fraction:
        imported.memo.clear()
        imported.rows_memo.clear()
        found = imported.base(key, scope, day, "CNY")
        assert found is not None
        return found

    raw = ref("gmv", li)
    claimed = (Decimal(raw.numerator) / Decimal(raw.denominator) + 1000).quantize(Decimal("0.01"))
    _accept(engine, figures, "li.na", day, claimed)
    rate = imported.rates[("GBP", "CNY", date(2026, 11, 11))]
    for n, pounds in enumerate(("50.00", "150.00")):
        row = dict(
            next(iter(imported.orders)),
            order_id=f"LATE{n}",
            platform="tiktok",
            shop_id="tts-gb-01",
            status="COMPLETED",
            currency="GBP",
            create_time="2026-11-11T10:00:00+00:00",
            paid_time="2026-11-11T10:00:05+00:00",
            update_time="2026-11-11T10:00:05+00:00",
            sub_total=pounds,
            total_amount=pounds,
            attributed_to="li.na",
            channel="video",
            live_session_id="",
            is_sample="false",
        )
        late = tmp_path / f"late{n}.csv"
        with late.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            writer.writeheader()
            writer.writerow(row)
        assert import_file(engine, organisation, KINDS["orders"], late).ok
        imported.orders.append(row)
        imported.all_orders[("tiktok", "tts-gb-01", row["order_id"])] = row
        raw_now = ref("gmv", li)
        owed = max(Fraction(claimed) - raw_now, Fraction(0))
        expected = raw_now + owed
        found = figures.figures(["gmv", "aov", "net_gmv"], li, day, now=now)
        assert Fraction(found["gmv"].value or 0) == expected
        assert abs(Fraction(found["aov"].value or 0) - expected / ref("orders", li)) < Fraction(
            1, 10**20
        )
        net = expected - ref("refund_amount", li) - ref("cancelled_paid_gmv", li)
        assert Fraction(found["net_gmv"].value or 0) == net
        team_gmv = figures.figure("gmv", team, day, now=now).value
        assert Fraction(team_gmv or 0) == ref("gmv", team) + owed
        # The first late order leaves the data below the claim, the second passes it.
        assert (owed > 0) == (n == 0), (pounds, rate)


def test_a_bonus_in_another_currency_matches_the_independent_computation(
    engine: Engine, organisation: Organisation, imported: Reference, tmp_path: Path
) -> None:
    """A company-wide scorecard in CNY: a Los Angeles streamer's commission is computed on their
    GMV in CNY (each order at its own date's rate) against a CNY threshold."""
    from kpi_engine.organisation import load_organisation
    from kpi_engine.periods import month_of
    from kpi_engine.scoring import scorecard
    from kpi_engine.targets import Plans

    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    kpis = config / "kpis.yaml"
    content = kpis.read_text(encoding="utf-8")
    content = content[: content.index("      teams:\n")].replace("above: 1500000", "above: 10000")
    kpis.write_text(content, encoding="utf-8")
    company_wide = load_organisation(config)
    now = int(datetime(2026, 11, 13, 12, 0).timestamp())
    november = month_of(date(2026, 11, 1), "America/Los_Angeles")
    plans = Plans(company_wide.plans, company_wide.targets, company_wide.catalogue)
    card = scorecard(Figures(engine, company_wide), plans, "jessica.lee", november, now=now)
    assert card is not None and card.currency == "CNY"
    gmv = imported.base("gmv", Scope("person", "jessica.lee"), november, "CNY")
    assert gmv is not None and gmv > 10000
    expected = (gmv - 10000) * Fraction(5, 1000)
    assert abs(Fraction(card.commission) - expected) < Fraction(1, 10**20)
    # In her team's USD the same number would have been compared with a CNY threshold.
    usd = imported.base("gmv", Scope("person", "jessica.lee"), november, "USD")
    assert usd is not None and (usd - 10000) * Fraction(5, 1000) != expected
