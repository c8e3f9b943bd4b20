"""Connecting a shop as a seller and an admin would, through the served app: `kpibot connect`
prints the platform's link, the platform sends the seller back to `/oauth/<platform>/callback`
(its `state` checked, single use), the scheduled sync imports the shop's orders, and when the
seller revokes the authorization the admin is told in chat — once — how to re-connect."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from bot.app import create_app
from bot.cli import app as cli
from bot.runtime import build_runtime
from config.settings import Settings
from tests import faketiktok
from tests.fakeslack import BOT_TOKEN, FakeSlack
from tests.faketiktok import FakeTikTok
from tests.pinned import PINNED, PINNED_AT
from tests.shopsync import SECRET, shop_config

pytestmark = pytest.mark.db
SHOP = "tts-us-01"
CHEN_HAO = "U07CHENHAO"  # the admin's Slack user (config/example/people.yaml)


@pytest.fixture
def tiktok() -> Iterator[FakeTikTok]:
    started = time.monotonic()
    # The platform's clock runs from the pinned moment, as the app's does.
    with FakeTikTok(lambda: PINNED + (time.monotonic() - started)) as fake:
        yield fake


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, tiktok: FakeTikTok
) -> Path:
    """What an operator sets for `kpibot serve` and `kpibot connect` alike."""
    config = shop_config(tmp_path)
    values = {
        "KPIBOT_DATABASE_URL": db_url,
        "KPIBOT_CONFIG_DIR": str(config),
        "KPIBOT_NOW": PINNED_AT,
        "KPIBOT_SCHEDULER": "false",  # the sync job is fired explicitly below
        "KPIBOT_SECRET_KEY": SECRET,
        "KPIBOT_PUBLIC_URL": "http://127.0.0.1:8000",
        "TIKTOK_APP_KEY": faketiktok.APP_KEY,
        "TIKTOK_APP_SECRET": faketiktok.APP_SECRET,
        "TIKTOK_SERVICE_ID": "7101",
        "KPIBOT_TIKTOK_API_URL": tiktok.url,
        "KPIBOT_TIKTOK_AUTH_URL": tiktok.url,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return config


def test_a_shop_connected_through_the_callback_syncs_and_a_revocation_reaches_the_admin(
    environment: Path, tiktok: FakeTikTok
) -> None:
    for n in range(30):
        created = PINNED - 5 * 86400 + n * 3600
        tiktok.add_order(f"5771{n:06d}", created=created, updated=created + 600)

    with FakeSlack() as slack:
        settings = Settings(  # type: ignore[call-arg]
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET="8f742231b10e8888abcd99yyyzzz85a5",
            KPIBOT_SLACK_API_URL=slack.base_url,
        )
        runtime = build_runtime(settings)
        try:
            with TestClient(create_app(settings, runtime=runtime)) as client:
                # The admin asks for the link; the seller opens it and comes back with a code.
                printed = CliRunner().invoke(cli, ["connect", "tiktok", "--shop", SHOP])
                assert printed.exit_code == 0, printed.output
                link = re.search(r"https://services\.tiktokshop\.com/\S+", printed.output)
                assert link is not None
                state = parse_qs(urlsplit(link.group(0)).query)["state"][0]
                assert "/oauth/tiktok/callback" in printed.output

                wrong = client.get("/oauth/tiktok/callback", params={"code": "x", "state": "nope"})
                assert wrong.status_code == 400 and "kpibot connect" in wrong.text
                elsewhere = client.get(
                    "/oauth/shopee/callback", params={"code": "auth-code-1", "state": state}
                )
                assert elsewhere.status_code == 404  # Shopee is not configured here
                back = client.get(
                    "/oauth/tiktok/callback", params={"code": "auth-code-1", "state": state}
                )
                assert back.status_code == 200 and SHOP in back.text
                again = client.get(
                    "/oauth/tiktok/callback", params={"code": "auth-code-1", "state": state}
                )
                assert again.status_code == 400  # a state is used once
                with runtime.engine.connect() as conn:
                    stored = conn.execute(
                        text("SELECT state, tokens FROM shop_connections WHERE shop_id = :s"),
                        {"s": SHOP},
                    ).one()
                assert stored.state == "active"
                assert not any(token in str(stored.tokens) for token in tiktok.access)

                # The scheduled sync imports the shop's orders.
                scheduler = client.app.state.chat.scheduler  # type: ignore[attr-defined]
                now = int(runtime.clock())
                [first] = scheduler.run_due(now, only=["sync"])
                assert first.state == "done" and f"{SHOP}/orders done" in first.detail
                assert orders(runtime, SHOP) == 30

                # The seller revokes the app: the admin is told, privately, how to re-connect.
                tiktok.revoked = True
                [second] = scheduler.run_due(now + 700, only=["sync"])
                assert "revoked" in second.detail
                slack.wait_until(
                    lambda: any(
                        "kpibot connect tiktok --shop tts-us-01" in str(c)
                        for c in slack.calls_to("chat.postMessage")
                    )
                )
                assert CHEN_HAO in {c["users"] for c in slack.calls_to("conversations.open")}
                notices = [
                    c
                    for c in slack.calls_to("chat.postMessage")
                    if "kpibot connect tiktok" in str(c)
                ]
                assert len(notices) == 1 and "TikTok Shop US — Glow Beauty" in str(notices[0])
                # Later runs skip the revoked shop and do not tell the admin again.
                [third] = scheduler.run_due(now + 1400, only=["sync"])
                assert third.state == "done" and "revoked" not in third.detail
                time.sleep(0.5)
                again_told = [
                    c for c in slack.calls_to("chat.postMessage") if "kpibot connect" in str(c)
                ]
                assert len(again_told) == 1
                assert orders(runtime, SHOP) == 30  # nothing lost with the authorization
        finally:
            runtime.engine.dispose()


def orders(runtime: object, shop: str) -> int:
    engine = runtime.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM orders WHERE shop_id = :s"), {"s": shop}
            ).scalar_one()
        )
