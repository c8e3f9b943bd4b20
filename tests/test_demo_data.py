"""The demo data generator: deterministic, consistent with the import formats, no database."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from statistics import median

import pytest

from kpi_engine.demo_data import FILE_KINDS, GeneratedData, generate, write_large_config
from kpi_engine.ingest.formats import KINDS, ORDER_STATUSES
from kpi_engine.instants import day_bounds, zone
from kpi_engine.organisation import Organisation, Problem, check_organisation
from tests.conftest import EXAMPLE_CONFIG

END = date(2026, 11, 12)  # the range covers the DST change of 2026-11-01 and 11.11
DAYS = 14
DAY = 86_400


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def key(row: dict[str, str]) -> tuple[str, str, str]:
    return row["platform"], row["shop_id"], row["order_id"]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, organisation: Organisation) -> GeneratedData:
    out = tmp_path_factory.mktemp("small")
    return generate(organisation, EXAMPLE_CONFIG, out, days=DAYS, end=END, seed=3)


@dataclass(frozen=True)
class Large:
    config_dir: Path
    organisation: Organisation | None
    problems: list[Problem]
    data: GeneratedData


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Large:
    config_dir = write_large_config(tmp_path_factory.mktemp("large-config"))
    organisation, problems = check_organisation(config_dir)
    assert organisation is not None, [str(p) for p in problems]
    out = tmp_path_factory.mktemp("large")
    # Two ordinary days (no promo) of about 27,400 orders each.
    data = generate(organisation, config_dir, out, scale="large", days=2, end=date(2026, 10, 7))
    return Large(config_dir, organisation, problems, data)


def test_files_are_in_import_order_with_the_format_headers(small: GeneratedData) -> None:
    assert list(small.files) == [
        "fx_rates",
        "live_sessions",
        "orders",
        "order_revisions",
        "refunds",
        "ad_spend",
        "metric_values",
    ]
    for label, path in small.files.items():
        kind = KINDS[FILE_KINDS.get(label, label)]
        with path.open(encoding="utf-8", newline="") as handle:
            assert next(csv.reader(handle)) == [c.name for c in kind.columns]
        assert small.counts[label] == len(rows(path)) > 0


def test_same_seed_same_files_and_another_seed_differs(
    small: GeneratedData, organisation: Organisation, tmp_path: Path
) -> None:
    again = generate(organisation, EXAMPLE_CONFIG, tmp_path / "a", days=DAYS, end=END, seed=3)
    other = generate(organisation, EXAMPLE_CONFIG, tmp_path / "b", days=DAYS, end=END, seed=4)
    for label, path in small.files.items():
        assert again.files[label].read_bytes() == path.read_bytes(), label
    assert other.files["orders"].read_bytes() != small.files["orders"].read_bytes()


def test_jpy_amounts_have_no_decimals(small: GeneratedData, large: Large) -> None:
    amounts = {
        "orders": ("sub_total", "total_amount"),
        "order_revisions": ("sub_total", "total_amount"),
        "refunds": ("refund_amount",),
        "ad_spend": ("spend", "attributed_revenue"),
    }
    for data in (small, large.data):
        seen = 0
        for label, columns in amounts.items():
            for row in rows(data.files[label]):
                if row["currency"] == "JPY":
                    seen += 1
                    assert all(row[c].isdigit() for c in columns), row
        assert seen > 0


def test_orders_are_plausible(small: GeneratedData, organisation: Organisation) -> None:
    orders = rows(small.files["orders"])
    statuses = Counter(o["status"] for o in orders)
    assert set(statuses) <= set(ORDER_STATUSES)
    assert 0.02 < statuses["CANCELLED"] / len(orders) < 0.07
    assert statuses["UNPAID"] > 0
    per_day: Counter[tuple[str, date]] = Counter()
    for order in orders:
        created, updated = int(order["create_time"]), int(order["update_time"])
        if order["status"] == "UNPAID":
            assert order["paid_time"] == ""
        elif order["paid_time"]:
            assert created <= int(order["paid_time"]) <= updated
        assert created <= updated
        if order["channel"] == "live":
            assert order["live_session_id"]
        tz = zone(organisation.shops[order["shop_id"]].timezone)
        per_day[(order["shop_id"], datetime.fromtimestamp(created, tz).date())] += 1
    # Every order was created on one of the generated local days of its shop (DST included).
    assert {day for _, day in per_day} == {date(2026, 10, 30 + i) for i in range(2)} | {
        date(2026, 11, d) for d in range(1, 13)
    }
    us = [n for (shop, day), n in per_day.items() if shop == "tts-us-01" and day.day != 11]
    assert per_day[("tts-us-01", date(2026, 11, 11))] > 2.5 * median(us)
    shops = Counter(o["shop_id"] for o in orders)
    assert shops.most_common(1)[0][0] == "tts-us-01"
    assert 700 * DAYS < len(orders) < 1_400 * DAYS


def test_live_orders_fall_inside_their_session(small: GeneratedData) -> None:
    lives = {r["session_id"]: r for r in rows(small.files["live_sessions"])}
    for order in rows(small.files["orders"]):
        if order["live_session_id"]:
            live = lives[order["live_session_id"]]
            start = int(datetime.fromisoformat(live["start_time"]).timestamp())
            end = int(datetime.fromisoformat(live["end_time"]).timestamp())
            assert live["shop_id"] == order["shop_id"]
            assert start <= int(order["create_time"]) < end


def test_revisions_are_newer_versions_of_existing_orders(small: GeneratedData) -> None:
    originals = {key(o): o for o in rows(small.files["orders"])}
    revisions = rows(small.files["order_revisions"])
    assert len({key(r) for r in revisions}) == len(revisions) > 0
    for revision in revisions:
        original = originals[key(revision)]
        assert int(revision["update_time"]) > int(original["update_time"])
        assert revision["status"] != original["status"]
        same = set(revision) - {"status", "update_time"}
        assert {c: revision[c] for c in same} == {c: original[c] for c in same}


def test_refunds_fit_their_orders(small: GeneratedData, organisation: Organisation) -> None:
    orders = {key(o): o for o in rows(small.files["orders"])}
    refunds = rows(small.files["refunds"])
    assert len({(r["shop_id"], r["refund_id"]) for r in refunds}) == len(refunds) > 0
    for refund in refunds:
        order = orders[(refund["platform"], refund["shop_id"], refund["order_id"])]
        assert Decimal(refund["refund_amount"]) <= Decimal(order["sub_total"])
        created, updated = int(refund["create_time"]), int(refund["update_time"])
        tz = zone(organisation.shops[refund["shop_id"]].timezone)
        assert int(order["paid_time"]) + DAY <= created <= updated <= day_bounds(END, tz)[1]


def test_large_config_is_valid_and_large(large: Large) -> None:
    organisation, data = large.organisation, large.data
    assert [str(p) for p in large.problems if p.severity == "error"] == []
    assert organisation is not None
    assert len(organisation.shops) == 200
    assert len(organisation.people) == 2_000
    assert len(organisation.teams) >= 20
    roles = Counter(p.role for p in organisation.people.values())
    assert roles["admin"] == 1
    assert all(team.manager for team in organisation.teams.values())
    assert {s.platform for s in organisation.shops.values()} == {
        "tiktok",
        "shopee",
        "lazada",
        "amazon",
    }
    assert 2 * 24_000 < data.counts["orders"] < 2 * 31_000
