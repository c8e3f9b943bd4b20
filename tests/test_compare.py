"""Deltas, rankings with ties, movers, and exact change attribution."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from kpi_engine.compare import Delta, explain_gmv, movers, rank, shapley

D = Decimal


def test_delta() -> None:
    assert Delta(D(80), D(100)).change == 20 and Delta(D(80), D(100)).ratio == D("0.25")
    assert Delta(D(0), D(5)).ratio is None and Delta(None, D(5)).change is None


def test_rank_with_ties_missing_and_direction() -> None:
    ranked = rank({"a": D(5), "b": D(9), "c": D(5), "d": None, "e": D(1)})
    assert [(r.entity, r.rank) for r in ranked] == [
        ("b", 1),
        ("a", 2),
        ("c", 2),
        ("e", 4),
        ("d", None),
    ]
    lower = rank({"a": D("0.05"), "b": D("0.02"), "c": D("0.05")}, "lower")
    assert [(r.entity, r.rank) for r in lower] == [("b", 1), ("a", 2), ("c", 2)]


def test_movers() -> None:
    deltas = {
        "a": Delta(D(10), D(30)),
        "b": Delta(D(10), D(5)),
        "c": Delta(D(10), D(10)),
        "d": Delta(D(50), D(10)),
        "e": Delta(None, D(3)),
    }
    risers, fallers = movers(deltas, count=2)
    assert [e for e, _ in risers] == ["a"] and [e for e, _ in fallers] == ["d", "b"]


fractions = st.fractions(min_value=0, max_value=10**6, max_denominator=1000)


@given(st.lists(st.tuples(fractions, fractions), min_size=1, max_size=4))
def test_shapley_shares_add_up_exactly(pairs: list[tuple[Fraction, Fraction]]) -> None:
    before, after = [p[0] for p in pairs], [p[1] for p in pairs]
    shares = shapley(before, after)
    total_before, total_after = Fraction(1), Fraction(1)
    for b, a in pairs:
        total_before, total_after = total_before * b, total_after * a
    assert sum(shares) == total_after - total_before
    for index, (b, a) in enumerate(pairs):
        if a == b:
            assert shares[index] == 0  # a factor that did not move gets nothing


def test_traffic_drop_is_named() -> None:
    # Every order live: the traffic covers them all.
    before = {"gmv": D(10000), "orders": D(200), "views": D(100000)}
    before |= {"live_gmv": D(10000), "live_orders": D(200)}
    after = {"gmv": D(7500), "orders": D(150), "views": D(75000)}  # same conversion and AOV
    after |= {"live_gmv": D(7500), "live_orders": D(150)}
    explanation = explain_gmv(before, after)
    assert explanation is not None
    assert explanation.change == -2500 and explanation.unexplained == 0
    assert [(d.name, d.contribution) for d in explanation.drivers] == [
        ("traffic", D(-2500)),
        ("conversion", D(0)),
        ("aov", D(0)),
    ]
    assert explanation.covered_share == 1
    assert explanation.biggest is not None and explanation.biggest.name == "traffic"


def test_live_traffic_explains_the_live_orders_and_names_the_rest() -> None:
    # A quarter of the orders are live: live views explain those, the other orders' change
    # (Amazon, the shop page, videos) is left unexplained and said to be.
    before = {"gmv": D(40000), "orders": D(400), "views": D(10000)}
    before |= {"live_gmv": D(10000), "live_orders": D(100)}
    after = {"gmv": D(31000), "orders": D(310), "views": D(12000)}
    after |= {"live_gmv": D(12000), "live_orders": D(120)}
    explanation = explain_gmv(before, after)
    assert explanation is not None and explanation.traffic == "views"
    total = sum((d.contribution for d in explanation.drivers), D(0))
    assert total == 2000  # the live GMV's change, all of it traffic
    assert explanation.unexplained == -11000 and total + explanation.unexplained == -9000
    assert explanation.covered_share == D(120) / D(310)
    assert explanation.biggest is not None and explanation.biggest.name == "other"
    # With the shops' own traffic every order is covered.
    shops = explain_gmv(
        before | {"shop_visitors": D(20000)}, after | {"shop_visitors": D(15500)}, shop_traffic=True
    )
    assert shops is not None and shops.traffic == "shop_visitors" and shops.unexplained == 0
    assert [d.metric for d in shops.drivers] == ["shop_visitors", "shop_conversion_rate", "aov"]
    assert sum((d.contribution for d in shops.drivers), D(0)) == -9000


def test_mixed_changes_add_up_and_no_traffic_falls_back() -> None:
    before = {"gmv": D("12000.50"), "orders": D(300), "views": D(90000)}
    before |= {"live_gmv": D("12000.50"), "live_orders": D(300)}
    after = {"gmv": D("9800.25"), "orders": D(280), "views": D(110000)}
    after |= {"live_gmv": D("9800.25"), "live_orders": D(280)}
    explanation = explain_gmv(before, after)
    assert explanation is not None
    total = sum((d.contribution for d in explanation.drivers), D(0))
    assert abs(total - explanation.change) < D("1e-20")
    assert explanation.biggest is not None and explanation.biggest.name == "conversion"
    mall = explain_gmv(
        {"gmv": D(100), "orders": D(4), "views": None},
        {"gmv": D(150), "orders": D(5), "views": None},
    )
    assert mall is not None and [d.name for d in mall.drivers] == ["orders", "aov"]
    assert explain_gmv({"gmv": D(5), "orders": D(0)}, {"gmv": D(5), "orders": D(1)}) is None
    assert explain_gmv({"gmv": None}, {"gmv": D(5)}) is None
