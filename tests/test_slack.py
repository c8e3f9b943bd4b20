"""The Slack adapter with the real slack-bolt / slack-sdk against a fake Slack on loopback:
signed requests built from Slack's documented payloads through the real app (`create_app`),
Block Kit replies, ephemeral, direct and threaded messages, in-place updates, chart uploads,
errors mapped for the outbox, retried deliveries answered once, and Socket Mode."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from adapters.slack import EVENTS_PATH, connect
from adapters.slack.client import SlackAdapter, make_web_client
from adapters.slack.inbound import parse_actions, parse_event
from adapters.slack.render import MAX_BLOCKS, action_of, render_blocks
from bot.app import create_app
from bot.chat.adapter import AuthRevoked, RateLimited, TargetNotFound, Unavailable, Unsupported
from bot.chat.context import ASK
from bot.chat.messages import (
    Button,
    Chart,
    KeyValue,
    Mention,
    ProgressBar,
    Reply,
    Sent,
    Table,
    Target,
)
from bot.runtime import Runtime, build_runtime
from config.settings import Settings
from kpi_engine.clock import system_clock
from kpi_engine.demo_data import FILE_KINDS, generate
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.organisation import AlertCondition, AlertRuleConfig, Organisation
from tests.conftest import EXAMPLE_CONFIG, ROOT
from tests.fakeslack import (
    APP_ID,
    BOT_TOKEN,
    BOT_USER,
    TEAM,
    FakeSlack,
    counter,
    event_body,
    form_body,
    signed_headers,
)
from tests.pinned import PINNED_AT, PINNED_DAY

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SHANGHAI = ZoneInfo("Asia/Shanghai")
LI_NA, WANG_FANG = "U07LINA0001", "U07WANGFANG"
SZ_LIVE = "C07SZLIVE01"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
next_event_id = counter("Ev0SLACK")


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture(scope="module")
def shop_data(tmp_path_factory: pytest.TempPathFactory, organisation: Organisation) -> Any:
    # Ending on the pinned day, where the app's clock stands.
    return generate(
        organisation,
        EXAMPLE_CONFIG,
        tmp_path_factory.mktemp("shop"),
        days=8,
        end=PINNED_DAY,
        seed=7,
    )


def slack_settings(db_url: str, fake: FakeSlack, *, socket_mode: bool = False) -> Settings:
    """Slack over HTTP (a signing secret), or over Socket Mode only (an app-level token)."""
    values = {
        "KPIBOT_DATABASE_URL": db_url,
        "KPIBOT_CONFIG_DIR": str(EXAMPLE_CONFIG),
        "KPIBOT_SCHEDULER": "false",  # digests are fired explicitly in these tests
        "KPIBOT_NOW": PINNED_AT,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "KPIBOT_SLACK_API_URL": fake.base_url,
    }
    if socket_mode:
        del values["SLACK_SIGNING_SECRET"]
        values["SLACK_APP_TOKEN"] = fake.app_token
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Bot:
    """`kpibot serve` in-process: the real app with Slack connected to the fake."""

    client: TestClient
    runtime: Runtime
    fake: FakeSlack

    @property
    def app(self) -> FastAPI:
        return self.client.app  # type: ignore[return-value]

    def post(
        self,
        body: bytes,
        content_type: str = JSON,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        signed = signed_headers(secret, body, content_type, timestamp=timestamp)
        return self.client.post(
            "/slack/events", content=body, headers={**signed, **(headers or {})}
        )

    def stop(self) -> None:
        """Shut the app down as `kpibot serve` does: workers and the outbox sender finish."""
        self.client.__exit__(None, None, None)

    def events(self) -> int:
        with self.runtime.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM inbound_events")).scalar_one())


def start_bot(
    db_url: str, fake: FakeSlack, shop_data: Any = None, *, socket_mode: bool = False
) -> Iterator[Bot]:
    settings = slack_settings(db_url, fake, socket_mode=socket_mode)
    runtime = build_runtime(settings)
    if shop_data is not None:
        for label, path in shop_data.files.items():
            kind = KINDS[FILE_KINDS.get(label, label)]
            assert import_file(runtime.engine, runtime.organisation, kind, path).ok
    try:
        with TestClient(create_app(settings, runtime=runtime)) as client:
            yield Bot(client, runtime, fake)
    finally:
        runtime.engine.dispose()


@pytest.fixture
def bot(db_url: str, fake: FakeSlack, shop_data: Any) -> Iterator[Bot]:
    yield from start_bot(db_url, fake, shop_data)


def mention(
    text: str, *, channel: str = SZ_LIVE, user: str = LI_NA, **extra: Any
) -> dict[str, Any]:
    ts = f"{int(system_clock())}.000200"
    return {
        "type": "app_mention",
        "user": user,
        "text": text,
        "ts": ts,
        "client_msg_id": "c1c7a0a4-4f4c-4d65-9c5e-1b1a6f0d2f11",
        "team": TEAM,
        "channel": channel,
        "event_ts": ts,
        **extra,
    }


def direct(text: str, *, user: str = LI_NA) -> dict[str, Any]:
    ts = f"{int(system_clock())}.000300"
    return {
        "type": "message",
        "channel": "D0LINA0001",
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": "im",
        "team": TEAM,
    }


def texts(blocks: list[dict[str, Any]]) -> str:
    """Every piece of text in `blocks`, for looking things up."""
    return json.dumps(blocks, ensure_ascii=False)


# -- inbound: the handshake and authenticity ---------------------------------------------------


def test_url_verification_is_answered_with_the_challenge(bot: Bot) -> None:
    body = json.dumps(
        {
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    ).encode()
    response = bot.post(body)
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert bot.fake.calls == []


def test_forged_tampered_and_replayed_requests_get_401_and_nothing_happens(
    db_url: str, fake: FakeSlack
) -> None:
    for bot in start_bot(db_url, fake):
        body = event_body(mention(f"<@{BOT_USER}> 今天GMV多少"), next_event_id())
        wrong_secret = bot.post(body, secret="not-the-signing-secret")
        headers = signed_headers(SECRET, body, JSON)
        tampered = bot.client.post(
            "/slack/events", content=body.replace("今天".encode(), "本月".encode()), headers=headers
        )
        expired = bot.post(body, timestamp=int(system_clock()) - 6 * 60)  # beyond the 5 minutes
        unsigned = bot.client.post("/slack/events", content=body, headers={"Content-Type": JSON})
        not_text = bot.post(b"\xff\xfe" + body)
        challenge = json.dumps({"type": "url_verification", "challenge": "x"}).encode()
        forged_handshake = bot.post(challenge, secret="guess")
        for response in (wrong_secret, tampered, expired, unsigned, not_text, forged_handshake):
            assert response.status_code == 401
        assert "challenge" not in forged_handshake.text  # no handshake for a forger
        assert bot.events() == 0
    # The app has stopped (its workers drained): nothing reached Slack either.
    assert fake.calls == []


def test_unauthenticated_junk_gets_401_or_413_with_one_log_line_and_no_trace(
    db_url: str, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    for bot in start_bot(db_url, fake):
        body = event_body(mention(f"<@{BOT_USER}> 今天GMV多少"), next_event_id())
        stamp = str(int(system_clock()))
        cases: list[tuple[bytes, dict[str, Any], int]] = [
            # A signature Bolt's verifier would choke on (non-ASCII), a timestamp that is no
            # number, a 400-digit one, a signature of the wrong shape.
            (body, {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=é".encode()}, 401),
            (
                body,
                {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=" + "0" * 64},
                401,
            ),
            (
                body,
                {"X-Slack-Request-Timestamp": "9" * 400, "X-Slack-Signature": "v0=" + "0" * 64},
                401,
            ),
            (body, {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v1=abc"}, 401),
            # Unsigned junk bodies: form fields with broken JSON, bytes that are not text.
            (b"payload=%7Bnot+json", {"Content-Type": FORM}, 401),
            (b"\xc3\x28" * 10, {"Content-Type": JSON}, 401),
            # Too large to read at all, signed or not.
            (b"x" * (1024 * 1024 + 1), {"Content-Type": JSON}, 413),
        ]
        for content, headers, status in cases:
            caplog.clear()
            with caplog.at_level(logging.DEBUG):
                answer = bot.client.post("/slack/events", content=content, headers=headers)
            assert answer.status_code == status, (headers, answer.text)
            warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(warnings) == 1 and warnings[0].exc_info is None, warnings
            assert warnings[0].name == "adapters.slack"
        # Signed, but not a payload Bolt can read: 400, one line, no trace.
        caplog.clear()
        broken = b"payload=%7Bnot+json"
        answer = bot.post(broken, FORM)
        assert answer.status_code == 400
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and warnings[0].exc_info is None
        assert bot.events() == 0
    assert fake.calls == []


# -- inbound: messages, commands and buttons → replies -----------------------------------------


def test_a_mention_in_the_team_channel_is_answered_privately_with_a_card(bot: Bot) -> None:
    response = bot.post(event_body(mention(f"<@{BOT_USER}> 今天GMV多少"), next_event_id()))
    assert response.status_code == 200
    [sent] = bot.fake.wait_for("chat.postEphemeral")
    assert bot.fake.calls_to("chat.postMessage") == []  # personal numbers stay private
    assert sent["channel"] == SZ_LIVE and sent["user"] == LI_NA
    blocks = sent["blocks"]
    assert blocks[0]["type"] == "header" and blocks[0]["text"]["text"].startswith("李娜 · 今天")
    assert "成交额" in sent["text"] and "目标" in sent["text"]  # the complete fallback text
    fields = next(b for b in blocks if b["type"] == "section" and "fields" in b)["fields"]
    assert any("CNY" in f["text"] for f in fields)
    assert any("`█" in texts([b]) or "`░" in texts([b]) for b in blocks)  # the progress bar
    actions = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [a["action_id"] for a in actions] == [
        ASK,
        f"{ASK}~2",
        f"{ASK}~3",
        "appeal.start",
        "dashboard.open",
    ]
    assert actions[0]["value"] == "本周排名 gmv" and actions[0]["text"]["text"] == "团队排名"
    assert blocks[-1]["type"] == "context" and "暂定" in texts(blocks[-1:])
    # The bot's own identity came from auth.test; its mention is not part of the question.
    assert bot.fake.methods().count("auth.test") == 1


def test_a_direct_message_is_answered_in_the_direct_chat(bot: Bot) -> None:
    response = bot.post(event_body(direct("what's my GMV today?"), next_event_id()))
    assert response.status_code == 200
    [sent] = bot.fake.wait_for("chat.postMessage")
    assert sent["channel"] == "D0LINA0001" and "thread_ts" not in sent
    assert "target" in sent["text"] and sent["blocks"][0]["type"] == "header"
    assert bot.fake.calls_to("chat.postEphemeral") == []


def test_a_mention_inside_a_thread_is_answered_in_that_thread(bot: Bot) -> None:
    event = mention(f"<@{BOT_USER}> 本月备注", user=WANG_FANG, thread_ts="1731400000.000100")
    assert bot.post(event_body(event, next_event_id())).status_code == 200
    [sent] = bot.fake.wait_for("chat.postMessage")
    assert sent["channel"] == SZ_LIVE and sent["thread_ts"] == "1731400000.000100"


def test_the_kpi_slash_command_gets_an_ephemeral_progress_card(bot: Bot) -> None:
    body = form_body(
        {
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "team_id": TEAM,
            "team_domain": "galaxy",
            "channel_id": SZ_LIVE,
            "channel_name": "sz-live",
            "user_id": LI_NA,
            "user_name": "li.na",
            "command": "/kpi",
            "text": "gmv today",
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": "https://hooks.slack.com/commands/T0GALAXY/1234/abcd",
            "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        }
    )
    response = bot.post(body, FORM)
    assert response.status_code == 200 and response.text == ""  # acknowledged, nothing echoed
    [sent] = bot.fake.wait_for("chat.postEphemeral")
    assert sent["user"] == LI_NA and sent["channel"] == SZ_LIVE
    assert sent["blocks"][0]["type"] == "header" and "GMV" in sent["text"]
    assert any(b["type"] == "section" and "`" in texts([b]) for b in sent["blocks"])


def test_an_ask_button_click_asks_its_question(bot: Bot) -> None:
    payload = {
        "type": "block_actions",
        "user": {"id": LI_NA, "username": "li.na", "name": "li.na", "team_id": TEAM},
        "api_app_id": APP_ID,
        "token": "9s8d9as89d8as9d8as989",
        "container": {
            "type": "message",
            "message_ts": "1731400000.000200",
            "channel_id": "D0LINA0001",
            "is_ephemeral": False,
        },
        "trigger_id": "1234567890123.1234567890123.abcdef01234567890abcdef012345689",
        "team": {"id": TEAM, "domain": "galaxy"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": "D0LINA0001", "name": "directmessage"},
        "message": {
            "type": "message",
            "user": BOT_USER,
            "ts": "1731400000.000200",
            "bot_id": "B0KPIBOT",
            "text": "李娜 · 今天",
            "blocks": [],
        },
        "state": {"values": {}},
        "response_url": "https://hooks.slack.com/actions/T0GALAXY/1234/abcd",
        "actions": [
            {
                "action_id": f"{ASK}~2",
                "block_id": "Mpm7",
                "text": {"type": "plain_text", "text": "本月排名", "emoji": True},
                "value": "本周排名",
                "type": "button",
                "action_ts": "1731400100.123456",
            }
        ],
    }
    body = form_body({"payload": json.dumps(payload, ensure_ascii=False)})
    assert bot.post(body, FORM).status_code == 200
    [sent] = bot.fake.wait_for("chat.postMessage")
    assert sent["channel"] == "D0LINA0001"
    assert "名次" in texts(sent["blocks"]) and "李娜（你）" in texts(sent["blocks"])
    # The same click delivered twice is answered once.
    assert bot.post(body, FORM).status_code == 200
    assert bot.events() == 1


def test_an_unregistered_user_is_told_whom_to_ask(bot: Bot) -> None:
    bot.post(event_body(direct("今天GMV多少", user="U0STRANGER"), next_event_id()))
    [sent] = bot.fake.wait_for("chat.postMessage")
    assert "你还没有在 kpibot 登记" in sent["text"] and "slack:U0STRANGER" in sent["text"]


def test_the_bots_own_messages_and_channel_chatter_are_acknowledged_and_ignored(bot: Bot) -> None:
    own = {**direct("echo"), "user": BOT_USER, "bot_id": "B0KPIBOT"}
    edited = {**direct("edit"), "subtype": "message_changed"}
    channel = {**direct("hello all"), "channel": SZ_LIVE, "channel_type": "channel"}
    joined = {"type": "member_joined_channel", "user": LI_NA, "channel": SZ_LIVE}
    for event in (own, edited, channel, joined):
        assert bot.post(event_body(event, next_event_id())).status_code == 200
    assert bot.events() == 0


def test_while_slack_cannot_say_who_the_bot_is_an_event_is_refused_for_a_retry_not_lost(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    # Without the bot's own id its mention cannot be told from the question, nor its own posts
    # from people's: the event gets 503, so that Slack sends it again (with the same event id).
    bot.fake.fail("auth.test", error=None, status=502, times=2)
    body = event_body(direct("今天GMV多少"), next_event_id())
    with caplog.at_level(logging.WARNING):
        assert bot.post(body).status_code == 503
    assert any("auth.test failed" in r.getMessage() for r in caplog.records)
    assert bot.events() == 0
    assert bot.post(body).status_code == 503  # still down
    assert bot.post(body, headers={"X-Slack-Retry-Num": "2"}).status_code == 200  # it is back
    [sent] = bot.fake.wait_for("chat.postMessage")
    assert sent["channel"] == "D0LINA0001" and "目标" in sent["text"]
    assert bot.events() == 1
    assert bot.fake.methods().count("auth.test") == 3  # asked until known, then kept
    assert bot.post(event_body(direct("本月GMV"), next_event_id())).status_code == 200
    assert bot.fake.methods().count("auth.test") == 3


# -- retried deliveries ---------------------------------------------------------------------------


def test_a_retry_arriving_while_the_first_delivery_is_being_answered_is_answered_once(
    bot: Bot,
) -> None:
    release = bot.fake.hold("chat.postMessage")
    body = event_body(direct("今天GMV多少"), next_event_id())
    first = bot.post(body)
    assert first.status_code == 200  # acknowledged while the answer is still on its way
    bot.fake.wait_for("chat.postMessage")  # the first delivery is mid-answer, held by Slack
    # Slack did not see the 200 in time and retries: a fresh signature, the same event.
    retry = bot.post(
        body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert retry.status_code == 200
    release.set()
    # Two more retries race each other; none of them is answered.
    results: list[int] = []
    threads = [
        threading.Thread(
            target=lambda n=n: results.append(
                bot.post(body, headers={"X-Slack-Retry-Num": str(n)}).status_code
            )
        )
        for n in (2, 3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200, 200]
    bot.stop()
    assert len(bot.fake.calls_to("chat.postMessage")) == 1 and bot.events() == 1


# -- outbound: scheduled digests, updates, errors ------------------------------------------------


def test_the_morning_digest_is_posted_to_the_channel_with_its_chart(bot: Bot) -> None:
    scheduler = bot.app.state.chat.scheduler
    job = scheduler.jobs["morning:sz-live"]
    day = PINNED_DAY
    nominal = int(datetime(day.year, day.month, day.day, 9, tzinfo=SHANGHAI).timestamp())
    outcomes = scheduler.run_due(nominal + job.jitter(nominal), only=[job.id])
    assert [o.state for o in outcomes if o.scheduled_for == nominal] == ["done"]
    posts = [p for p in bot.fake.wait_for("chat.postMessage") if p["channel"] == SZ_LIVE]
    [upload] = bot.fake.wait_for("files.completeUploadExternal")
    [card] = posts
    assert "早报" in card["blocks"][0]["text"]["text"]
    assert upload["channel_id"] == SZ_LIVE and "thread_ts" not in upload
    [file] = json.loads(upload["files"])
    assert bot.fake.uploads[file["id"]].startswith(b"\x89PNG")
    # The card came first, then its chart; the chart is not repeated as text in the card.
    methods = bot.fake.methods()
    assert methods.index("chat.postMessage") < methods.index("files.getUploadURLExternal")
    assert "📈" not in texts(card["blocks"])
    # Each person's morning lines went to their direct chat, opened for the purpose.
    bot.fake.wait_until(
        lambda: any(c.params.get("channel") == "D07LINA0001" for c in bot.fake.calls)
    )
    assert LI_NA in {c["users"] for c in bot.fake.calls_to("conversations.open")}


def card(language: str = "en") -> Reply:
    return Reply(
        "GMV alert: li.na is 35% below pace today.",
        language,  # type: ignore[arg-type]
        headline="⚠️ GMV below pace",
        fields=(KeyValue("Actual", "12,000.00 CNY"), KeyValue("Expected", "18,500.00 CNY")),
        buttons=(
            Button("Ack", "alert.ack", "42", "primary"),
            Button("Snooze 1h", "alert.snooze", "42:3600"),
            Button("Not a problem", "alert.dismiss", "42", "danger"),
        ),
        context="as of 15:00 · provisional",
    )


def test_a_card_is_sent_then_updated_in_place_from_its_button_click(fake: FakeSlack) -> None:
    adapter = SlackAdapter(make_web_client(BOT_TOKEN, fake.base_url))
    sent = adapter.send(card(), Target("slack", TEAM, SZ_LIVE))
    [posted] = fake.calls_to("chat.postMessage")
    elements = next(b for b in posted["blocks"] if b["type"] == "actions")["elements"]
    assert [(e["action_id"], e["value"], e.get("style")) for e in elements] == [
        ("alert.ack", "42", "primary"),
        ("alert.snooze", "42:3600", None),
        ("alert.dismiss", "42", "danger"),
    ]
    # The Ack click, as Slack posts it back.
    click = {
        "type": "block_actions",
        "user": {"id": LI_NA, "username": "li.na", "team_id": TEAM},
        "team": {"id": TEAM, "domain": "galaxy"},
        "container": {"type": "message", "message_ts": sent.message_id, "channel_id": SZ_LIVE},
        "channel": {"id": SZ_LIVE, "name": "sz-live"},
        "message": {"type": "message", "ts": sent.message_id, "thread_ts": sent.message_id},
        "actions": [
            {
                "type": "button",
                "action_id": "alert.ack",
                "block_id": "x",
                "value": "42",
                "action_ts": "1731400100.000001",
            }
        ],
    }
    [action] = parse_actions(click)
    assert (action.platform, action.workspace, action.action, action.value) == (
        "slack",
        TEAM,
        "alert.ack",
        "42",
    )
    assert (action.sender, action.channel, action.message_id) == (LI_NA, SZ_LIVE, sent.message_id)
    assert action.event_id == f"{sent.message_id}:1731400100.000001" and action.thread is None
    acked = Reply("Acknowledged by li.na.", "en", headline="✅ GMV below pace · acknowledged")
    adapter.update(Sent("slack", action.channel, action.message_id), acked)
    [update] = fake.calls_to("chat.update")
    assert update["channel"] == SZ_LIVE and update["ts"] == sent.message_id
    assert update["text"] == "Acknowledged by li.na."
    assert not any(b["type"] == "actions" for b in update["blocks"])


def test_threads_direct_messages_and_private_replies_go_where_they_should(
    fake: FakeSlack,
) -> None:
    adapter = SlackAdapter(make_web_client(BOT_TOKEN, fake.base_url))
    thread = adapter.send(
        Reply(
            "please review this appeal <!channel>.",
            "en",
            mentions=(Mention("U07WANGFANG", "王芳"),),
        ),
        Target("slack", TEAM, SZ_LIVE, thread="1731400000.000100"),
    )
    [posted] = fake.calls_to("chat.postMessage")
    assert posted["thread_ts"] == "1731400000.000100" and thread.channel == SZ_LIVE
    # The typed mention works; the text's own token is shown, not obeyed.
    assert '"text": "<@U07WANGFANG>"' in texts(posted["blocks"])
    assert posted["text"] == "<@U07WANGFANG> please review this appeal &lt;!channel&gt;."
    first = adapter.send(Reply("早上好", "zh"), Target.direct("slack", TEAM, LI_NA))
    again = adapter.send(Reply("again", "en"), Target.direct("slack", TEAM, LI_NA))
    assert first.channel == again.channel == "D07LINA0001"
    assert len(fake.calls_to("conversations.open")) == 1  # the direct chat is remembered
    chart = Chart("GMV this month", b"\x89PNG\r\n\x1a\nfake", "GMV rising, 72% of target")
    adapter.send(
        Reply("your numbers", "en", chart=chart, private=True),
        Target("slack", TEAM, SZ_LIVE, user=LI_NA, private=True),
    )
    [ephemeral] = fake.calls_to("chat.postEphemeral")
    assert ephemeral["user"] == LI_NA
    # An ephemeral message cannot carry a file: the chart's text stands in for it.
    assert "GMV rising, 72% of target" in texts(ephemeral["blocks"])
    assert fake.calls_to("files.getUploadURLExternal") == []
    # A private answer in a channel the bot is not in (a /kpi typed anywhere) reaches its
    # reader in the direct chat instead.
    fake.fail("chat.postEphemeral", error="not_in_channel")
    moved = adapter.send(
        Reply("your numbers", "en", private=True),
        Target("slack", TEAM, "C0ELSEWHERE", user=LI_NA, private=True),
    )
    assert moved.channel == "D07LINA0001"
    assert fake.calls_to("chat.postMessage")[-1]["channel"] == "D07LINA0001"


def test_slack_errors_map_to_the_shared_hierarchy(fake: FakeSlack) -> None:
    adapter = SlackAdapter(make_web_client(BOT_TOKEN, fake.base_url))
    target = Target("slack", TEAM, SZ_LIVE)
    fake.fail("chat.postMessage", status=429, error="ratelimited", headers={"Retry-After": "7"})
    with pytest.raises(RateLimited) as limited:
        adapter.send(card(), target)
    assert limited.value.retry_after == 7.0
    assert len(fake.calls_to("chat.postMessage")) == 1  # the SDK did not retry on its own
    fake.fail("chat.postMessage", error="channel_not_found")
    with pytest.raises(TargetNotFound):
        adapter.send(card(), target)
    fake.fail("conversations.open", error="user_not_found")
    with pytest.raises(TargetNotFound):
        adapter.send(card(), Target.direct("slack", TEAM, "U0GONE"))
    fake.fail("chat.update", error="message_not_found")
    with pytest.raises(TargetNotFound):
        adapter.update(Sent("slack", SZ_LIVE, "1.000001"), card())
    for code in ("account_inactive", "token_revoked"):
        fake.fail("chat.postMessage", error=code)
        with pytest.raises(AuthRevoked):
            adapter.send(card(), target)
    fake.fail("chat.postMessage", error="msg_too_long")
    with pytest.raises(Unsupported):
        adapter.send(card(), target)
    fake.fail("chat.postMessage", status=503, error=None)  # an HTML error page
    with pytest.raises(Unavailable):
        adapter.send(card(), target)
    fake.fail("chat.postMessage", error="fatal_error", status=500)
    with pytest.raises(Unavailable):
        adapter.send(card(), target)
    revoked = SlackAdapter(make_web_client("xoxb-revoked", fake.base_url))
    with pytest.raises(AuthRevoked):  # the fake answers a wrong token with invalid_auth
        revoked.send(card(), target)
    nobody = SlackAdapter(make_web_client(BOT_TOKEN, "http://127.0.0.1:9/api/", timeout=2))
    with pytest.raises(Unavailable):  # nothing listens there
        nobody.send(card(), target)


def test_refused_blocks_are_sent_again_as_the_complete_text(fake: FakeSlack) -> None:
    adapter = SlackAdapter(make_web_client(BOT_TOKEN, fake.base_url))
    fake.fail("chat.postMessage", error="invalid_blocks")
    sent = adapter.send(card(), Target("slack", TEAM, SZ_LIVE))
    first, second = fake.calls_to("chat.postMessage")
    assert "blocks" in first and "blocks" not in second
    assert second["text"] == card().text and sent.message_id


def test_a_rate_limited_reply_waits_in_the_outbox_and_is_delivered_after_retry_after(
    bot: Bot,
) -> None:
    bot.fake.fail("chat.postMessage", status=429, error="ratelimited", headers={"Retry-After": "1"})
    bot.post(event_body(direct("ping"), next_event_id()))
    first, second = bot.fake.wait_for("chat.postMessage", count=2)
    assert first["text"] == second["text"] == "pong"
    bot.stop()
    with bot.runtime.engine.connect() as conn:
        row = conn.execute(text("SELECT state, attempts FROM outbox")).one()
    assert row.state == "sent"


# -- rendering ------------------------------------------------------------------------------------


def test_every_reply_part_renders_as_block_kit_within_slacks_limits() -> None:
    reply = Reply(
        "full text",
        "en",
        headline="H" * 200,
        fields=tuple(KeyValue(f"k{i}", f"v{i} <b> & co") for i in range(12)),
        table=Table(("#", "姓名", "GMV"), (("1", "李娜", "1,000 CNY"), ("2", "Zhang", "9 CNY"))),
        progress=(ProgressBar("GMV", Decimal("0.5"), "target 2,000"),),
        buttons=(Button("A" * 100, "ask", "x" * 3000), Button("B", "ask", "y")),
        context="provisional <!here>",
    )
    blocks = render_blocks(reply)
    kinds = [b["type"] for b in blocks]
    assert kinds == ["header", "section", "section", "section", "section", "actions", "context"]
    assert len(blocks[0]["text"]["text"]) == 150
    assert [len(b["fields"]) for b in blocks[1:3]] == [10, 2]
    assert blocks[1]["fields"][0]["text"] == "*k0*\nv0 &lt;b&gt; &amp; co"
    assert blocks[3]["text"]["text"] == "*GMV*\n`██████████░░░░░░░░░░` 50%  target 2,000"
    table = blocks[4]["text"]["text"].split("\n")
    # Columns line up although Chinese characters take two columns.
    assert table[1:4] == ["#  姓名   GMV", "─  ─────  ─────────", "1  李娜   1,000 CNY"]
    first, second = blocks[5]["elements"]
    assert (first["action_id"], second["action_id"]) == ("ask", "ask~2")
    assert action_of("ask~2") == "ask" and action_of("alert.ack") == "alert.ack"
    assert len(first["text"]["text"]) == 75 and len(first["value"]) == 2000
    assert blocks[6]["elements"][0]["text"] == "provisional &lt;!here&gt;"  # shown, not obeyed
    assert "full text" not in texts(blocks)  # the structured parts stand for the text


def test_long_replies_are_split_and_capped_at_fifty_blocks() -> None:
    long_text = "\n".join(f"line {i} " + "x" * 90 for i in range(100))
    blocks = render_blocks(Reply(long_text, "en"))
    assert len(blocks) > 1 and all(len(b["text"]["text"]) <= 3000 for b in blocks)
    assert "line 99" in blocks[-1]["text"]["text"]
    rows = tuple((str(i), "名字" * 20, "1" * 60) for i in range(4000))
    huge = render_blocks(Reply("t", "zh", table=Table(("#", "姓名", "值"), rows)))
    assert len(huge) == MAX_BLOCKS and huge[-1]["type"] == "context"
    assert "未显示" in huge[-1]["elements"][0]["text"]
    assert all(len(b["text"]["text"]) <= 3000 for b in huge[:-1])
    assert all(b["text"]["text"].startswith("```\n#") for b in huge[:-1])  # headed chunks


# -- configuration and Socket Mode ---------------------------------------------------------------


def test_slack_is_off_without_credentials_and_http_needs_the_signing_secret(
    db_url: str, fake: FakeSlack
) -> None:
    base = {"KPIBOT_DATABASE_URL": db_url, "KPIBOT_CONFIG_DIR": str(EXAMPLE_CONFIG)}
    assert connect(Settings(**base)) is None  # type: ignore[arg-type]
    assert connect(Settings(**base, SLACK_BOT_TOKEN=BOT_TOKEN)) is None  # type: ignore[arg-type]
    connection = connect(slack_settings(db_url, fake))
    assert connection is not None and connection.adapter.platform == "slack"
    assert connection.adapter.private_in_place is True


def test_socket_mode_receives_events_commands_and_retries_over_the_socket(
    db_url: str, fake: FakeSlack, shop_data: Any
) -> None:
    for bot in start_bot(db_url, fake, shop_data, socket_mode=True):
        # No signing secret: there is no HTTP route to forge requests against.
        assert bot.client.post("/slack/events", content=b"{}").status_code in (404, 405)
        fake.wait_for("apps.connections.open")
        event = json.loads(event_body(mention(f"<@{BOT_USER}> 今天GMV多少"), next_event_id()))
        envelope = {
            "envelope_id": "dbdd0ef3-1543-4f94-bfb4-133d0e6c1545",
            "payload": event,
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        assert fake.push(envelope) == {"envelope_id": envelope["envelope_id"]}
        [sent] = fake.wait_for("chat.postEphemeral")
        assert sent["user"] == LI_NA and sent["blocks"][0]["type"] == "header"
        retried = {
            **envelope,
            "envelope_id": "0b5a4f40-5ad0-4a3e-9e56-1b7c7e4b3c11",
            "retry_attempt": 1,
            "retry_reason": "timeout",
        }
        assert fake.push(retried)["envelope_id"] == retried["envelope_id"]
        command = {
            "envelope_id": "5c1e6f8a-0f5e-4c4e-8a4e-6f7e2d1c9b01",
            "payload": {
                "token": "x",
                "team_id": TEAM,
                "channel_id": "D0LINA0001",
                "channel_name": "directmessage",
                "user_id": LI_NA,
                "command": "/kpi",
                "text": "ping",
                "api_app_id": APP_ID,
                "response_url": "https://hooks.slack.com/commands/T0GALAXY/1/x",
                "trigger_id": "1.2.socket",
            },
            "type": "slash_commands",
            "accepts_response_payload": True,
        }
        assert fake.push(command)["envelope_id"] == command["envelope_id"]
        [pong] = fake.wait_for("chat.postMessage")
        assert pong["channel"] == "D0LINA0001" and pong["text"] == "pong"
    assert len(fake.calls_to("chat.postEphemeral")) == 1  # the retry was not answered again


def test_the_app_manifest_matches_what_the_adapter_serves_and_calls() -> None:
    manifest = yaml.safe_load((ROOT / "adapters" / "slack" / "manifest.yaml").read_text())
    settings = manifest["settings"]
    [command] = manifest["features"]["slash_commands"]
    urls = [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        command["url"],
    ]
    assert all(urlsplit(url).path == EVENTS_PATH for url in urls)
    assert command["command"] == "/kpi" and command["should_escape"] is True
    assert settings["event_subscriptions"]["bot_events"] == ["app_mention", "message.im"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is False
    # A scope for every Web API method the adapter calls (and the events it reads).
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "app_mentions:read",
        "chat:write",
        "commands",
        "files:write",
        "im:history",
        "im:write",
    }


def test_the_bots_mention_is_removed_and_other_mentions_kept_as_ids() -> None:
    body = json.loads(
        event_body(
            mention(f"<@{BOT_USER}> <@U07ZHANGWEI|zhang.wei> 今天GMV &amp; 订单 &lt;3"),
            "Ev0MENTIONS",
            event_time=1731400000,
        )
    )
    message = parse_event(body, BOT_USER)
    assert message is not None
    assert message.text == "<@U07ZHANGWEI> 今天GMV & 订单 <3"
    assert message.mentions == ("U07ZHANGWEI",) and message.event_id == "Ev0MENTIONS"
    assert (message.workspace, message.channel, message.sender) == (TEAM, SZ_LIVE, LI_NA)
    assert message.received_at == 1731400000 and not message.is_direct
    assert parse_event(json.loads(event_body(direct("hi"), "Ev0DM")), BOT_USER).is_direct  # type: ignore[union-attr]


def click_payload(user: str, channel: str, ts: str, action_id: str, value: str) -> bytes:
    """A block_actions payload for a button on the message `ts` in `channel`."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "team_id": TEAM},
        "api_app_id": APP_ID,
        "container": {"type": "message", "message_ts": ts, "channel_id": channel},
        "team": {"id": TEAM, "domain": "galaxy"},
        "channel": {"id": channel},
        "message": {"type": "message", "user": BOT_USER, "ts": ts, "text": "", "blocks": []},
        "actions": [
            {
                "action_id": action_id,
                "block_id": "b1",
                "value": value,
                "type": "button",
                "action_ts": f"{system_clock():.6f}",
            }
        ],
    }
    return form_body({"payload": json.dumps(payload, ensure_ascii=False)})


def button(message: dict[str, Any], action: str) -> dict[str, Any]:
    for block in message["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == action:
                return dict(element)
    raise AssertionError(f"no {action} button")


def sent_messages(bot: Bot, count: int) -> list[tuple[str, str, str]]:
    """(outbox key, channel, ts) of the messages the outbox has marked sent, once `count` are."""
    query = text("SELECT key, channel, message_id FROM outbox WHERE state = 'sent' ORDER BY id")

    def rows() -> list[tuple[str, str, str]]:
        with bot.runtime.engine.connect() as conn:
            return [(k, c, m) for k, c, m in conn.execute(query)]

    bot.fake.wait_until(lambda: len(rows()) >= count)
    return rows()


def test_an_alert_card_is_acknowledged_from_its_button_and_every_card_updated(bot: Bot) -> None:
    chat = bot.app.state.chat
    rule = AlertRuleConfig(
        id="lina-gmv", scope="person:li.na", condition=AlertCondition(below=Decimal(10**9))
    )
    chat.service("alerts").rules = {rule.id: rule}
    assert chat.service("alerts").run(int(bot.runtime.clock())).startswith("1 opened")
    chat.sender.wake()
    posted = bot.fake.wait_for("chat.postMessage", count=2)
    mine = next(p for p in posted if p["channel"].startswith("D"))
    sent = sent_messages(bot, 2)
    ts = next(m for _, c, m in sent if c == mine["channel"])
    ack = button(mine, "alert.ack")
    click = click_payload(LI_NA, mine["channel"], ts, ack["action_id"], ack["value"])
    assert bot.post(click, FORM).status_code == 200
    updates = bot.fake.wait_for("chat.update", count=2)
    assert all("已确认 by 李娜" in texts(u["blocks"]) for u in updates)
    assert {u["ts"] for u in updates} == {m for _, _, m in sent}


def test_an_appeal_opens_a_thread_with_the_reviewer_mentioned(bot: Bot) -> None:
    appeal = mention(f"<@{BOT_USER}> 申诉 昨天GMV 应该是12000 订单 5791234")
    assert bot.post(event_body(appeal, next_event_id())).status_code == 200
    [root] = bot.fake.wait_for("chat.postMessage")
    assert root["channel"] == SZ_LIVE and f"<@{WANG_FANG}>" in root["text"]
    [(_, _, root_ts)] = [row for row in sent_messages(bot, 2) if row[0].startswith("appeal:")]
    accept = button(root, "appeal.accept")
    click = click_payload(WANG_FANG, SZ_LIVE, root_ts, accept["action_id"], accept["value"])
    assert bot.post(click, FORM).status_code == 200

    def in_thread() -> list[dict[str, Any]]:
        return [c for c in bot.fake.calls_to("chat.postMessage") if c.get("thread_ts") == root_ts]

    bot.fake.wait_until(lambda: bool(in_thread()))
    assert "已接受" in in_thread()[0]["text"]


def test_inbound_text_loses_lone_surrogates_and_control_characters() -> None:
    from adapters.slack.inbound import clean_text

    text, _ = clean_text("加备注 a\ud800b\x1b[2J c\u202eexe", BOT_USER)
    assert text == "加备注 a\ufffdb[2J cexe"
    text.encode("utf-8")  # storable in any database
