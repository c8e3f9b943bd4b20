"""The metric catalogue: one definition of every number, shared by everyone.

Base measures are sums and counts over stored rows; derived metrics are formulas over other
metrics. Each metric has a unit, a direction (is more better?), the data source whose
settlement lag makes it provisional, its names in Chinese and English and the words people use
for it in chat. A base measure's entry also holds *how* it is computed — its table, the time
column that places a row in a day, the filter, the value summed and how it is credited to
people (`Measure`) — and from that one entry `kpi_engine.measure_sql` generates both the raw
query and the rollup. docs/metrics.md is the readable form of this table, and a test keeps the
two in step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from kpi_engine.formulas import Formula, FormulaError, parse_formula

Unit = Literal["money", "count", "ratio", "seconds", "decimal"]
Direction = Literal["higher", "lower"]
Source = Literal["orders", "refunds", "live_sessions", "ad_spend", "metric_values"]
Credit = Literal["order", "hosts", "person", "none"]
Aggregate = Literal["sum", "mean", "weighted", "latest", "min", "max"]


@dataclass(frozen=True)
class Measure:
    """How a base measure is computed from stored rows, in SQL fragments.

    `table` is read as alias `t`; a refund's order is `o` (joined for every refund measure:
    inner when the time is the order's, else left, so a refund whose order is unknown still
    counts for its shop). `time` places a row in a day — an instant column, or for day-keyed
    tables (`ad_spend`, `metric_values`) a local date column. A row counts when every `where`
    condition holds, and adds `value` (`1` counts rows); money rows carry `t.currency`.
    `per` stored units make one shown unit (watch milliseconds → seconds). `credit` says whose
    row it is for a person: the order's credit (refunds: their order's), the live session's
    hosts, the row's `person_id`, or nobody's (shop-level data).
    """

    table: Source
    time: str
    where: tuple[str, ...]
    value: str
    credit: Credit
    per: int = 1

    @property
    def by_day(self) -> bool:
        """True for tables keyed by a local date rather than placed by an instant."""
        return self.table in ("ad_spend", "metric_values")


@dataclass(frozen=True)
class Imported:
    """How a metric imported as daily `metric_values` rows adds up over days and people.

    `sum` adds every row; `mean` averages them; `weighted` averages them weighted by the
    `weight` metric's row of the same person (team, shop) and day (first response time by
    conversations); `latest` takes each one's value on their latest day with data, averaged
    over several; `min` / `max` the extreme row. `lag_days` overrides the settlement lag of
    `metric_values` for this metric.
    """

    aggregate: Aggregate = "mean"
    weight: str | None = None
    lag_days: int | None = None


@dataclass(frozen=True)
class Metric:
    """One metric: a base measure (no formula) or a formula over other metrics."""

    key: str
    name_en: str
    name_zh: str
    unit: Unit
    direction: Direction
    definition: str
    source: Source | None = None  # where a base measure comes from; None when derived
    formula: Formula | None = None
    aliases: tuple[str, ...] = ()  # other keys that name it (in config, the API and chat)
    builtin: bool = True
    measure: Measure | None = None  # how a base measure is computed
    words: tuple[str, ...] = ()  # what people call it in chat, besides its key and names
    short: tuple[str, str] | None = None  # a compact (zh, en) label for digests
    name_ja: str | None = (
        None  # a custom metric's Japanese name (the built-ins' are in the catalogue)
    )
    imported: Imported | None = None  # read from `metric_values` rows, declared in config

    @property
    def derived(self) -> bool:
        """True for a formula over other metrics."""
        return self.formula is not None

    def name(self, language: str) -> str:
        """The metric's configured name in a chat language: Chinese, English, or Japanese where
        one is configured (else English). Readers get the catalogue's name first
        (`metric.<key>`, bot.chat.context.metric_name)."""
        if language == "zh":
            return self.name_zh
        if language == "ja" and self.name_ja:
            return self.name_ja
        return self.name_en

    def label(self, language: str) -> str:
        """A compact name for tight layouts (digest fields), else the name."""
        if self.short is None:
            return self.name(language)
        return self.short[0] if language == "zh" else self.short[1]


def _base(
    key: str,
    en: str,
    zh: str,
    unit: Unit,
    measure: Measure,
    definition: str,
    *,
    direction: Direction = "higher",
    aliases: tuple[str, ...] = (),
    words: tuple[str, ...] = (),
    short: tuple[str, str] | None = None,
    source: Source | None = None,
) -> Metric:
    return Metric(
        key,
        en,
        zh,
        unit,
        direction,
        definition,
        source or measure.table,
        None,
        aliases,
        measure=measure,
        words=words,
        short=short,
    )


@dataclass(frozen=True)
class _Derived:
    key: str
    en: str
    zh: str
    unit: Unit
    formula: str
    definition: str
    direction: Direction = "higher"
    aliases: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    short: tuple[str, str] | None = None


# SQL fragments shared by several measures (rows are `t`, a refund's order `o`).
NOT_SAMPLE = "NOT t.is_sample"
COMPLETED = "t.status = 'COMPLETED'"
CANCELLED = "t.status = 'CANCELLED'"
LIVE = "t.channel = 'live'"
HAS_COMPLETED_REFUND = (
    "EXISTS (SELECT 1 FROM refunds r WHERE r.platform = t.platform AND r.shop_id = t.shop_id "
    "AND r.order_id = t.order_id AND r.status = 'COMPLETED')"
)
ORDER_NOT_SAMPLE = "(o.id IS NULL OR NOT o.is_sample)"  # unknown orders are no samples
SHOP_VISITORS = "t.metric = 'shop_visitors' AND t.entity_type = 'shop'"
# Replaced by `organisation.effective_live_minutes` × 60 where the SQL is generated
# (measure_sql.Segment): a live counts for effective live duration from that length on.
EFFECTIVE_LIVE_SECONDS = "{effective_live_seconds}"

_CREATED = "t.create_time"
_PAID = "t.paid_time"
_ORDERS: Source = "orders"
_LIVES: Source = "live_sessions"

_BASE = (
    _base(
        "placed_gmv",
        "Placed GMV",
        "下单GMV",
        "money",
        Measure(_ORDERS, _CREATED, (NOT_SAMPLE,), "t.sub_total", "order"),
        "Σ sub_total of orders created in the period (UNPAID included), sample orders excluded.",
        words=("下单金额", "placed gmv"),
    ),
    _base(
        "gmv",
        "GMV (paid)",
        "成交额",
        "money",
        Measure(_ORDERS, _PAID, (NOT_SAMPLE,), "t.sub_total", "order"),
        "Σ sub_total of orders paid in the period (by paid_time), sample orders excluded; "
        "later cancellations and refunds included, as TikTok Seller Center counts it.",
        aliases=("paid_gmv",),
        words=("gmv", "成交额", "销售额", "流水", "营业额", "成交", "sales", "revenue"),
        short=("GMV", "GMV"),
    ),
    _base(
        "placed_orders",
        "Orders placed",
        "下单量",
        "count",
        Measure(_ORDERS, _CREATED, (NOT_SAMPLE,), "1", "order"),
        "Orders created in the period, sample orders excluded.",
    ),
    _base(
        "orders",
        "Orders (paid)",
        "成交订单",
        "count",
        Measure(_ORDERS, _PAID, (NOT_SAMPLE,), "1", "order"),
        "Orders paid in the period, sample orders excluded.",
        aliases=("paid_orders",),
        words=("订单", "单量", "订单数", "成交单", "orders", "order count"),
        short=("订单数", "Orders"),
    ),
    _base(
        "cancelled_orders",
        "Cancelled orders",
        "取消订单",
        "count",
        Measure(_ORDERS, _CREATED, (NOT_SAMPLE, CANCELLED), "1", "order"),
        "Orders created in the period whose status is CANCELLED, sample orders excluded.",
        direction="lower",
    ),
    _base(
        "cancelled_paid_gmv",
        "Cancelled after payment",
        "付款后取消金额",
        "money",
        Measure(_ORDERS, _PAID, (NOT_SAMPLE, CANCELLED), "t.sub_total", "order"),
        "Σ sub_total of orders paid in the period and later CANCELLED, sample orders excluded.",
        direction="lower",
    ),
    _base(
        "refund_amount",
        "Refunds (period view)",
        "退款额（按退款时间）",
        "money",
        Measure(
            "refunds", "t.update_time", (COMPLETED, ORDER_NOT_SAMPLE), "t.refund_amount", "order"
        ),
        "Σ refund_amount of refunds COMPLETED in the period (by the refund's update_time), "
        "refunds of sample orders excluded.",
        direction="lower",
        words=("退款额", "退款金额", "refund amount"),
    ),
    _base(
        "cohort_refund_amount",
        "Refunds (cohort view)",
        "退款额（按订单）",
        "money",
        Measure(
            "refunds", "o.paid_time", (COMPLETED, "NOT o.is_sample"), "t.refund_amount", "order"
        ),
        "Σ refund_amount of COMPLETED refunds whose order was paid in the period, sample "
        "orders excluded.",
        direction="lower",
    ),
    _base(
        "cohort_refunded_orders",
        "Refunded orders",
        "退款订单",
        "count",
        Measure(_ORDERS, _PAID, (NOT_SAMPLE, HAS_COMPLETED_REFUND), "1", "order"),
        "Orders paid in the period with at least one COMPLETED refund, sample orders excluded.",
        direction="lower",
        source="refunds",  # read along the orders, settled as refunds are
    ),
    _base(
        "live_gmv",
        "Live GMV",
        "直播成交额",
        "money",
        Measure(_ORDERS, _PAID, (NOT_SAMPLE, LIVE), "t.sub_total", "order"),
        "GMV of orders whose channel is live.",
        words=("直播成交额", "直播gmv", "live gmv", "live sales"),
    ),
    _base(
        "live_orders",
        "Live orders",
        "直播订单",
        "count",
        Measure(_ORDERS, _PAID, (NOT_SAMPLE, LIVE), "1", "order"),
        "Paid orders whose channel is live.",
        words=("直播订单", "live orders"),
    ),
    _base(
        "views",
        "Live views",
        "观看次数",
        "count",
        Measure(_LIVES, "t.start_time", (), "t.views", "hosts"),
        "Σ views of live sessions that started in the period.",
        words=("观看次数", "浏览量", "观看", "views", "traffic", "流量"),
        short=("观看次数", "Views"),
    ),
    _base(
        "viewers",
        "Live viewers",
        "观看人数",
        "count",
        Measure(_LIVES, "t.start_time", (), "t.viewers", "hosts"),
        "Σ unique viewers of live sessions that started in the period.",
        words=("观看人数", "viewers", "audience"),
    ),
    _base(
        "watch_seconds",
        "Watch time",
        "总观看时长",
        "seconds",
        Measure(_LIVES, "t.start_time", (), "t.avg_viewing_ms * t.viewers", "hosts", per=1000),
        "Σ avg_viewing_seconds × viewers of live sessions that started in the period.",
    ),
    _base(
        "product_impressions",
        "Product impressions",
        "商品曝光",
        "count",
        Measure(_LIVES, "t.start_time", (), "t.product_impressions", "hosts"),
        "Σ product impressions in live sessions that started in the period.",
    ),
    _base(
        "product_clicks",
        "Product clicks",
        "商品点击",
        "count",
        Measure(_LIVES, "t.start_time", (), "t.product_clicks", "hosts"),
        "Σ product clicks in live sessions that started in the period.",
    ),
    _base(
        "live_seconds",
        "Live duration",
        "直播时长",
        "seconds",
        Measure(_LIVES, "t.start_time", (), "t.end_time - t.start_time", "hosts"),
        "Σ end_time − start_time of live sessions that started in the period: the hours a host "
        "was on air.",
        words=("直播时长", "开播时长", "live hours", "live duration", "hours live"),
    ),
    _base(
        "effective_live_seconds",
        "Effective live duration",
        "有效直播时长",
        "seconds",
        Measure(
            _LIVES,
            "t.start_time",
            (f"t.end_time - t.start_time >= {EFFECTIVE_LIVE_SECONDS}",),
            "t.end_time - t.start_time",
            "hosts",
        ),
        "Σ end_time − start_time of the live sessions that started in the period and lasted at "
        "least `organisation.effective_live_minutes` (default 30): the hours on air that count.",
        words=(
            "有效直播时长",
            "有效开播时长",
            "有效时长",
            "effective live hours",
            "effective live duration",
        ),
    ),
    _base(
        "comments",
        "Live comments",
        "评论数",
        "count",
        Measure(_LIVES, "t.start_time", (), "t.comments", "hosts"),
        "Σ comments in live sessions that started in the period.",
        words=("评论数", "评论", "弹幕", "comments"),
    ),
    _base(
        "likes",
        "Live likes",
        "点赞数",
        "count",
        Measure(_LIVES, "t.start_time", (), "t.likes", "hosts"),
        "Σ likes in live sessions that started in the period.",
        words=("点赞数", "点赞量", "点赞", "likes"),
    ),
    _base(
        "new_followers",
        "New followers",
        "新增粉丝",
        "count",
        Measure(_LIVES, "t.start_time", (), "t.new_followers", "hosts"),
        "Σ followers gained in live sessions that started in the period.",
        words=("新增粉丝", "涨粉", "新粉", "new followers", "follower growth", "followers gained"),
    ),
    _base(
        "live_shares",
        "Live shares",
        "分享数",
        "count",
        Measure(_LIVES, "t.start_time", (), "t.social_shares", "hosts"),
        "Σ times viewers shared live sessions that started in the period (the import's "
        "`shares` column).",
        words=("分享数", "分享量", "转发数", "live shares"),
    ),
    _base(
        "ad_spend",
        "Ad spend",
        "广告花费",
        "money",
        Measure("ad_spend", "t.date", (), "t.spend", "person"),
        "Σ spend of ad campaigns on the days of the period.",
        direction="lower",
        words=("广告花费", "消耗", "花费", "投放", "ad spend", "spend"),
    ),
    _base(
        "ad_revenue",
        "Ad-attributed revenue",
        "广告归因成交",
        "money",
        Measure("ad_spend", "t.date", (), "t.attributed_revenue", "person"),
        "Σ revenue the ad platforms attribute to the campaigns on the days of the period.",
    ),
    _base(
        "shop_visitors",
        "Shop visitors",
        "店铺访客",
        "count",
        Measure("metric_values", "t.date", (SHOP_VISITORS,), "t.value", "none"),
        "Σ daily unique visitors of the shops, imported as `metric_values` rows "
        "`shop_visitors` per shop (the platforms' shop traffic reports); people have none.",
        words=("访客", "访客数", "店铺访客", "visitors", "shop visitors"),
    ),
)

_DERIVED = (
    _Derived(
        "net_gmv",
        "Net GMV (period view)",
        "净成交额",
        "money",
        "gmv - refund_amount - cancelled_paid_gmv",
        "GMV less refunds completed in the period and post-payment cancellations.",
        words=("净gmv", "净成交额", "净成交", "net gmv", "net sales"),
    ),
    _Derived(
        "cohort_net_gmv",
        "Net GMV (cohort view)",
        "净成交额（按订单）",
        "money",
        "gmv - cohort_refund_amount - cancelled_paid_gmv",
        "GMV less the refunds and cancellations of the same orders; revised as refunds "
        "arrive (about 30 days).",
    ),
    _Derived(
        "aov",
        "Average order value",
        "客单价",
        "money",
        "gmv / orders",
        "GMV ÷ paid orders.",
        aliases=("客单价",),
        words=("客单价", "aov", "average order value", "basket"),
        short=("客单价", "AOV"),
    ),
    _Derived(
        "refund_rate",
        "Refund rate (orders)",
        "退款率",
        "ratio",
        "cohort_refunded_orders / orders",
        "Refunded orders ÷ paid orders, in the cohort of the order's payment date.",
        direction="lower",
        aliases=("return_rate",),
        words=("退货率", "退款率", "退单率", "refund rate", "return rate", "refunds"),
        short=("退款率", "Refund rate"),
    ),
    _Derived(
        "refund_amount_rate",
        "Refund rate (amount)",
        "退款金额率",
        "ratio",
        "cohort_refund_amount / gmv",
        "Refund amount ÷ GMV, in the cohort of the order's payment date.",
        direction="lower",
    ),
    _Derived(
        "cancellation_rate",
        "Cancellation rate",
        "取消率",
        "ratio",
        "cancelled_orders / placed_orders",
        "Cancelled orders ÷ orders placed.",
        direction="lower",
        words=("取消率", "cancellation rate", "cancel rate"),
    ),
    _Derived(
        "live_gpm",
        "Live GPM",
        "千次观看成交",
        "money",
        "live_gmv / views * 1000",
        "Live GMV per 1,000 live views (TikTok's watch GPM).",
        words=("gpm", "千次观看成交"),
    ),
    _Derived(
        "product_ctr",
        "Product CTR",
        "商品点击率",
        "ratio",
        "product_clicks / product_impressions",
        "Product clicks ÷ product impressions.",
        words=("点击率", "ctr", "click-through"),
    ),
    _Derived(
        "click_to_order_rate",
        "Click-to-order rate",
        "点击成交率",
        "ratio",
        "live_orders / product_clicks",
        "Live orders ÷ product clicks (CTOR). Not the live conversion rate.",
        words=("点击成交率", "点击转化率", "ctor", "click-to-order", "click to order"),
    ),
    _Derived(
        "live_conversion_rate",
        "Live conversion rate",
        "直播观看转化率",
        "ratio",
        "live_orders / views",
        "Live orders ÷ live views: the conversion of the GMV explanation's live traffic. "
        "What 转化率 / conversion means in chat.",
        words=(
            "转化率",
            "直播转化率",
            "直播间转化率",
            "观看转化率",
            "cvr",
            "conversion",
            "conversion rate",
            "live conversion",
        ),
    ),
    _Derived(
        "live_aov",
        "Live order value",
        "直播客单价",
        "money",
        "live_gmv / live_orders",
        "Live GMV ÷ live orders.",
        words=("直播客单价", "live aov", "live order value"),
    ),
    _Derived(
        "shop_conversion_rate",
        "Shop conversion rate",
        "店铺转化率",
        "ratio",
        "orders / shop_visitors",
        "Paid orders ÷ shop visitors (where the shops' traffic is imported).",
        words=("店铺转化率", "shop conversion", "shop conversion rate"),
    ),
    _Derived(
        "avg_watch_seconds",
        "Average watch time",
        "平均观看时长",
        "seconds",
        "watch_seconds / viewers",
        "Watch time ÷ viewers.",
        words=("观看时长", "停留时长", "停留", "watch time", "avg watch"),
    ),
    _Derived(
        "interaction_rate",
        "Interaction rate",
        "互动率",
        "ratio",
        "(comments + likes + live_shares) / viewers",
        "Comments, likes and shares per live viewer.",
        words=("互动率", "直播互动率", "engagement rate", "interaction rate", "engagement"),
    ),
    _Derived(
        "roas",
        "ROAS",
        "投产比",
        "decimal",
        "ad_revenue / ad_spend",
        "Ad-attributed revenue ÷ ad spend.",
        words=("roas", "投产比", "投产", "roi"),
    ),
    _Derived(
        "acos",
        "ACoS",
        "广告成本占比",
        "ratio",
        "ad_spend / ad_revenue",
        "Ad spend ÷ ad-attributed revenue (1 ÷ ROAS).",
        direction="lower",
        words=("acos",),
    ),
    _Derived(
        "tacos",
        "TACoS",
        "总广告成本占比",
        "ratio",
        "ad_spend / gmv",
        "Ad spend ÷ total GMV.",
        direction="lower",
        words=("tacos",),
    ),
)


class MetricError(ValueError):
    """A metric definition that cannot be used; `column` locates a formula problem."""

    def __init__(
        self,
        message: str,
        column: int | None = None,
        cycle: tuple[str, ...] = (),
        metric: str = "",
    ) -> None:
        super().__init__(message)
        self.column = column
        self.cycle = cycle  # the metrics of a reference cycle, first one repeated at the end
        self.metric = metric  # the metric at fault


@dataclass(frozen=True)
class Catalogue:
    """All metrics by key, with aliases, in a dependency-checked whole."""

    metrics: Mapping[str, Metric]
    aliases: Mapping[str, str]

    def get(self, name: str) -> Metric | None:
        """A metric by key or alias."""
        return self.metrics.get(self.aliases.get(name, name))

    def sources(self, key: str) -> frozenset[Source]:
        """The data sources behind a metric (their settlement lags make it provisional)."""
        return frozenset(
            source
            for base in self.base_dependencies(key)
            if (source := self.metrics[base].source) is not None
        )

    def base_dependencies(self, key: str) -> frozenset[str]:
        """The base measures a metric is computed from (itself, for a base measure)."""
        metric = self.metrics[key]
        if metric.formula is None:
            return frozenset({key})
        found: set[str] = set()
        for reference in metric.formula.references:
            found |= self.base_dependencies(reference)
        return frozenset(found)

    def measures(self) -> dict[str, Measure]:
        """Every base measure's computation, in catalogue order."""
        return {k: m.measure for k, m in self.metrics.items() if m.measure is not None}

    def evaluate(
        self, keys: Iterable[str], bases: Mapping[str, Decimal | None]
    ) -> dict[str, Decimal | None]:
        """The values of `keys` from the base measures' values: formulas over formulas are
        evaluated inner first (each once), so `aov * 2` or `net_gmv / orders` have values."""
        values: dict[str, Decimal | None] = dict(bases)

        def value_of(key: str) -> Decimal | None:
            if key not in values:
                formula = self.metrics[key].formula
                if formula is None:
                    raise KeyError(f"base measure {key!r} was not computed")
                values[key] = formula.evaluate(
                    {name: value_of(name) for name in formula.references}
                )
            return values[key]

        return {key: value_of(key) for key in keys}

    def words(self) -> list[tuple[str, str]]:
        """(word, key): every way a metric may be named in chat — its key (also with spaces),
        its names, aliases and words."""
        found: list[tuple[str, str]] = []
        for key, metric in self.metrics.items():
            names = (
                key,
                key.replace("_", " "),
                metric.name_en.lower(),
                metric.name_zh,
                metric.name_ja or "",
            )
            for word in (*names, *metric.aliases, *metric.words):
                if word:
                    found.append((word.lower(), key))
        return list(dict.fromkeys(found))


def builtin_metrics() -> list[Metric]:
    """The built-in catalogue, base measures first."""
    derived = [
        Metric(
            d.key,
            d.en,
            d.zh,
            d.unit,
            d.direction,
            d.definition,
            None,
            parse_formula(d.formula),
            d.aliases,
            words=d.words,
            short=d.short,
        )
        for d in _DERIVED
    ]
    return [*_BASE, *derived]


def custom_metric(
    key: str,
    name_en: str,
    name_zh: str,
    unit: Unit,
    direction: Direction,
    formula: str,
    words: tuple[str, ...] = (),
    *,
    name_ja: str | None = None,
) -> Metric:
    """A metric from config; raises MetricError (with the formula's column) if it won't parse.

    Its references are checked when the whole catalogue is built (custom metrics may use
    each other).
    """
    try:
        parsed = parse_formula(formula)
    except FormulaError as exc:
        raise MetricError(f"formula: {exc.message}", exc.position) from None
    return Metric(
        key,
        name_en,
        name_zh,
        unit,
        direction,
        formula,
        None,
        parsed,
        (),
        False,
        words=words,
        name_ja=name_ja,
    )


def aggregate_imported(
    spec: Imported,
    values: Mapping[tuple[str, date], Decimal],
    weights: Mapping[tuple[str, date], Decimal] | None = None,
) -> Decimal | None:
    """An imported metric's value over the rows of a period, each keyed by (person, team or
    shop, day), by its aggregation (`Imported`); None without rows (or weights)."""
    if not values:
        return None
    rows = list(values.values())
    if spec.aggregate == "sum":
        return sum(rows, Decimal(0))
    if spec.aggregate == "min":
        return min(rows)
    if spec.aggregate == "max":
        return max(rows)
    if spec.aggregate == "weighted":
        paired = [(v, (weights or {}).get(k)) for k, v in values.items()]
        total = sum((w for _, w in paired if w is not None), Decimal(0))
        if total == 0:
            return None
        return sum((v * w for v, w in paired if w is not None), Decimal(0)) / total
    if spec.aggregate == "latest":
        latest: dict[str, tuple[date, Decimal]] = {}
        for (owner, day), value in values.items():
            if owner not in latest or day > latest[owner][0]:
                latest[owner] = (day, value)
        rows = [value for _, value in latest.values()]
    return sum(rows, Decimal(0)) / len(rows)


def imported_metric(
    key: str,
    name_en: str,
    name_zh: str,
    unit: Unit,
    direction: Direction,
    imported: Imported,
    words: tuple[str, ...] = (),
    *,
    name_ja: str | None = None,
) -> Metric:
    """A metric from config whose daily values are imported as `metric_values` rows."""
    return Metric(
        key,
        name_en,
        name_zh,
        unit,
        direction,
        f"Imported daily as `metric_values` rows `{key}`; aggregated by {imported.aggregate}.",
        "metric_values",
        None,
        (),
        False,
        words=words,
        name_ja=name_ja,
        imported=imported,
    )


def build_catalogue(custom: Iterable[Metric] = ()) -> Catalogue:
    """The built-ins plus `custom` metrics; raises MetricError on clashes or cycles."""
    metrics: dict[str, Metric] = {}
    aliases: dict[str, str] = {}
    for metric in [*builtin_metrics(), *custom]:
        if metric.key in metrics or metric.key in aliases:
            kind = (
                "built-in" if metric.key in metrics and metrics[metric.key].builtin else "defined"
            )
            raise MetricError(f"metric {metric.key!r} is already {kind}")
        metrics[metric.key] = metric
        for alias in metric.aliases:
            aliases[alias] = metric.key
    for metric in metrics.values():
        _check_acyclic(metric.key, metrics, ())
    return Catalogue(metrics, aliases)


def _check_acyclic(key: str, metrics: Mapping[str, Metric], trail: tuple[str, ...]) -> None:
    if key in trail:
        cycle = (*trail[trail.index(key) :], key)
        raise MetricError(
            f"metrics refer to each other in a cycle: {' -> '.join(cycle)}", cycle=cycle
        )
    formula = metrics[key].formula
    for reference in sorted(formula.references if formula else ()):
        if reference not in metrics:
            raise MetricError(
                f"uses metric {reference!r}, which is not defined (or has errors)", metric=key
            )
        _check_acyclic(reference, metrics, (*trail, key))
