"""Shopee: the signing vectors, 15-day windows with cursor pagination, details in batches of
50, and single-use refresh tokens written before any call uses the new access token."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Engine, select

from connectors.clock import VirtualClock
from connectors.shopee import ShopeeConnector
from connectors.shopee.auth import base_string, sign
from connectors.sync import SyncService
from kpi_engine.models import Order
from kpi_engine.organisation import Organisation
from tests import fakeshopee
from tests.fakeshop import Request
from tests.fakeshopee import FakeShopee
from tests.shopsync import NOW, Notices, build_sync, orders, refunds, shop_organisation

pytestmark = pytest.mark.db
SHOP = "shp-sg-01"
KEY = fakeshopee.PARTNER_KEY


def test_signing_vectors_t4_t5() -> None:
    # The doc's base strings, signed with the key of the doc's Go demo.
    shop_base = base_string(
        "2001887",
        "/api/v2/shop/get_shop_info",
        1655714431,
        "59777174636562737266615546704c6d",
        "14701711",
    )
    assert (
        shop_base
        == "2001887/api/v2/shop/get_shop_info165571443159777174636562737266615546704c6d14701711"
    )
    assert (
        sign(KEY, shop_base) == "87407e32ecf3a44d7b7262be1fe2a80a3ac0f71b11ceddc74c984d308afb5aa6"
    )
    public = base_string("2001887", "/api/v2/public/get_shops_by_partner", 1655714431)
    assert sign(KEY, public) == "1c35e367d9270ebea7f4aba889457b2e9f2ab8ab7b7b422bc9afa7c794612b12"


@pytest.fixture
def org(tmp_path: Path) -> Organisation:
    return shop_organisation(tmp_path)


def connect(
    engine: Engine,
    org: Organisation,
    fake: FakeShopee,
    clock: VirtualClock,
    notices: Notices | None = None,
) -> SyncService:
    shopee = ShopeeConnector(fakeshopee.PARTNER_ID, KEY, clock, api_url=fake.url)
    sync = build_sync(engine, org, {"shopee": shopee}, clock, notices)
    state = sync.store.begin(SHOP, "shopee", int(clock.now()))
    url = shopee.authorize_url(
        org.shops[SHOP], state, "https://kpibot.example.com/oauth/shopee/callback"
    )
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert urlsplit(url).path == "/api/v2/shop/auth_partner"
    assert query["sign"] == sign(KEY, f"2001887/api/v2/shop/auth_partner{query['timestamp']}")
    assert query["redirect"] == f"https://kpibot.example.com/oauth/shopee/callback?state={state}"
    grant = shopee.exchange(
        org.shops[SHOP], "shopee-code-1", {"shop_id": fakeshopee.SHOP_ID}, "", int(clock.now())
    )
    sync.store.activate(SHOP, "shopee", grant, int(clock.now()), every_minutes=10)
    return sync


def test_thirty_days_in_fifteen_day_windows_with_pages_and_batches(
    engine: Engine, org: Organisation
) -> None:
    clock = VirtualClock(NOW)
    with FakeShopee(clock.now) as fake:
        for n in range(240):
            fake.add_order(f"2611{n:05d}ABC", created=NOW - 29 * 86400 + n * 10_000)
        fake.add_order("2612COD", created=NOW - 500, status="SHIPPED")
        del fake.orders["2612COD"]["pay_time"]  # cash on delivery
        fake.add_return("2612RET1", "2611000001ABC", created=NOW - 3000, status="REFUND_PAID")
        sync = connect(engine, org, fake, clock)
        sync.run_due_syncs(NOW)
        assert orders(engine, SHOP) == 241 and refunds(engine, SHOP) == 1
        assert fake.bad_signatures == 0
        lists = fake.to("/api/v2/order/get_order_list")
        spans = [int(r.query["time_to"]) - int(r.query["time_from"]) for r in lists]
        assert max(spans) < 15 * 86400
        windows = {(r.query["time_from"], r.query["time_to"]) for r in lists}
        assert len(windows) == 3  # 30 days: 15 + 15 + the last minutes
        assert any(r.query["cursor"] for r in lists)  # pages within a window
        details = fake.to("/api/v2/order/get_order_detail")
        assert max(len(r.query["order_sn_list"].split(",")) for r in details) == 50
        with engine.connect() as conn:
            row = conn.execute(
                select(
                    Order.sub_total,
                    Order.total_amount,
                    Order.currency,
                    Order.paid_time,
                    Order.create_time,
                ).where(Order.order_id == "2612COD")
            ).one()  # type: ignore[call-overload]
        assert tuple(row) == (3980, 4280, "SGD", NOW - 500, NOW - 500)


def test_a_single_use_refresh_token_is_stored_before_the_new_access_token_is_used(
    engine: Engine, org: Organisation
) -> None:
    clock = VirtualClock(NOW)
    with FakeShopee(clock.now) as fake:
        fake.add_order("2611A", created=NOW - 3600)
        sync = connect(engine, org, fake, clock)
        sync.run_due_syncs(NOW)
        seen: list[tuple[str, str]] = []

        def observe(request: Request) -> None:
            stored = sync.store.get(SHOP)
            assert stored is not None and stored.grant is not None
            seen.append((request.query["access_token"], stored.grant.refresh_token))

        fake.observer = observe
        clock.advance(4 * 3600)  # the 4-hour access token has expired
        fake.add_order("2611B", created=NOW + 4 * 3600 - 300)
        sync.run_due_syncs(int(clock.now()))
        assert orders(engine, SHOP) == 2
        refreshes = fake.to("/api/v2/auth/access_token/get")
        assert [r.json()["refresh_token"] for r in refreshes] == ["sp_refresh_1"]
        # The first call with the new access token found the new refresh token already stored.
        assert seen[0] == ("sp_access_2", "sp_refresh_2")
        # The spent token is never offered again: a second refresh uses the rotated one.
        clock.advance(4 * 3600)
        sync.run_due_syncs(int(clock.now()))
        refreshes = fake.to("/api/v2/auth/access_token/get")
        assert [r.json()["refresh_token"] for r in refreshes] == ["sp_refresh_1", "sp_refresh_2"]


def test_a_refused_refresh_token_revokes_the_shop_and_tells_the_admins(
    engine: Engine, org: Organisation
) -> None:
    clock = VirtualClock(NOW)
    notices = Notices()
    with FakeShopee(clock.now) as fake:
        sync = connect(engine, org, fake, clock, notices)
        fake.refresh_tokens.clear()  # the seller cancelled the authorization
        clock.advance(5 * 3600)
        sync.run_due_syncs(int(clock.now()))
        assert [(s, p) for s, p, _, _ in notices.sent] == [(SHOP, "shopee")]
        assert "Invalid refresh_token" in notices.sent[0][2]
