"""A running kpibot app on 127.0.0.1 (uvicorn in a thread) and Debian's Chromium driven by
Playwright: the tools of the dashboard's browser tests and of its README screenshots.

Chromium is the system's (`apt-get install chromium`, which `scripts/test` does); Playwright
only drives it and never downloads a browser.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, sync_playwright

from bot.app import create_app
from config.settings import Settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# What Feishu's in-app browser (Android) says it is; the dashboard must work inside it.
FEISHU_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36 Lark/7.28.6 LarkLocale/zh_CN ChannelName/Feishu"
)
# DingTalk's in-app browser (Android): a system WebView ("; wv", "Version/4.0") whose user agent
# names the app as AliApp(DingTalk/…) — what DingTalk's own docs tell H5 apps to look for.
DINGTALK_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 13; V2217A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/101.0.4951.61 Mobile Safari/537.36 "
    "AliApp(DingTalk/7.6.25) com.alibaba.android.rimet/37889783 Channel/700159 language/zh-CN "
    "abi/64 UT4Aplus/0.2.25 colorScheme/light"
)
# Slack has no browser of its own: on Android a link opens in a Chrome Custom Tab, on iOS in
# Safari's view controller, so the page sees the system browser's own user agent.
SLACK_ANDROID_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36"
)
SLACK_IOS_USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    """A port nobody listens on, on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Served:
    """The app being served, and where."""

    app: FastAPI
    url: str


@contextmanager
def serving(port: int, **settings: Any) -> Iterator[Served]:
    """`kpibot serve`'s app from these settings on 127.0.0.1:`port`, until the block ends."""
    app = create_app(Settings(**settings))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="dashboard-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield Served(app, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, through Playwright."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def main(directory: str) -> None:
    """The README's screenshots: the demo organisation's data up to the tests' pinned day,
    a streamer's page on a phone, her manager's team page and the admin's company page."""
    import tempfile
    import uuid
    from decimal import Decimal
    from pathlib import Path

    from sqlalchemy import update

    from bot.chat.messages import Reply, Target
    from bot.web import dashboard_link
    from kpi_engine.alerts import AlertStore, Observation
    from kpi_engine.appeals import AppealStore
    from kpi_engine.db import make_engine, upgrade
    from kpi_engine.figures import Figures
    from kpi_engine.models import OutboxMessage
    from kpi_engine.organisation import AlertCondition, AlertRuleConfig, load_organisation
    from kpi_engine.periods import day_of
    from kpi_engine.scopes import Scope
    from tests.conftest import EXAMPLE_CONFIG
    from tests.pinned import PINNED, PINNED_AT, PINNED_DAY
    from tests.workspaces import load_demo

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    organisation = load_organisation(EXAMPLE_CONFIG)
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'kpibot.db'}"
        upgrade(url)
        engine = make_engine(url)
        load_demo(engine, organisation, Path(scratch), days=40, end=PINNED_DAY, seed=8)
        rule = AlertRuleConfig(
            id="streamer-behind-pace", metric="gmv", scope="person:zhang.wei", period="today",
            condition=AlertCondition(below_pace_percent=Decimal(30)), hold=1,
        )  # fmt: skip
        AlertStore(engine).record(
            Observation(
                rule, Scope("person", "zhang.wei"), day_of(PINNED_DAY, "Asia/Shanghai"),
                PINNED_DAY.isoformat(), breached=True, evaluated=True, value=Decimal("8200"),
                threshold=Decimal("14300"), target=Decimal("47700"), currency="CNY",
                detail={"pace": "0.57", "limit": "0.7"},
            ),
            PINNED,
        )  # fmt: skip
        figure = Figures(engine, organisation).figure(
            "gmv", Scope("person", "li.na"), day_of(PINNED_DAY, "Asia/Shanghai"), now=PINNED
        )
        AppealStore(engine).open(
            appellant="li.na", figure=figure, scope="person:li.na",
            claimed=(figure.value or Decimal(0)) + Decimal("1280"), reason="两单漏算",
            evidence=["order 5791234", "order 5791240"], reviewer="wang.fang", platform="feishu",
            workspace="", channel="", now=PINNED, sla_hours=24,
        )  # fmt: skip
        port = free_port()
        with (
            serving(
                port,
                KPIBOT_DATABASE_URL=url,
                KPIBOT_CONFIG_DIR=EXAMPLE_CONFIG,
                KPIBOT_SCHEDULER=False,
                KPIBOT_NOW=PINNED_AT,
                KPIBOT_SECRET_KEY=uuid.uuid4().hex,
                KPIBOT_PUBLIC_URL=f"http://127.0.0.1:{port}",
            ) as served,
            chromium() as browser,
        ):
            outbox = served.app.state.chat.outbox
            dead = outbox.put(
                Reply("早报 · 深圳直播组", "zh"), Target("slack", "", "C07SZLIVE"), kind="digest"
            )
            table = OutboxMessage.__table__  # type: ignore[attr-defined]
            with engine.begin() as conn:
                conn.execute(
                    update(table)
                    .where(table.c.id == dead)
                    .values(state="dead", error="TargetNotFound: channel_not_found")
                )
            runtime = served.app.state.runtime
            for person, path, phone, name in (
                ("li.na", "/dashboard/me", True, "me.png"),
                ("wang.fang", "/dashboard/teams/sz-live", False, "team.png"),
                ("chen.hao", "/dashboard/company", False, "company.png"),
            ):
                context = browser.new_context(
                    viewport=PHONE if phone else {"width": 1280, "height": 900},
                    user_agent=FEISHU_USER_AGENT if phone else None,
                    device_scale_factor=2 if phone else 1,
                )
                page = context.new_page()
                page.goto(dashboard_link(runtime, person, now=int(runtime.clock())))
                page.wait_for_url("**/dashboard/me")
                page.goto(served.url + path)
                page.wait_for_selector(".chart[data-drawn] canvas", timeout=10_000) if path != (
                    "/dashboard/company"
                ) else None
                page.screenshot(path=str(out / name), full_page=True)
                context.close()
                print(f"wrote {out / name}")
        engine.dispose()


if __name__ == "__main__":
    import sys

    main(sys.argv[1] if len(sys.argv) > 1 else "docs/dashboard")
