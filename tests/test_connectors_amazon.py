"""Amazon SP-API through python-amazon-sp-api against a fake Amazon: LWA token exchange and
refresh, orders by lastUpdatedAfter on the JP marketplace, refunds from financial events, and
the usage plans (0.0056 requests/s, burst 20 for searchOrders) kept without a single 429."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from connectors.amazon import AmazonConnector
from connectors.clock import VirtualClock
from connectors.sync import SyncService
from kpi_engine.models import Order, Refund
from kpi_engine.organisation import Organisation
from tests import fakeamazon
from tests.fakeamazon import FakeAmazon
from tests.shopsync import NOW, Notices, build_sync, orders, refunds, shop_organisation

pytestmark = pytest.mark.db
SHOP = "amz-jp-01"


@pytest.fixture
def org(tmp_path: Path) -> Organisation:
    return shop_organisation(tmp_path)


def connect(
    engine: Engine,
    org: Organisation,
    fake: FakeAmazon,
    clock: VirtualClock,
    notices: Notices | None = None,
) -> SyncService:
    amazon = AmazonConnector(
        fakeamazon.CLIENT_ID,
        fakeamazon.CLIENT_SECRET,
        clock,
        app_id="amzn1.sp.solution.kpibot",
        api_url=fake.url,
        lwa_url=f"{fake.url}/auth/o2/token",
    )
    sync = build_sync(engine, org, {"amazon": amazon}, clock, notices)
    state = sync.store.begin(SHOP, "amazon", int(clock.now()))
    url = amazon.authorize_url(
        org.shops[SHOP], state, "https://kpibot.example.com/oauth/amazon/callback"
    )
    assert url.startswith(
        "https://sellercentral.amazon.co.jp/apps/authorize/consent?application_id=amzn1.sp.solution.kpibot&state="
    )
    grant = amazon.exchange(
        org.shops[SHOP],
        "ANspapiCode1",
        {"selling_partner_id": "A3SELLER"},
        "https://kpibot.example.com/oauth/amazon/callback",
        int(clock.now()),
    )
    sync.store.activate(SHOP, "amazon", grant, int(clock.now()), every_minutes=10)
    return sync


def test_orders_and_refunds_of_30_days_on_the_far_east_endpoint(
    engine: Engine, org: Organisation
) -> None:
    clock = VirtualClock(NOW)
    with FakeAmazon(clock.now) as fake:
        for n in range(230):
            fake.add_order(f"250-{n:07d}-0000001", created=NOW - 29 * 86400 + n * 10_000)
        fake.add_order("250-9999999-0000001", created=NOW - 1000, status="PENDING")
        fake.add_refund("250-0000003-0000001", posted=NOW - 5 * 86400)
        sync = connect(engine, org, fake, clock)
        sync.run_due_syncs(NOW)
        assert orders(engine, SHOP) == 231 and refunds(engine, SHOP) == 1
        assert fake.throttled == 0
        searches = fake.to("/orders/2026-01-01/orders")
        assert len(searches) == 3
        assert searches[0].query["includedData"] == "PROCEEDS,CANCELLATION,FULFILLMENT"
        assert searches[0].headers["x-amz-access-token"].startswith("Atza|")
        assert "paginationToken" in searches[1].query  # the token went back as it came
        with engine.connect() as conn:
            order = conn.execute(
                select(
                    Order.sub_total,
                    Order.total_amount,
                    Order.currency,
                    Order.status,
                    Order.paid_time,
                ).where(Order.order_id == "250-0000005-0000001")
            ).one()  # type: ignore[call-overload]
            pending = conn.execute(
                select(Order.status, Order.paid_time).where(Order.order_id == "250-9999999-0000001")
            ).one()  # type: ignore[call-overload]
            refund = conn.execute(
                select(Refund.refund_amount, Refund.order_id, Refund.status)
            ).one()  # type: ignore[call-overload]
        assert tuple(order) == (3960, 4460, "JPY", "AWAITING_SHIPMENT", NOW - 29 * 86400 + 50_000)
        assert tuple(pending) == ("UNPAID", None)
        assert tuple(refund) == (2178, "250-0000003-0000001", "COMPLETED")


def test_the_usage_plan_is_kept_and_the_access_token_refreshed_hourly(
    engine: Engine, org: Organisation
) -> None:
    clock = VirtualClock(NOW)
    with FakeAmazon(clock.now) as fake:
        for n in range(2500):  # 25 pages: 20 in the burst, then one every 1/0.0056 s
            fake.add_order(f"250-{n:07d}-0000002", created=NOW - 20 * 86400 + n * 600)
        sync = connect(engine, org, fake, clock)
        sync.backfill(SHOP, NOW - 21 * 86400)
        assert orders(engine, SHOP) == 2500
        assert fake.throttled == 0  # never a 429: the client kept to the plan
        pages = len(fake.to("/orders/2026-01-01/orders"))
        floor = (pages - 20) / 0.0056
        assert pages == 25 and floor <= clock.slept <= floor * 1.1
        # Five pages after the burst take 15 minutes: the 1-hour token was enough; one more
        # hour and it is refreshed before the next call.
        clock.advance(3600)
        sync.run_due_syncs(int(clock.now()))
        lwa = [r for r in fake.to("/auth/o2/token") if b"grant_type=refresh_token" in r.body]
        assert len(lwa) == 1


def test_an_invalid_grant_revokes_the_shop(engine: Engine, org: Organisation) -> None:
    clock = VirtualClock(NOW)
    notices = Notices()
    with FakeAmazon(clock.now) as fake:
        sync = connect(engine, org, fake, clock, notices)
        fake.refresh_tokens.clear()
        clock.advance(2 * 3600)
        sync.run_due_syncs(int(clock.now()))
        assert [(s, p) for s, p, _, _ in notices.sent] == [(SHOP, "amazon")]
        assert "invalid_grant" in notices.sent[0][2]
