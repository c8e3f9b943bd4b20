"""The dashboard in a real browser: Debian's Chromium (headless, through Playwright) against
`kpibot serve`'s app on 127.0.0.1, with Feishu, Slack and DingTalk faked at their Open APIs.

A streamer opens her link from a Feishu message in Feishu's in-app browser and sees only her
figures; a colleague opens his from DingTalk (its in-app browser) and from Slack (Android's
Custom Tab, iOS's Safari view); only Feishu's and DingTalk's workbenches may frame the pages; a
manager's team page draws its chart (in the DOM and in the pixels); an admin sends a dead letter
again and accepts an appeal; a member's tampered id and a replayed link are refused. No page
breaks its Content-Security-Policy."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import pytest
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page
from sqlalchemy import Engine, select, update

from bot.chat.messages import Reply, Target
from bot.i18n import text
from bot.i18n.format import money
from bot.web import dashboard_link
from kpi_engine.appeals import AppealStore
from kpi_engine.audit import trail
from kpi_engine.db import make_engine, upgrade
from kpi_engine.figures import Figures
from kpi_engine.models import OutboxMessage
from kpi_engine.organisation import Organisation
from kpi_engine.periods import day_of, month_of
from kpi_engine.scopes import Scope
from tests.conftest import EXAMPLE_CONFIG
from tests.dashboard_server import (
    DINGTALK_USER_AGENT,
    FEISHU_USER_AGENT,
    PHONE,
    SLACK_ANDROID_USER_AGENT,
    SLACK_IOS_USER_AGENT,
    Served,
    chromium,
    free_port,
    serving,
)
from tests.fakedingtalk import FakeDingTalk
from tests.fakefeishu import FakeFeishu
from tests.fakeslack import BOT_TOKEN, FakeSlack
from tests.pinned import PINNED, PINNED_AT, PINNED_DAY
from tests.waiting import wait_for
from tests.workspaces import load_demo

LINK = re.compile(r"http://127\.0\.0\.1:\d+/dashboard/login/[A-Za-z0-9._%-]+")
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


class Site:
    """The served app, its database, fake Feishu and the browser."""

    def __init__(
        self,
        served: Served,
        engine: Engine,
        fake: FakeFeishu,
        browser: Browser,
        slack: FakeSlack,
        dingtalk: FakeDingTalk,
    ):
        self.served, self.engine, self.fake, self.browser = served, engine, fake, browser
        self.slack, self.dingtalk = slack, dingtalk
        self.devices = 0

    @property
    def runtime(self):  # type: ignore[no-untyped-def]
        return self.served.app.state.runtime

    def page(
        self, *, phone: bool = False, user_agent: str = FEISHU_USER_AGENT
    ) -> tuple[Page, list[str]]:
        """A fresh browser profile (no cookies) and the console errors it will log; `phone`:
        a phone's screen, in the in-app browser that `user_agent` names (Feishu's by default)."""
        # Each profile is its own device behind the test's proxy (uvicorn trusts X-Forwarded-For
        # from 127.0.0.1), so the per-address limit on link redemptions counts it apart.
        self.devices += 1
        options: dict[str, object] = {
            "locale": "zh-CN",
            "timezone_id": "Asia/Shanghai",
            "extra_http_headers": {"X-Forwarded-For": f"10.23.0.{self.devices}"},
        }
        if phone:
            options.update(viewport=PHONE, user_agent=user_agent, is_mobile=True, has_touch=True)
        else:
            options["viewport"] = {"width": 1280, "height": 900}
        context = self.browser.new_context(**options)  # type: ignore[arg-type]
        page = context.new_page()
        errors: list[str] = []

        def console(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):
                errors.append(message.text)

        page.on("console", console)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page, errors

    def sign_in(self, person: str, *, phone: bool = False) -> tuple[Page, list[str]]:
        page, errors = self.page(phone=phone)
        page.goto(dashboard_link(self.runtime, person, now=int(self.runtime.clock())))
        page.wait_for_url("**/dashboard/me")
        return page, errors


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, organisation: Organisation) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("dashboard-browser")
    url = f"sqlite:///{folder / 'kpibot.db'}"
    upgrade(url)
    engine = make_engine(url)
    load_demo(engine, organisation, folder, days=10, end=PINNED_DAY, seed=11)
    port = free_port()
    with (
        FakeFeishu() as fake,
        FakeSlack() as slack,
        FakeDingTalk() as dingtalk,
        serving(
            port,
            KPIBOT_DATABASE_URL=url,
            KPIBOT_CONFIG_DIR=EXAMPLE_CONFIG,
            KPIBOT_SCHEDULER=False,
            KPIBOT_NOW=PINNED_AT,  # the app's clock starts at the pinned moment and runs on
            KPIBOT_SECRET_KEY=uuid.uuid4().hex,
            KPIBOT_PUBLIC_URL=f"http://127.0.0.1:{port}",
            FEISHU_APP_ID=f"cli_{uuid.uuid4().hex[:16]}",
            FEISHU_APP_SECRET="secret",
            FEISHU_ENCRYPT_KEY="kpibot-test-encrypt-key",
            FEISHU_VERIFICATION_TOKEN="v-token",
            KPIBOT_FEISHU_DOMAIN=fake.url,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET="slack-signing-secret",
            KPIBOT_SLACK_API_URL=slack.base_url,
            DINGTALK_CLIENT_ID="dingappkey",
            DINGTALK_CLIENT_SECRET="dingtalk-secret",
            DINGTALK_ROBOT_CODE="dingrobot",
            DINGTALK_CONNECTION="http",
            KPIBOT_DINGTALK_API_URL=dingtalk.url,
            KPIBOT_DINGTALK_OAPI_URL=dingtalk.url,
        ) as served,
        chromium() as browser,
    ):
        yield Site(served, engine, fake, browser, slack, dingtalk)
    engine.dispose()


def csp_errors(errors: list[str]) -> list[str]:
    return [e for e in errors if "Content Security Policy" in e or "Refused to" in e]


def test_a_streamer_opens_her_link_from_feishu_and_sees_only_her_figures(
    site: Site, organisation: Organisation
) -> None:
    # The private answer to "看板" as chat sends it: the link, through the Feishu adapter.
    lina = organisation.people["li.na"]
    assert lina.chat.feishu
    link = dashboard_link(site.runtime, "li.na", now=int(site.runtime.clock()))
    site.served.app.state.chat.notifier.deliver(
        Reply(f"你的数据看板（10 分钟内有效，仅限一次）：{link}", "zh", private=True),
        Target.direct("feishu", "", lina.chat.feishu),
    )
    wait_for(lambda: bool(site.fake.posted_to(lina.chat.feishu)), "the Feishu message")
    posted = json.dumps(site.fake.posted_to(lina.chat.feishu)[-1].content, ensure_ascii=False)
    found = LINK.search(posted)
    assert found and found.group(0) == link

    page, errors = site.page(phone=True)  # Feishu's in-app browser on a phone
    page.goto(found.group(0))
    page.wait_for_url("**/dashboard/me")
    assert "李娜" in page.inner_text("h1")
    figures = Figures(site.engine, organisation)
    mine = figures.figure(
        "gmv", Scope("person", "li.na"), month_of(PINNED_DAY, "Asia/Shanghai"), now=PINNED
    )
    body = page.inner_text("main")
    assert money(mine.value, "CNY", "zh") in body
    page.wait_for_selector(".chart[data-drawn] canvas")
    # Her team's page ranks colleagues by name, without their values.
    page.click("nav.nav a[href='/dashboard/teams/sz-live']")
    page.wait_for_selector("table.ranking")
    ranking = page.inner_text("table.ranking")
    zhang = figures.figure(
        "gmv", Scope("person", "zhang.wei"), month_of(PINNED_DAY, "Asia/Shanghai"), now=PINNED
    )
    assert "张伟" in ranking and money(zhang.value, "CNY", "zh") not in page.content()
    # The phone does not scroll sideways: the page fits its width.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert csp_errors(errors) == []


@pytest.mark.parametrize(
    ("platform", "user_agent"),
    [
        ("dingtalk", DINGTALK_USER_AGENT),
        ("slack", SLACK_ANDROID_USER_AGENT),
        ("slack", SLACK_IOS_USER_AGENT),
    ],
    ids=["dingtalk", "slack-android", "slack-ios"],
)
def test_the_link_from_dingtalk_or_slack_opens_in_its_in_app_browser(
    site: Site, organisation: Organisation, platform: str, user_agent: str
) -> None:
    # The private answer to "看板" through the platform's adapter, to its fake Open API.
    person = organisation.people["zhang.wei"]
    user = getattr(person.chat, platform)
    assert user
    link = dashboard_link(site.runtime, "zhang.wei", now=int(site.runtime.clock()))
    site.served.app.state.chat.notifier.deliver(
        Reply(f"你的数据看板（10 分钟内有效，仅限一次）：{link}", "zh", private=True),
        Target.direct(platform, "", user),
    )

    def arrived() -> str | None:
        """The link as it arrived (DingTalk percent-encodes a lone `_` of its token)."""
        if platform == "slack":
            sent = json.dumps(site.slack.calls_to("chat.postMessage"), ensure_ascii=False)
        else:
            sent = json.dumps([m.params for m in site.dingtalk.to(user)], ensure_ascii=False)
        return next((u for u in LINK.findall(sent) if unquote(u) == link), None)

    # 60 s: on a loaded CI machine the reply has taken longer than the default 20 s.
    wait_for(lambda: arrived() is not None, f"the {platform} message with the link", timeout=60)
    page, errors = site.page(phone=True, user_agent=user_agent)
    page.goto(str(arrived()))
    page.wait_for_url("**/dashboard/me")
    assert page.evaluate("navigator.userAgent") == user_agent
    assert "张伟" in page.inner_text("h1")
    mine = Figures(site.engine, organisation).figure(
        "gmv", Scope("person", "zhang.wei"), month_of(PINNED_DAY, "Asia/Shanghai"), now=PINNED
    )
    assert money(mine.value, "CNY", "zh") in page.inner_text("main")
    page.wait_for_selector(".chart[data-drawn] canvas")  # the chart's script ran
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # Moving between pages works there too (htmx-boosted links, the same session).
    page.click("nav.nav a[href='/dashboard/teams/sz-live']")
    page.wait_for_selector("table.ranking")
    assert csp_errors(errors) == []


def _framed(site: Site, parent: str) -> tuple[bool, list[str]]:
    """Whether a page at `parent` (an https origin, served by the browser's router: nothing
    leaves the machine) shows the dashboard in an iframe, and the console's CSP refusals."""
    page, errors = site.page()
    origin = "https://kpibot.example"
    inner = origin + "/dashboard/"

    def dashboard(route: Any) -> None:  # the real server's answer, headers and all
        answer = route.fetch(url=route.request.url.replace(origin, site.served.url, 1))
        route.fulfill(response=answer)

    page.route(origin + "/**", dashboard)
    page.route(
        parent + "/**",
        lambda route: route.fulfill(
            content_type="text/html",
            body=f'<!doctype html><iframe id="f" src="{inner}"></iframe>',
        ),
    )
    page.goto(parent + "/workbench")
    page.wait_for_timeout(500)
    frame = page.frame_locator("#f")
    shown = frame.locator("[data-message='signin']").count() > 0
    return shown, csp_errors(errors)


def test_only_the_platforms_workbenches_may_frame_the_dashboard(site: Site) -> None:
    # Feishu's and DingTalk's workbenches may show the dashboard inside them…
    for parent in ("https://open.feishu.cn", "https://h5.dingtalk.com"):
        shown, refused = _framed(site, parent)
        assert shown and refused == [], parent
    # …Slack never frames pages (links open in the browser), and no other site may.
    for parent in ("https://app.slack.com", "https://evil.example"):
        shown, refused = _framed(site, parent)
        assert not shown and any("frame-ancestors" in e for e in refused), parent


def test_a_tampered_id_and_a_replayed_link_are_refused(site: Site) -> None:
    link = dashboard_link(site.runtime, "li.na", now=int(site.runtime.clock()))
    page, _ = site.page(phone=True)
    page.goto(link)
    page.wait_for_url("**/dashboard/me")
    for path in (
        "/dashboard/people/zhang.wei",
        "/dashboard/teams/la-ops",
        "/dashboard/company",
        "/dashboard/people/zhang.wei/series.json?p=month",
    ):
        answer = page.goto(site.served.url + path)
        assert answer is not None and answer.status == 404, path
        assert "张伟" not in page.content() and "¥" not in page.content()
    # The link again, from another phone (forwarded) or the same: used up.
    other, _ = site.page(phone=True)
    other.goto(link)
    other.wait_for_selector("[data-message='used']")
    assert text("zh", "web.message.used.title") in other.inner_text("h1")
    assert other.goto(site.served.url + "/dashboard/me").status == 401  # type: ignore[union-attr]


def chart_pixels(png: bytes) -> tuple[int, int, int]:
    """(all pixels, pixels that are not background, pixels in the bars' colours)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    raw = image.tobytes()
    data = list(zip(raw[0::3], raw[1::3], raw[2::3], strict=True))
    inked = [p for p in data if min(p) < 235]
    bars = [p for p in inked if p in ((0x2E, 0x9D, 0x5B), (0xE4, 0x79, 0x3A))]
    return len(data), len(inked), len(bars)


def test_a_managers_team_page_draws_the_daily_chart(site: Site) -> None:
    page, errors = site.sign_in("wang.fang")
    page.goto(site.served.url + "/dashboard/teams/sz-live?p=month")
    canvas = page.wait_for_selector(".chart[data-drawn] canvas")
    assert canvas is not None
    size = canvas.bounding_box()
    assert size is not None and size["width"] > 600 and size["height"] > 200
    data = json.loads(page.inner_text("script.chart-data"))
    assert len(data["labels"]) == 24 and data["labels"][-1] == "11-24"  # the 1st to today
    png = page.locator(".chart").screenshot()
    total, inked, bars = chart_pixels(png)
    assert inked > total * 0.05 and bars > total * 0.02, (total, inked, bars)
    ranking = page.inner_text("table.ranking")
    assert "¥" in ranking  # a manager sees values
    assert csp_errors(errors) == []


def test_an_admin_sends_a_dead_letter_again_and_accepts_an_appeal(
    site: Site, organisation: Organisation
) -> None:
    outbox = site.served.app.state.chat.outbox
    user = organisation.people["zhang.wei"].chat.feishu
    assert user
    dead = outbox.put(Reply("早报：昨日成交 ¥12,000", "zh"), Target.direct("feishu", "", user))
    with site.engine.begin() as conn:
        conn.execute(
            update(OUTBOX).where(OUTBOX.c.id == dead).values(state="dead", error="Timeout: x")
        )
    figure = Figures(site.engine, organisation).figure(
        "gmv", Scope("person", "chen.jing"), day_of(PINNED_DAY, "Asia/Shanghai"), now=PINNED
    )
    appeal = AppealStore(site.engine).open(
        appellant="chen.jing", figure=figure, scope="person:chen.jing",
        claimed=(figure.value or Decimal(0)) + 500, reason="漏算一单", evidence=["order 88"],
        reviewer="wang.fang", platform="feishu", workspace="",
        channel=organisation.teams["sz-live"].channels.feishu or "", now=PINNED,
        sla_hours=24,
    )  # fmt: skip
    page, errors = site.sign_in("chen.hao")
    page.click("nav.nav a[href='/dashboard/company']")
    page.wait_for_selector(f"#outbox-{dead}")
    page.click(f"#outbox-{dead} form[action$='/retry'] button")
    page.locator(".notice", has_text=text("zh", "web.notice.outbox.done")).wait_for()

    def state() -> str:
        with site.engine.connect() as conn:
            return str(conn.execute(select(OUTBOX.c.state).where(OUTBOX.c.id == dead)).scalar())

    wait_for(lambda: state() == "sent", "the retried message to be sent")
    assert any(
        "早报" in json.dumps(m.content, ensure_ascii=False) for m in site.fake.posted_to(user)
    )
    assert ("retried", "chen.hao") in [
        (e.action, e.actor) for e in trail(site.engine, id=str(dead), kinds=["outbox"])
    ]

    page.click(f"#appeal-{appeal.id} form[action$='/accept'] button")
    page.locator(".notice", has_text=text("zh", "web.notice.appeal.done")).wait_for()
    accepted = AppealStore(site.engine).get(appeal.id)
    assert (
        accepted is not None and accepted.state == "accepted" and accepted.decided_by == "chen.hao"
    )
    assert page.locator(f"#appeal-{appeal.id}").count() == 0  # no longer awaiting review
    after = Figures(site.engine, organisation).figure(
        "gmv", Scope("person", "chen.jing"), day_of(PINNED_DAY, "Asia/Shanghai"), now=PINNED
    )
    assert after.value == accepted.claimed_value  # the correction is in the figure
    page.goto(site.served.url + f"/dashboard/audit?kind=appeal&id={appeal.id}")
    assert text("zh", "web.audit.actions.accepted") in page.inner_text("table.audit")
    assert csp_errors(errors) == []
