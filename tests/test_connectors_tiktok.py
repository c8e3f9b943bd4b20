"""TikTok Shop: the official signing vectors, and a shop connected from scratch against a fake
TikTok Shop API that checks every signature, timestamp and token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from connectors.clock import VirtualClock
from connectors.tiktok import TikTokConnector
from connectors.tiktok.auth import sign, sign_webhook
from kpi_engine.models import RecordHistory, ShopConnection, SyncCursor
from kpi_engine.organisation import Organisation
from tests import faketiktok
from tests.faketiktok import FakeTikTok
from tests.shopsync import NOW, Notices, build_sync, orders, refunds, shop_organisation

pytestmark = pytest.mark.db
SHOP = "tts-us-01"


def test_official_request_vector_t1() -> None:
    # Partner Center's own example: secret e59af819cc, Get Authorized Shops.
    params = {
        "app_key": "29a39d",
        "timestamp": "1623812664",
        "sign": "ignored",
        "access_token": "x",
    }
    assert (
        sign("e59af819cc", "/authorization/202309/shops", params)
        == "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8"
    )


def test_body_vector_t2_signs_the_exact_bytes() -> None:
    params = {
        "app_key": "68xu9ks5p4i8",
        "shop_cipher": "ROW_xkMbgAAAeVAQra0eZWebFQq5aIK",
        "timestamp": "1696909648",
    }
    body = b'{"address":"https://partner.tiktokshop.com","event_type":"PACKAGE_UPDATE"}'
    assert (
        sign("e59af819cc", "/event/202309/webhooks", params, body)
        == "cd0d6268252f4ba293bf7ea4c0a2873bf9beec600d22530638564ab301435f7a"
    )
    spaced = b'{"address": "https://partner.tiktokshop.com", "event_type": "PACKAGE_UPDATE"}'
    assert sign("e59af819cc", "/event/202309/webhooks", params, spaced) != sign(
        "e59af819cc", "/event/202309/webhooks", params, body
    )
    # A multipart body is not signed.
    assert sign("e59af819cc", "/p", params, body, "multipart/form-data; boundary=x") == sign(
        "e59af819cc", "/p", params
    )


def test_webhook_vector_t3() -> None:
    raw = (
        b'{"type":1,"shop_id":"7494726673780148744","timestamp":1664095733,"data":{"order_id":'
        b'"576684019603311365","order_status":"AWAITING_SHIPMENT","update_time":1664095610}}'
    )
    assert (
        sign_webhook("fake_app_secret", "fake_app_key", raw)
        == "21109834de72ec53c9959716d8514ae388ce1f123e5ffdcafc46713fcdf62b27"
    )


def connector(fake: FakeTikTok, clock: VirtualClock) -> TikTokConnector:
    return TikTokConnector(
        faketiktok.APP_KEY,
        faketiktok.APP_SECRET,
        clock,
        service_id="7101",
        api_url=fake.url,
        auth_url=fake.url,
    )


@pytest.fixture
def org(tmp_path: Path) -> Organisation:
    return shop_organisation(tmp_path)


def connect(
    engine: Engine,
    org: Organisation,
    fake: FakeTikTok,
    clock: VirtualClock,
    notices: Notices | None = None,
):  # type: ignore[no-untyped-def]
    tiktok = connector(fake, clock)
    sync = build_sync(engine, org, {"tiktok": tiktok}, clock, notices)
    state = sync.store.begin(SHOP, "tiktok", int(clock.now()))
    url = tiktok.authorize_url(org.shops[SHOP], state, "http://127.0.0.1/oauth/tiktok/callback")
    assert url.startswith("https://services.tiktokshop.com/open/authorize?service_id=7101&state=")
    assert sync.store.pending(state, "tiktok", int(clock.now())) == SHOP
    assert sync.store.pending(state, "shopee", int(clock.now())) is None
    grant = tiktok.exchange(org.shops[SHOP], "auth-code-1", {}, "", int(clock.now()))
    sync.store.activate(SHOP, "tiktok", grant, int(clock.now()), every_minutes=10)
    return sync


def test_a_shop_connected_from_scratch_syncs_30_days_then_keeps_up(
    engine: Engine, org: Organisation
) -> None:
    clock = VirtualClock(NOW)
    with FakeTikTok(clock.now) as fake:
        for n in range(260):  # 30 days of history, and some older than that
            created = NOW - 31 * 86400 + n * 10_000
            fake.add_order(f"5770{n:06d}", created=created, updated=created + 600)
        fake.add_order("5779000001", created=NOW - 3600, status="UNPAID")
        fake.add_return("4035000001", "5770000250", created=NOW - 7200)
        fake.add_return(
            "4035000002",
            "5770000251",
            created=NOW - 7000,
            status="RETURN_OR_REFUND_REQUEST_PENDING",
        )
        sync = connect(engine, org, fake, clock)
        grant = sync.store.get(SHOP).grant  # type: ignore[union-attr]
        assert grant is not None and grant.detail["shop_cipher"] == faketiktok.CIPHER

        detail = sync.run_due_syncs(NOW)
        in_window = sum(1 for o in fake.orders.values() if o["update_time"] >= NOW - 30 * 86400)
        assert orders(engine, SHOP) == in_window == 252
        assert refunds(engine, SHOP) == 2
        assert "tts-us-01/orders done" in detail and fake.bad_signatures == 0
        searches = fake.to("/order/202309/orders/search")
        assert len(searches) == 3  # 253 orders, pages of 100
        assert all(
            r.query["sort_order"] == "ASC" and r.query["page_size"] == "100" for r in searches
        )
        assert searches[1].query["page_token"] and "page_token" not in searches[0].query
        # The token travels in the header, never in the query.
        assert all("access_token" not in r.query for r in searches)

        # Ten minutes later: a new order, and an older one shipped (a newer update_time).
        clock.advance(600)
        fake.add_order("5779000002", created=NOW + 300)
        fake.orders["5770000255"]["status"] = "IN_TRANSIT"
        fake.orders["5770000255"]["update_time"] = NOW + 400
        assert sync.run_due_syncs(int(clock.now()) - 5) == "nothing due"
        sync.run_due_syncs(int(clock.now()))
        assert orders(engine, SHOP) == 253
        with engine.connect() as conn:
            history = conn.execute(select(RecordHistory.kind, RecordHistory.data)).all()  # type: ignore[call-overload]
            cursor = conn.execute(
                select(SyncCursor).where(SyncCursor.shop_id == SHOP, SyncCursor.source == "orders")
            ).one()  # type: ignore[arg-type]
        assert [(k, json.loads(d)["status"]) for k, d in history] == [
            ("orders", "AWAITING_SHIPMENT")
        ]
        # The second window re-read ten minutes before the mark (overlap) and ended a minute ago.
        last = fake.to("/order/202309/orders/search")[-1].json()
        assert last == {"update_time_ge": NOW - 60 - 600, "update_time_lt": NOW + 600 - 60}
        assert cursor.high_water == NOW + 540 and cursor.last_success == NOW + 600


def test_tokens_are_encrypted_refreshed_before_expiry_and_rotated(
    engine: Engine, org: Organisation
) -> None:
    clock = VirtualClock(NOW)
    with FakeTikTok(clock.now) as fake:
        fake.add_order("5770000001", created=NOW - 3600)
        sync = connect(engine, org, fake, clock)
        with engine.connect() as conn:
            stored = conn.execute(select(ShopConnection.tokens, ShopConnection.token_version)).one()  # type: ignore[call-overload]
        assert "TTP_access_1" not in stored.tokens and "TTP_refresh_1" not in stored.tokens
        sync.run_due_syncs(NOW)
        assert fake.to("/api/v2/token/refresh") == []
        # Six days and 23 h 55 min later the 7-day token is within the refresh margin.
        clock.advance(7 * 86400 - 300)
        sync.run_due_syncs(int(clock.now()))
        refreshes = fake.to("/api/v2/token/refresh")
        assert [r.query["refresh_token"] for r in refreshes] == ["TTP_refresh_1"]
        current = sync.store.get(SHOP)
        assert current is not None and current.grant is not None
        assert current.grant.access_token == "TTP_access_2"
        assert current.grant.refresh_token == "TTP_refresh_2"  # the rotated one is kept
        assert current.token_version == stored.token_version + 1
        searches = fake.to("/order/202309/orders/search")
        assert searches[-1].headers["x-tts-access-token"] == "TTP_access_2"
        assert fake.bad_signatures == 0


def test_an_expired_access_token_is_refreshed_and_the_page_read_again(
    engine: Engine, org: Organisation
) -> None:
    clock = VirtualClock(NOW)
    with FakeTikTok(clock.now) as fake:
        fake.add_order("5770000001", created=NOW - 3600)
        sync = connect(engine, org, fake, clock)
        fake.access.clear()
        fake.access["TTP_access_1"] = NOW - 1  # the platform expired it early
        sync.run_due_syncs(NOW)
        assert orders(engine, SHOP) == 1
        assert len(fake.to("/api/v2/token/refresh")) == 1


def test_throttling_waits_for_retry_after_then_goes_on(engine: Engine, org: Organisation) -> None:
    clock = VirtualClock(NOW)
    with FakeTikTok(clock.now) as fake:
        for n in range(150):
            fake.add_order(f"5770{n:06d}", created=NOW - 86400 + n * 60)
        sync = connect(engine, org, fake, clock)
        fake.fail(
            "/order/202309/orders/search",
            429,
            {"code": 36009002, "message": "Too many requests", "data": None, "request_id": "r"},
            headers={"Retry-After": "7"},
            times=2,
        )
        sync.run_due_syncs(NOW)
        assert orders(engine, SHOP) == 150
        assert len(fake.to("/order/202309/orders/search")) == 4  # 2 refused, then 2 pages
        assert clock.slept >= 14


def test_a_revoked_authorization_is_reported_once(engine: Engine, org: Organisation) -> None:
    clock = VirtualClock(NOW)
    notices = Notices()
    with FakeTikTok(clock.now) as fake:
        fake.add_order("5770000001", created=NOW - 3600)
        sync = connect(engine, org, fake, clock, notices)
        fake.revoked = True
        detail = sync.run_due_syncs(NOW)
        assert "revoked" in detail
        assert notices.sent == [(SHOP, "tiktok", "TikTok 105001: access token invalid", NOW)]
        clock.advance(3600)
        sync.run_due_syncs(int(clock.now()))
        assert len(notices.sent) == 1  # once per revocation
        connection = sync.store.get(SHOP)
        assert connection is not None and connection.state == "revoked"
