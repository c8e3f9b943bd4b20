"""The dashboard over HTTP, through the real app on each database: signed one-time links and
sessions, who sees what (the access policy), actions with the chat services' rules and audit,
the guards (CSRF, origin, rate limits, headers), the reader's language, and that the figures
on the pages are the engine's."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy import text as text_sql

from bot.app import create_app
from bot.chat.messages import Action, Reply, Target
from bot.i18n import text, texts
from bot.i18n.format import moment, money, number, percent
from bot.runtime import build_runtime
from bot.web import DashboardUnavailable, dashboard_link
from bot.web.pages import Reader
from bot.web.security import CSP
from config.settings import Settings
from kpi_engine.alerts import AlertStore, Observation
from kpi_engine.annotations import add_note
from kpi_engine.appeals import AppealStore
from kpi_engine.audit import trail
from kpi_engine.clock import fixed_clock
from kpi_engine.compare import Delta, movers
from kpi_engine.figures import Figures
from kpi_engine.models import Correction, OutboxMessage
from kpi_engine.organisation import AlertCondition, AlertRuleConfig, Organisation
from kpi_engine.periods import day_of, earlier_period, month_of, week_of
from kpi_engine.scopes import Scope
from kpi_engine.scoring import scorecard
from kpi_engine.targets import Plans
from tests.conftest import EXAMPLE_CONFIG
from tests.fakechat import FakeChat, bot_for
from tests.pinned import PINNED, PINNED_DAY
from tests.workspaces import load_demo

SECRET = "a long random test secret"


@dataclass
class Clock:
    """The app's clock, moved by the test."""

    at: float = PINNED

    def __call__(self) -> float:
        return self.at


@dataclass
class Dash:
    """The app under test, its clock and its runtime."""

    client: TestClient
    clock: Clock
    engine: Engine

    @property
    def runtime(self):  # type: ignore[no-untyped-def]
        return self.client.app.state.runtime  # type: ignore[attr-defined]

    def link_path(self, person: str) -> str:
        link = dashboard_link(self.runtime, person, now=int(self.clock()))
        return link.split("8000", 1)[1]

    def sign_in(self, person: str) -> None:
        token = self.link_path(person).rsplit("/", 1)[1]
        self.client.cookies.clear()
        answer = self.client.post("/dashboard/login", data={"token": token}, follow_redirects=False)
        assert answer.status_code == 303, answer.text

    def csrf(self, page: str = "/dashboard/me") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.client.get(page).text)
        assert found
        return found.group(1)


@pytest.fixture
def loaded(engine: Engine, organisation: Organisation, tmp_path: Path) -> Engine:
    return load_demo(engine, organisation, tmp_path, days=8, end=PINNED_DAY, seed=5)


def _dash(db_url: str, engine: Engine, **extra: object) -> Iterator[Dash]:
    values: dict[str, object] = {
        "KPIBOT_DATABASE_URL": db_url,
        "KPIBOT_CONFIG_DIR": EXAMPLE_CONFIG,
        "KPIBOT_SCHEDULER": False,
        "KPIBOT_SECRET_KEY": SECRET,
    }
    values.update(extra)
    clock = Clock()
    runtime = build_runtime(Settings(**values), clock=clock)  # type: ignore[arg-type]
    with TestClient(create_app(runtime=runtime)) as client:
        yield Dash(client, clock, engine)
    runtime.engine.dispose()


@pytest.fixture
def dash(db_url: str, loaded: Engine) -> Iterator[Dash]:
    yield from _dash(db_url, loaded)


def section(page: str, ident: str) -> str:
    """The text of a page's `<section id=…>`."""
    found = re.search(rf'<section id="{ident}">(.*?)</section>', page, re.S)
    assert found, ident
    return found.group(1)


def _payload(path: str) -> dict[str, object]:
    part = path.rsplit("/", 1)[1].split(".")[1]
    data: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


# -- links and sessions ---------------------------------------------------------------------


def test_a_link_opens_one_session_once_and_is_refused_forged_expired_or_again(dash: Dash) -> None:
    path = dash.link_path("li.na")
    assert "/dashboard/login/" in path and _payload(path)["p"] == "li.na"
    # Opening the link (or a chat's preview of it) uses nothing up: only the button does.
    for _ in range(2):
        page = dash.client.get(path)
        assert page.status_code == 200 and 'action="/dashboard/login"' in page.text
    token = path.rsplit("/", 1)[1]
    # Percent-encoded (DingTalk's messages encode a lone `_` of a URL), it is the same link.
    encoded = dash.client.get(path.replace("_", "%5F").replace("-", "%2D"))
    assert encoded.status_code == 200 and f'name="token" value="{token}"' in encoded.text
    answer = dash.client.post("/dashboard/login", data={"token": token}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/me"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # served over http here
    assert dash.client.get("/dashboard/me").status_code == 200
    # The same link again (replayed, or forwarded and opened after its owner): refused.
    dash.client.cookies.clear()
    again = dash.client.post("/dashboard/login", data={"token": token}, follow_redirects=False)
    assert again.status_code == 410 and 'data-message="used"' in again.text
    assert dash.client.get("/dashboard/me").status_code == 401
    # Someone else's id put in a genuine link's payload: the signature no longer holds.
    head, body, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged["p"] = "chen.hao"
    body = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    refused = dash.client.post("/dashboard/login", data={"token": f"{head}.{body}.{signature}"})
    assert refused.status_code == 400 and 'data-message="invalid"' in refused.text
    # A link past its minutes.
    late = dash.link_path("li.na")
    dash.clock.at += 11 * 60
    expired = dash.client.get(late)
    assert expired.status_code == 400 and 'data-message="expired"' in expired.text


def test_a_link_forwarded_and_opened_first_by_someone_else_can_be_cut_off_by_its_owner(
    dash: Dash, loaded: Engine
) -> None:
    token = dash.link_path("li.na").rsplit("/", 1)[1]
    # Forwarded, and opened by the colleague before li.na: a session as li.na (the link is all
    # the server knows).
    first = dash.client.post("/dashboard/login", data={"token": token}, follow_redirects=False)
    assert first.status_code == 303
    theirs = dash.client.cookies["kpibot_session"]

    def theirs_open() -> int:
        dash.client.cookies.clear()
        dash.client.cookies.set("kpibot_session", theirs)
        status = dash.client.get("/dashboard/me").status_code
        dash.client.cookies.clear()
        return status

    dash.client.cookies.clear()
    # li.na opens it second: refused, told when and from where, and offered the way out.
    again = dash.client.post("/dashboard/login", data={"token": token}, follow_redirects=False)
    assert again.status_code == 410 and 'data-message="used"' in again.text
    opened_at = moment(PINNED, "Asia/Shanghai", "zh")
    assert text("zh", "web.message.used.when", moment=opened_at, client="testclient") in again.text
    assert 'action="/dashboard/login/revoke"' in again.text and token in again.text
    assert theirs_open() == 200
    # From another site, or with a forged or unused link, nothing ends.
    revoke = "/dashboard/login/revoke"
    elsewhere = {"Origin": "https://evil.example"}
    assert dash.client.post(revoke, data={"token": token}, headers=elsewhere).status_code == 403
    assert dash.client.post(revoke, data={"token": token[:-4] + "AAAA"}).status_code == 400
    unused = dash.link_path("li.na").rsplit("/", 1)[1]
    assert dash.client.post(revoke, data={"token": unused}).status_code == 400
    assert theirs_open() == 200
    ended = dash.client.post(revoke, data={"token": token})
    assert ended.status_code == 200 and 'data-message="signed_out_everywhere"' in ended.text
    assert theirs_open() == 401
    # Each step is in the audit trail, with the address it came from.
    steps = [(e.action, e.person) for e in trail(loaded, kinds=["access"])]
    assert steps == [
        ("opened", "li.na"),
        ("refused_used", "li.na"),
        ("signed_out_everywhere", "li.na"),
    ]
    assert all(dict(e.facts).get("client") == "testclient" for e in trail(loaded, kinds=["access"]))


def test_sessions_end_at_logout_and_at_their_expiry(dash: Dash) -> None:
    dash.sign_in("li.na")
    csrf = dash.csrf()
    assert dash.client.post("/dashboard/logout", data={"csrf": csrf}).status_code == 200
    assert dash.client.get("/dashboard/me").status_code == 401
    dash.sign_in("li.na")
    dash.clock.at += 12 * 3600 + 1  # KPIBOT_DASHBOARD_SESSION_HOURS
    signed_out = dash.client.get("/dashboard/me")
    assert signed_out.status_code == 401 and 'data-message="signin"' in signed_out.text


def test_no_secret_no_links(db_url: str, loaded: Engine) -> None:
    for found in _dash(db_url, loaded, KPIBOT_SECRET_KEY=None):
        with pytest.raises(DashboardUnavailable):
            dashboard_link(found.runtime, "li.na", now=PINNED)
        assert found.client.get("/dashboard/login/v1.x.y").status_code == 503


def test_the_root_leads_to_the_sign_in_hint_with_the_security_headers(dash: Dash) -> None:
    hint = dash.client.get("/")
    assert hint.status_code == 200 and hint.url.path == "/dashboard/"
    assert "看板" in hint.text and 'data-message="signin"' in hint.text
    headers = hint.headers
    assert headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP
    assert "script-src 'self'" in CSP and "frame-ancestors 'self' https://*.feishu.cn" in CSP
    assert "https://*.dingtalk.com" in CSP and "slack" not in CSP  # Slack frames no page
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "same-origin"
    assert "<script>" not in hint.text and " style=" not in hint.text  # nothing inline
    assert dash.client.get("/healthz").headers.get("content-security-policy") is None


def test_link_redemption_is_rate_limited_per_client(dash: Dash) -> None:
    answers = [
        dash.client.post("/dashboard/login", data={"token": "v1.bad.bad"}).status_code
        for _ in range(11)
    ]
    assert answers[:10] == [400] * 10 and answers[10] == 429
    limited = dash.client.get(dash.link_path("li.na"))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    dash.clock.at += 61
    assert dash.client.get(dash.link_path("li.na")).status_code == 200


# -- who sees what --------------------------------------------------------------------------


def test_a_member_sees_her_own_figures_and_nothing_she_may_not(
    dash: Dash, loaded: Engine, organisation: Organisation
) -> None:
    dash.sign_in("li.na")
    page = dash.client.get("/dashboard/me")
    assert page.status_code == 200 and "李娜" in page.text
    figures = Figures(loaded, organisation)
    month = figures.figure(
        "gmv", Scope("person", "li.na"), month_of(PINNED_DAY, "Asia/Shanghai"), now=PINNED
    )
    today = figures.figure(
        "gmv", Scope("person", "li.na"), day_of(PINNED_DAY, "Asia/Shanghai"), now=PINNED
    )
    assert money(month.value, "CNY", "zh") in page.text
    assert money(today.value, "CNY", "zh") in page.text
    # Her scorecard: each item's points, the score and the bonus preview with its reason.
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    card = scorecard(figures, plans, "li.na", month_of(PINNED_DAY, "Asia/Shanghai"), now=PINNED)
    assert card is not None and card.items
    shown = section(page.text, "scorecard")
    for item in card.items:
        assert f"<td>{number(item.points, 'zh', places=1)}</td>" in shown
    assert number(card.score, "zh", places=1) in shown
    assert money(card.bonus, "CNY", "zh") in shown and '<ul class="reasons"><li>' in shown
    # Her team's page: places and names of colleagues, but not their values.
    team = dash.client.get("/dashboard/teams/sz-live")
    assert team.status_code == 200 and "张伟" in team.text
    zhang = figures.figure(
        "gmv", Scope("person", "zhang.wei"), month_of(PINNED_DAY, "Asia/Shanghai"), now=PINNED
    )
    assert money(zhang.value, "CNY", "zh") not in team.text
    assert text("zh", "web.team.names_only") in team.text
    # Another person's id, another team's, the company, the audit, chart data: one 404 for
    # everything, the same as for an id that does not exist.
    nowhere = dash.client.get("/dashboard/people/nobody.at.all")
    assert nowhere.status_code == 404
    for path in (
        "/dashboard/people/zhang.wei",
        "/dashboard/people/zhang.wei/series.json",
        "/dashboard/teams/la-ops",
        "/dashboard/teams/la-ops/series.json",
        "/dashboard/company",
        "/dashboard/audit?kind=appeal",
    ):
        hidden = dash.client.get(path)
        assert hidden.status_code == 404, path
        assert hidden.text == nowhere.text, path
    own = dash.client.get("/dashboard/people/li.na/series.json?p=month")
    assert own.status_code == 200 and own.json()["currency"] == "CNY"


def test_a_manager_sees_her_people_with_values_and_chart_data(
    dash: Dash, organisation: Organisation
) -> None:
    dash.sign_in("wang.fang")
    team = dash.client.get("/dashboard/teams/sz-live?p=week&d=2026-11-24")
    assert team.status_code == 200 and "¥" in team.text
    assert text("zh", "web.team.names_only") not in team.text
    # The explanation, the breakdowns and each source's state are the engine's figures.
    figures = Figures(dash.engine, organisation)
    week = week_of(PINNED_DAY, "Asia/Shanghai", "monday")
    scope = Scope("team", "sz-live")
    explained = figures.explain(
        scope, week, now=PINNED, previous=earlier_period(week, "previous", PINNED)
    )
    assert explained is not None
    why = section(team.text, "why")
    assert f"{money(explained.before, 'CNY', 'zh')} → {money(explained.after, 'CNY', 'zh')}" in why
    assert explained.drivers
    for driver in explained.drivers:  # traffic × conversion × order value, or orders × value
        assert f"<td>{text('zh', f'web.why.{driver.name}')}</td>" in why
    # The biggest risers and fallers among the streamers, against as many days of the week before.
    streamers = [
        Scope("person", p.id)
        for p in organisation.people.values()
        if p.team == "sz-live" and p.role == "streamer"
    ]
    before = earlier_period(week, "previous", PINNED)
    was = {r.entity: r.value for r in figures.ranking("gmv", streamers, before, now=PINNED)}
    now_ = {r.entity: r.value for r in figures.ranking("gmv", streamers, week, now=PINNED)}
    risers, fallers = movers({e: Delta(was.get(e), v) for e, v in now_.items()})
    assert risers or fallers
    moved = re.search(r'<div class="movers">(.*?)</div>\s*</section>', team.text, re.S)
    assert moved
    for entity, delta in [*risers, *fallers]:
        sign = "+" if (delta.change or 0) > 0 else ""
        shown = f"{organisation.people[entity].name} {sign}{money(delta.change, 'CNY', 'zh')}"
        assert f"<li>{shown}</li>" in moved.group(1)
    breakdowns = section(team.text, "breakdowns")
    for shop in (s for s in organisation.shops.values() if s.team == "sz-live"):
        gmv = figures.figure("gmv", Scope("shop", shop.id), week, now=PINNED)
        assert shop.name in breakdowns and money(gmv.value, shop.currency, "zh") in breakdowns
    live = figures.figure("live_gmv", scope, week, now=PINNED)
    assert text("zh", "web.channel.live") in breakdowns
    assert money(live.value, "CNY", "zh") in breakdowns
    assert "US" not in breakdowns  # another team's shop
    freshness = section(team.text, "freshness")
    for source in ("orders", "refunds", "live_sessions", "ad_spend"):
        assert text("zh", f"web.source.{source}") in freshness
    assert dash.client.get("/dashboard/people/zhang.wei").status_code == 200
    assert dash.client.get("/dashboard/teams/la-ops").status_code == 404
    series = dash.client.get(
        "/dashboard/teams/sz-live/series.json?p=custom&from=2026-11-20&to=2026-11-24"
    )
    data = series.json()
    assert data["labels"] == ["11-20", "11-21", "11-22", "11-23", "11-24"]
    assert len(data["actual"]) == len(data["target"]) == 5
    assert all(Decimal(v) >= 0 for v in data["actual"] if v is not None)
    bad = dash.client.get("/dashboard/teams/sz-live?p=custom&from=2026-11-24&to=2026-01-01")
    assert bad.status_code == 400 and 'data-message="bad_period"' in bad.text


def test_pages_are_in_the_readers_language(db_url: str, loaded: Engine) -> None:
    for found in _dash(db_url, loaded):
        found.sign_in("emily.carter")  # English
        page = found.client.get("/dashboard/teams/la-ops")
        assert '<html lang="en">' in page.text and text("en", "web.team.ranking") in page.text
        assert "$" in page.text
        organisation = found.runtime.organisation
        lina = organisation.people["li.na"].model_copy(update={"language": "ja"})
        people = {**organisation.people, "li.na": lina}
        found.client.app.state.dashboard.pages.organisation = replace(organisation, people=people)  # type: ignore[attr-defined]
        found.sign_in("li.na")
        japanese = found.client.get("/dashboard/me")
        assert '<html lang="ja">' in japanese.text
        assert text("ja", "web.score.title") in japanese.text and "評価" in japanese.text


# -- actions --------------------------------------------------------------------------------


def _alert(engine: Engine, person: str = "li.na") -> int:
    rule = AlertRuleConfig(
        id="dash-test", metric="gmv", scope=f"person:{person}", period="today",
        condition=AlertCondition(below=Decimal(10**9)), hold=1,
    )  # fmt: skip
    observation = Observation(
        rule, Scope("person", person), day_of(PINNED_DAY, "Asia/Shanghai"), PINNED_DAY.isoformat(),
        breached=True, evaluated=True, value=Decimal("1200"), threshold=Decimal(10**9),
        currency="CNY",
    )  # fmt: skip
    outcome, alert = AlertStore(engine).record(observation, PINNED)
    assert outcome == "opened" and alert is not None
    return alert.id


def _appeal(engine: Engine, organisation: Organisation, person: str = "li.na") -> int:
    figure = Figures(engine, organisation).figure(
        "gmv", Scope("person", person), day_of(PINNED_DAY, "Asia/Shanghai"), now=PINNED
    )
    return AppealStore(engine).open(
        appellant=person, figure=figure, scope=f"person:{person}", claimed=Decimal("12000"),
        reason="两单漏算", evidence=["order 5791234"], reviewer="wang.fang", platform="feishu",
        workspace="", channel="", now=PINNED, sla_hours=24,
    ).id  # fmt: skip


def test_actions_need_the_sessions_csrf_token_from_our_own_pages(
    dash: Dash, loaded: Engine
) -> None:
    alert_id = _alert(loaded)
    dash.sign_in("li.na")
    csrf = dash.csrf()
    path = f"/dashboard/alerts/{alert_id}/ack"
    assert dash.client.post(path, data={"version": "1"}).status_code == 403
    assert dash.client.post(path, data={"csrf": "guess", "version": "1"}).status_code == 403
    elsewhere = dash.client.post(
        path, data={"csrf": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403
    assert AlertStore(loaded).get(alert_id).state == "firing"  # type: ignore[union-attr]
    done = dash.client.post(
        path, data={"csrf": csrf, "back": "/dashboard/me"}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"].startswith(
        "/dashboard/me?msg=alert.done"
    )
    assert AlertStore(loaded).get(alert_id).state == "acknowledged"  # type: ignore[union-attr]


def test_alert_and_appeal_actions_follow_the_chat_rules_and_audit(
    dash: Dash, loaded: Engine, organisation: Organisation
) -> None:
    alert_id, appeal_id = _alert(loaded), _appeal(loaded, organisation)
    # A colleague may neither act on li.na's alert nor decide her appeal: 404, nothing moves,
    # and the refused alert action is in the trail as in chat.
    dash.sign_in("zhang.wei")
    csrf = dash.csrf()
    assert (
        dash.client.post(f"/dashboard/alerts/{alert_id}/ack", data={"csrf": csrf}).status_code
        == 404
    )
    assert (
        dash.client.post(f"/dashboard/appeals/{appeal_id}/accept", data={"csrf": csrf}).status_code
        == 404
    )
    refused = [e for e in trail(loaded, kinds=["alert"], id=str(alert_id)) if e.action == "refused"]
    assert [e.actor for e in refused] == ["zhang.wei"]
    # Her manager snoozes the alert and accepts the appeal from the team page.
    dash.sign_in("wang.fang")
    team = dash.client.get("/dashboard/teams/sz-live")
    assert f'id="alert-{alert_id}"' in team.text and f'id="appeal-{appeal_id}"' in team.text
    csrf = dash.csrf("/dashboard/teams/sz-live")
    back = {"csrf": csrf, "back": "/dashboard/teams/sz-live", "version": "1"}
    assert (
        dash.client.post(
            f"/dashboard/alerts/{alert_id}/snooze", data={**back, "for": "2h"}
        ).status_code
        == 200
    )
    snoozed = AlertStore(loaded).get(alert_id)
    assert (
        snoozed is not None
        and snoozed.state == "snoozed"
        and snoozed.snoozed_until == PINNED + 7200
    )
    # A rejection needs a reason; a stale version changes nothing.
    page = dash.client.post(f"/dashboard/appeals/{appeal_id}/reject", data=back)
    assert text("zh", "web.notice.appeal.reason_needed") in page.text
    stale = dash.client.post(
        f"/dashboard/appeals/{appeal_id}/accept", data={**back, "version": "7"}
    )
    assert text("zh", "web.notice.appeal.stale") in stale.text
    accepted = dash.client.post(f"/dashboard/appeals/{appeal_id}/accept", data=back)
    assert text("zh", "web.notice.appeal.done") in accepted.text
    appeal = AppealStore(loaded).get(appeal_id)
    assert appeal is not None and appeal.state == "accepted" and appeal.decided_by == "wang.fang"
    with loaded.connect() as conn:
        corrections = conn.execute(select(Correction.__table__)).all()  # type: ignore[attr-defined]
    assert [(c.appeal_id, c.created_by) for c in corrections] == [(appeal_id, "wang.fang")]
    actions = [(e.kind, e.action, e.actor) for e in trail(loaded, person="wang.fang")]
    assert ("alert", "snoozed", "wang.fang") in actions
    assert ("appeal", "accepted", "wang.fang") in actions


def test_the_audit_trail_is_written_in_the_readers_language(
    dash: Dash, loaded: Engine, organisation: Organisation
) -> None:
    alert_id, appeal_id = _alert(loaded), _appeal(loaded, organisation)
    dash.sign_in("wang.fang")
    csrf = dash.csrf("/dashboard/teams/sz-live")
    back = {"csrf": csrf, "back": "/dashboard/teams/sz-live", "version": "1"}
    dash.client.post(f"/dashboard/alerts/{alert_id}/snooze", data={**back, "for": "2h"})
    dash.client.post(f"/dashboard/appeals/{appeal_id}/accept", data=back)
    dash.sign_in("chen.hao")  # the admin reads Chinese
    page = dash.client.get("/dashboard/audit?person=li.na").text
    rows = re.findall(r"<tr><td>[^<]*</td>((?:<td>[^<]*</td>){6})</tr>", page)
    cells = [re.findall(r"<td>([^<]*)</td>", row) for row in rows]
    actions = {c[3] for c in cells}
    for action in ("fired", "snoozed", "opened", "accepted", "corrected"):
        assert text("zh", f"web.audit.actions.{action}") in actions, action
    details = " ".join(c[5] for c in cells)
    assert "李娜" in details and text("zh", "web.metric.gmv") in details
    assert text("zh", "web.audit.field.claimed") in details and "¥12,000.00" in details
    # No engine code is left for the reader: not the actions, the scope, the metric's key.
    for code in ("fired", "snoozed", "opened", "accepted", "corrected", "person:li.na", "gmv "):
        assert code not in page, code
    # The same entries for an English and a Japanese reader (the rows are written per reader).
    pages = dash.client.app.state.dashboard.pages  # type: ignore[attr-defined]
    entries = trail(loaded, person="li.na")
    for language in ("en", "ja"):
        reader = replace(pages_reader(pages, "chen.hao"), language=language, t=texts(language))
        written = [pages.audit_row(e, reader, timezone="Asia/Shanghai") for e in entries]
        assert {r["action"] for r in written} >= {
            text(language, f"web.audit.actions.{a}")
            for a in ("fired", "snoozed", "opened", "accepted", "corrected")
        }
        joined = " ".join(r["detail"] for r in written)
        assert text(language, "web.metric.gmv") in joined and "person:li.na" not in joined
        assert text(language, "web.audit.field.claimed") in joined


def pages_reader(pages: object, person: str) -> Reader:
    from bot.web.pages import reader_of

    organisation = pages.organisation  # type: ignore[attr-defined]
    return reader_of(organisation, organisation.people[person])


def test_admins_retry_and_drop_dead_letters_and_add_notes(dash: Dash, loaded: Engine) -> None:
    outbox = dash.client.app.state.chat.outbox  # type: ignore[attr-defined]
    ids = [
        outbox.put(Reply(f"digest {n}", "zh"), Target("slack", "", "C1"), kind="digest")
        for n in (1, 2)
    ]
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    with loaded.begin() as conn:
        conn.execute(
            update(table).where(table.c.id.in_(ids)).values(state="dead", error="channel_not_found")
        )
    dash.sign_in("wang.fang")  # a manager: not theirs
    csrf = dash.csrf()
    assert (
        dash.client.post(f"/dashboard/outbox/{ids[0]}/retry", data={"csrf": csrf}).status_code
        == 404
    )
    dash.sign_in("chen.hao")
    company = dash.client.get("/dashboard/company")
    assert company.status_code == 200 and f'id="outbox-{ids[0]}"' in company.text
    assert "channel_not_found" in company.text
    csrf = dash.csrf("/dashboard/company")
    retried = dash.client.post(
        f"/dashboard/outbox/{ids[0]}/retry", data={"csrf": csrf, "back": "/dashboard/company"}
    )
    assert text("zh", "web.notice.outbox.done") in retried.text
    dropped = dash.client.post(
        f"/dashboard/outbox/{ids[1]}/drop", data={"csrf": csrf, "back": "/dashboard/company"}
    )
    assert text("zh", "web.notice.outbox.done") in dropped.text
    logged = [
        (e.id, e.action, e.actor) for e in trail(loaded, kinds=["outbox"]) if e.actor == "chen.hao"
    ]
    assert logged == [(str(ids[0]), "retried", "chen.hao"), (str(ids[1]), "dropped", "chen.hao")]
    audit = dash.client.get("/dashboard/audit?kind=outbox&person=chen.hao")
    assert (
        audit.status_code == 200 and audit.text.count(text("zh", "web.audit.actions.retried")) == 1
    )
    assert "retried" not in audit.text  # the action's code is not what a reader sees
    # The kinds are named in the reader's language, in the filter and on each row.
    rows = re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td>", audit.text)
    assert rows and set(rows) == {text("zh", "web.audit.kinds.outbox")}
    assert f'<option value="appeal">{text("zh", "web.audit.kinds.appeal")}</option>' in audit.text
    # A note on the team's numbers, shown on its page.
    note = dash.client.post(
        "/dashboard/teams/sz-live/notes",
        data={
            "csrf": csrf,
            "back": "/dashboard/teams/sz-live",
            "day": "2026-11-20",
            "text": "<b>TikTok算法调整</b>",
        },
    )
    assert text("zh", "web.notice.note.done") in note.text
    assert "&lt;b&gt;TikTok算法调整&lt;/b&gt;" in note.text and "<b>TikTok" not in note.text


# -- 📊 on the chat's cards -------------------------------------------------------------------


def test_the_dashboard_button_on_digest_alert_and_appeal_cards_signs_in_the_clicker_alone(
    dash: Dash, loaded: Engine, organisation: Organisation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KPIBOT_SECRET_KEY", SECRET)  # the chat side signs with the server's key
    chat = FakeChat("slack", private_in_place=True)
    bot = bot_for(loaded, organisation, {"slack": chat}, fixed_clock(PINNED))
    alert = AlertStore(loaded).get(_alert(loaded))
    appeal = AppealStore(loaded).get(_appeal(loaded, organisation))
    assert alert is not None and appeal is not None
    digests = bot.service("digests")
    morning = digests.posts(bot.scheduler.jobs["morning:sz-live"], PINNED)
    [evening] = digests.posts(bot.scheduler.jobs["evening:sz-live"], PINNED)
    personal = next(p.reply for p in morning if p.person == "li.na")
    cards = {
        "alert": bot.service("alerts").card(alert, "zh"),
        "appeal": bot.service("appeals").card(appeal, "zh"),
        "morning digest": morning[0].reply,
        "personal digest": personal,
        "evening recap": evening.reply,
    }
    people = {"li.na": "U07LINA0001", "zhang.wei": "U07ZHANGWEI", "wang.fang": "U07WANGFANG"}
    clicks = 0
    for card_name, card in cards.items():
        [button] = [b for b in card.buttons if b.action == "dashboard.open"]
        assert button.label == text("zh", "digest.button.dashboard"), card_name
        for person, user in people.items():
            # Clicked in the team's group: the link goes to the clicker alone, for the clicker.
            clicks += 1
            before = len(chat.sent)
            bot.pipeline.accept_action(
                Action(
                    "slack", "T0001", button.action, button.value, user, "C07SZLIVE01", "1",
                    f"dash-click-{clicks}", PINNED,
                )
            )  # fmt: skip
            bot.sender.drain()
            [(reply, target)] = chat.sent[before:]
            assert reply.private and target.user == user, card_name
            found = re.search(r"/dashboard/login/(\S+)", reply.text)
            assert found, (card_name, reply.text)
            assert _payload(found.group(0))["p"] == person
    # The last link (from the recap, clicked by the manager) opens her own dashboard.
    dash.client.cookies.clear()
    opened = dash.client.post("/dashboard/login", data={"token": found.group(1)})
    assert opened.status_code == 200 and opened.url.path == "/dashboard/me"
    assert "王芳" in opened.text


def test_the_company_page_shows_shops_their_sync_the_false_alarm_rate_and_my_page_my_cases(
    dash: Dash, loaded: Engine, organisation: Organisation
) -> None:
    alert_id, appeal_id = _alert(loaded), _appeal(loaded, organisation)
    synced = PINNED - 3600
    with loaded.begin() as conn:
        conn.execute(
            text_sql(
                "INSERT INTO sync_cursors (shop_id, source, high_water, pages, rows, errors, "
                "due_at, last_success, last_error) "
                "VALUES ('tts-gb-01', 'orders', :at, 3, 120, 2, 0, :at, 'RateLimited: 429')"
            ),
            {"at": synced},
        )
    # Her own page lists her alert (with its buttons) and her appeal (she may withdraw it).
    dash.sign_in("li.na")
    mine = dash.client.get("/dashboard/me")
    assert f'id="alert-{alert_id}"' in mine.text and f'id="appeal-{appeal_id}"' in mine.text
    assert f'action="/dashboard/appeals/{appeal_id}/withdraw"' in mine.text
    assert f'action="/dashboard/appeals/{appeal_id}/accept"' not in mine.text
    # She marks the alert not a problem: the admins see the rule's false-alarm rate.
    csrf = dash.csrf()
    marked = dash.client.post(
        f"/dashboard/alerts/{alert_id}/false_alarm", data={"csrf": csrf, "version": "1"}
    )
    assert text("zh", "web.notice.alert.done") in marked.text
    dash.sign_in("chen.hao")
    company = dash.client.get("/dashboard/company")
    assert company.status_code == 200
    rate = text("zh", "web.company.false_alarm_rate", marked=1, total=1)
    assert "<code>dash-test</code> " + rate in company.text
    # Teams side by side over one period (the company's month, in its zone) in its CNY, each
    # against its own target in its own currency.
    figures = Figures(loaded, organisation)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    teams = section(company.text, "teams")
    month = month_of(PINNED_DAY, "Asia/Shanghai")
    for team in organisation.teams.values():
        scope = Scope("team", team.id)
        own = plans.progress(figures.figure("gmv", scope, month, now=PINNED), PINNED)
        assert own.achievement is not None and own.figure.currency == team.currency
        in_cny = figures.figure("gmv", scope, month, now=PINNED, currency="CNY")
        row = re.search(rf">{re.escape(team.name)}</a></td>(.*?)</tr>", teams)
        assert row, team.id
        cells = re.findall(r"<td>([^<]*)</td>", row.group(1))
        assert cells[0] == money(in_cny.value, "CNY", "zh")
        assert cells[-2:] == [percent(own.achievement, "zh"), percent(own.pace, "zh")]
    for shop in organisation.shops.values():  # every shop, with its team
        assert shop.name in company.text
    sync = re.search(r'<table class="sync">.*?</table>', company.text, re.S)
    assert sync and "TikTok Shop UK — Glow Beauty" in sync.group(0)
    assert "RateLimited: 429" in sync.group(0)
    assert moment(synced, "Asia/Shanghai", "zh") in sync.group(0)
    # A note on the team's numbers is on the chart's day.
    add_note(loaded, "team:sz-live", PINNED_DAY, "直播间改版", "wang.fang", now=PINNED)
    series = dash.client.get("/dashboard/teams/sz-live/series.json?p=week").json()
    assert {"day": PINNED_DAY.strftime("%m-%d"), "text": "直播间改版"} in series["notes"]
