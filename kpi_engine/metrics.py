"""The metric catalogue: one definition of every number, shared by everyone.

Base measures are sums and counts over stored rows; derived metrics are formulas over other
metrics. Each metric has a unit, a direction (is more better?), the data source whose
settlement lag makes it provisional, and names in Chinese and English. docs/metrics.md is the
readable form of this table, and a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from kpi_engine.formulas import Formula, FormulaError, parse_formula

Unit = Literal["money", "count", "ratio", "seconds", "decimal"]
Direction = Literal["higher", "lower"]
Source = Literal["orders", "refunds", "live_sessions", "ad_spend", "metric_values"]


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
    aliases: tuple[str, ...] = ()
    builtin: bool = True

    @property
    def derived(self) -> bool:
        """True for a formula over other metrics."""
        return self.formula is not None


def _base(
    key: str,
    en: str,
    zh: str,
    unit: Unit,
    source: Source,
    definition: str,
    *,
    direction: Direction = "higher",
    aliases: tuple[str, ...] = (),
) -> Metric:
    return Metric(key, en, zh, unit, direction, definition, source, None, aliases)


def _derived(
    key: str,
    en: str,
    zh: str,
    unit: Unit,
    formula: str,
    definition: str,
    *,
    direction: Direction = "higher",
    aliases: tuple[str, ...] = (),
) -> tuple[str, str, str, Unit, str, str, Direction, tuple[str, ...]]:
    return key, en, zh, unit, formula, definition, direction, aliases


_BASE = (
    _base(
        "placed_gmv",
        "Placed GMV",
        "下单GMV",
        "money",
        "orders",
        "Σ sub_total of orders created in the period (UNPAID included), sample orders excluded.",
    ),
    _base(
        "gmv",
        "GMV (paid)",
        "成交额",
        "money",
        "orders",
        "Σ sub_total of orders paid in the period (by paid_time), sample orders excluded; "
        "later cancellations and refunds included, as TikTok Seller Center counts it.",
        aliases=("paid_gmv",),
    ),
    _base(
        "placed_orders",
        "Orders placed",
        "下单量",
        "count",
        "orders",
        "Orders created in the period, sample orders excluded.",
    ),
    _base(
        "orders",
        "Orders (paid)",
        "成交订单",
        "count",
        "orders",
        "Orders paid in the period, sample orders excluded.",
        aliases=("paid_orders",),
    ),
    _base(
        "cancelled_orders",
        "Cancelled orders",
        "取消订单",
        "count",
        "orders",
        "Orders created in the period whose status is CANCELLED.",
        direction="lower",
    ),
    _base(
        "cancelled_paid_gmv",
        "Cancelled after payment",
        "付款后取消金额",
        "money",
        "orders",
        "Σ sub_total of orders paid in the period and later CANCELLED.",
        direction="lower",
    ),
    _base(
        "refund_amount",
        "Refunds (period view)",
        "退款额（按退款时间）",
        "money",
        "refunds",
        "Σ refund_amount of refunds COMPLETED in the period (by the refund's update_time).",
        direction="lower",
    ),
    _base(
        "cohort_refund_amount",
        "Refunds (cohort view)",
        "退款额（按订单）",
        "money",
        "refunds",
        "Σ refund_amount of COMPLETED refunds whose order was paid in the period.",
        direction="lower",
    ),
    _base(
        "cohort_refunded_orders",
        "Refunded orders",
        "退款订单",
        "count",
        "refunds",
        "Orders paid in the period with at least one COMPLETED refund.",
        direction="lower",
    ),
    _base(
        "live_gmv",
        "Live GMV",
        "直播成交额",
        "money",
        "orders",
        "GMV of orders whose channel is live.",
    ),
    _base(
        "live_orders",
        "Live orders",
        "直播订单",
        "count",
        "orders",
        "Paid orders whose channel is live.",
    ),
    _base(
        "views",
        "Live views",
        "观看次数",
        "count",
        "live_sessions",
        "Σ views of live sessions that started in the period.",
    ),
    _base(
        "viewers",
        "Live viewers",
        "观看人数",
        "count",
        "live_sessions",
        "Σ unique viewers of live sessions that started in the period.",
    ),
    _base(
        "watch_seconds",
        "Watch time",
        "总观看时长",
        "seconds",
        "live_sessions",
        "Σ avg_viewing_seconds × viewers of live sessions that started in the period.",
    ),
    _base(
        "product_impressions",
        "Product impressions",
        "商品曝光",
        "count",
        "live_sessions",
        "Σ product impressions in live sessions that started in the period.",
    ),
    _base(
        "product_clicks",
        "Product clicks",
        "商品点击",
        "count",
        "live_sessions",
        "Σ product clicks in live sessions that started in the period.",
    ),
    _base(
        "ad_spend",
        "Ad spend",
        "广告花费",
        "money",
        "ad_spend",
        "Σ spend of ad campaigns on the days of the period.",
        direction="lower",
    ),
    _base(
        "ad_revenue",
        "Ad-attributed revenue",
        "广告归因成交",
        "money",
        "ad_spend",
        "Σ revenue the ad platforms attribute to the campaigns on the days of the period.",
    ),
)

_DERIVED = (
    _derived(
        "net_gmv",
        "Net GMV (period view)",
        "净成交额",
        "money",
        "gmv - refund_amount - cancelled_paid_gmv",
        "GMV less refunds completed in the period and post-payment cancellations.",
    ),
    _derived(
        "cohort_net_gmv",
        "Net GMV (cohort view)",
        "净成交额（按订单）",
        "money",
        "gmv - cohort_refund_amount - cancelled_paid_gmv",
        "GMV less the refunds and cancellations of the same orders; revised as refunds "
        "arrive (about 30 days).",
    ),
    _derived(
        "aov",
        "Average order value",
        "客单价",
        "money",
        "gmv / orders",
        "GMV ÷ paid orders.",
        aliases=("客单价",),
    ),
    _derived(
        "refund_rate",
        "Refund rate (orders)",
        "退款率",
        "ratio",
        "cohort_refunded_orders / orders",
        "Refunded orders ÷ paid orders, in the cohort of the order's payment date.",
        direction="lower",
        aliases=("return_rate",),
    ),
    _derived(
        "refund_amount_rate",
        "Refund rate (amount)",
        "退款金额率",
        "ratio",
        "cohort_refund_amount / gmv",
        "Refund amount ÷ GMV, in the cohort of the order's payment date.",
        direction="lower",
    ),
    _derived(
        "cancellation_rate",
        "Cancellation rate",
        "取消率",
        "ratio",
        "cancelled_orders / placed_orders",
        "Cancelled orders ÷ orders placed.",
        direction="lower",
    ),
    _derived(
        "live_gpm",
        "Live GPM",
        "千次观看成交",
        "money",
        "live_gmv / views * 1000",
        "Live GMV per 1,000 live views (TikTok's watch GPM).",
    ),
    _derived(
        "product_ctr",
        "Product CTR",
        "商品点击率",
        "ratio",
        "product_clicks / product_impressions",
        "Product clicks ÷ product impressions.",
    ),
    _derived(
        "click_to_order_rate",
        "Click-to-order rate",
        "点击成交率",
        "ratio",
        "live_orders / product_clicks",
        "Live orders ÷ product clicks (CTOR).",
    ),
    _derived(
        "avg_watch_seconds",
        "Average watch time",
        "平均观看时长",
        "seconds",
        "watch_seconds / viewers",
        "Watch time ÷ viewers.",
    ),
    _derived(
        "roas",
        "ROAS",
        "投产比",
        "decimal",
        "ad_revenue / ad_spend",
        "Ad-attributed revenue ÷ ad spend.",
    ),
    _derived(
        "acos",
        "ACoS",
        "广告成本占比",
        "ratio",
        "ad_spend / ad_revenue",
        "Ad spend ÷ ad-attributed revenue (1 ÷ ROAS).",
        direction="lower",
    ),
    _derived(
        "tacos",
        "TACoS",
        "总广告成本占比",
        "ratio",
        "ad_spend / gmv",
        "Ad spend ÷ total GMV.",
        direction="lower",
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


def builtin_metrics() -> list[Metric]:
    """The built-in catalogue, base measures first."""
    derived = [
        Metric(key, en, zh, unit, direction, definition, None, parse_formula(formula), aliases)
        for key, en, zh, unit, formula, definition, direction, aliases in _DERIVED
    ]
    return [*_BASE, *derived]


def custom_metric(
    key: str, name_en: str, name_zh: str, unit: Unit, direction: Direction, formula: str
) -> Metric:
    """A metric from config; raises MetricError (with the formula's column) if it won't parse.

    Its references are checked when the whole catalogue is built (custom metrics may use
    each other).
    """
    try:
        parsed = parse_formula(formula)
    except FormulaError as exc:
        raise MetricError(f"formula: {exc.message}", exc.position) from None
    return Metric(key, name_en, name_zh, unit, direction, formula, None, parsed, (), builtin=False)


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
