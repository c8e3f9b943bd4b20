"""The metric catalogue, custom metrics from config, and docs/metrics.md kept in step."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from kpi_engine.metrics import MetricError, build_catalogue, custom_metric
from kpi_engine.organisation import check_organisation, load_organisation
from tests.conftest import EXAMPLE_CONFIG, ROOT


def test_builtin_catalogue_is_consistent() -> None:
    catalogue = build_catalogue()
    assert catalogue.get("paid_gmv") is catalogue.get("gmv")
    assert catalogue.base_dependencies("net_gmv") == {"gmv", "refund_amount", "cancelled_paid_gmv"}
    assert catalogue.sources("net_gmv") == {"orders", "refunds"}
    assert catalogue.sources("tacos") == {"ad_spend", "orders"}
    aov = catalogue.metrics["aov"]
    assert aov.formula is not None
    assert aov.formula.evaluate({"gmv": Decimal("100"), "orders": Decimal(4)}) == 25
    assert aov.formula.evaluate({"gmv": Decimal("100"), "orders": Decimal(0)}) is None
    for metric in catalogue.metrics.values():
        assert metric.name_zh and metric.name_en and metric.definition
        assert catalogue.sources(metric.key), metric.key


def test_custom_metrics_build_and_refuse_cycles() -> None:
    share = custom_metric(
        "live_share", "Live share", "直播占比", "ratio", "higher", "live_gmv / gmv"
    )
    catalogue = build_catalogue([share])
    assert catalogue.sources("live_share") == {"orders"}
    a = custom_metric("a_metric", "A", "甲", "decimal", "higher", "b_metric + 1")
    b = custom_metric("b_metric", "B", "乙", "decimal", "higher", "a_metric * 2")
    with pytest.raises(MetricError, match="cycle: a_metric -> b_metric -> a_metric"):
        build_catalogue([a, b])
    with pytest.raises(MetricError, match="'gmv' is already built-in"):
        build_catalogue([custom_metric("gmv", "G", "G", "money", "higher", "orders")])
    with pytest.raises(MetricError) as caught:
        custom_metric("x", "X", "X", "ratio", "higher", "gmv / (orders")
    assert caught.value.column == 13


def test_example_config_has_custom_metrics() -> None:
    organisation = load_organisation(EXAMPLE_CONFIG)
    assert organisation.catalogue.base_dependencies("net_gmv_per_order") == {
        "gmv",
        "refund_amount",
        "cancelled_paid_gmv",
        "orders",
    }


def test_a_custom_metric_is_named_in_each_language_it_has_a_name_in() -> None:
    catalogue = load_organisation(EXAMPLE_CONFIG).catalogue
    share, per_order = catalogue.metrics["live_gmv_share"], catalogue.metrics["net_gmv_per_order"]
    assert [share.name(language) for language in ("zh", "en", "ja")] == [
        "直播成交占比",
        "Live share of GMV",
        "ライブ売上比率",
    ]
    # Without a Japanese name, a Japanese reader reads the English one (not the Chinese).
    assert per_order.name("ja") == "Net GMV per order"
    # And the Japanese name is a word people may type for it.
    assert ("ライブ売上比率", "live_gmv_share") in catalogue.words()


def test_metric_config_errors_are_located(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    (config / "kpis.yaml").write_text(
        "metrics:\n"
        "  - {key: gmv, name: {en: G, zh: G}, unit: money, direction: higher, formula: orders}\n"
        "  - {key: bad_formula, name: {en: B, zh: B}, unit: ratio, direction: higher, formula: 'gmv / (orders'}\n"
        "  - {key: typo, name: {en: T, zh: T}, unit: ratio, direction: higher, formula: 'live_gvm / gmv'}\n"
        "  - {key: loop_a, name: {en: A, zh: A}, unit: ratio, direction: up, formula: 'loop_b'}\n"
        "  - {key: loop_b, name: {en: B, zh: B}, unit: ratio, direction: lower, formula: 'loop_c + 1'}\n"
        "  - {key: loop_c, name: {en: C, zh: C}, unit: ratio, direction: lower, formula: 'loop_b * 2'}\n",
        encoding="utf-8",
    )
    organisation, problems = check_organisation(config)
    assert organisation is None
    found = {(p.line, p.path, p.message, p.hint) for p in problems if p.severity == "error"}
    assert (2, "metrics[0].key", "metric 'gmv' is a built-in metric", "choose another key") in found
    assert (
        3,
        "metrics[1].formula",
        "formula: missing ')' (column 14)",
        "use + - * / ( ), numbers and metric keys",
    ) in found
    assert (
        4,
        "metrics[2].formula",
        "unknown metric 'live_gvm'",
        "did you mean 'live_gmv'?",
    ) in found
    assert any(p[0] == 5 and p[1] == "metrics[3].direction" for p in found)
    cycle = "metrics refer to each other in a cycle: loop_b -> loop_c -> loop_b"
    assert (6, "metrics[4].formula", cycle, None) in found
    assert (7, "metrics[5].formula", cycle, None) in found


def test_docs_list_every_builtin_metric_as_coded() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| `(\w+)` \|[^|\n]*\|[^|\n]*\| (\w+) \|", text, re.M)
    }
    catalogue = build_catalogue()
    assert rows == {key: metric.unit for key, metric in catalogue.metrics.items()}
    for metric in catalogue.metrics.values():
        if metric.formula is not None:
            assert f"`{metric.formula.text}`" in text, metric.key
