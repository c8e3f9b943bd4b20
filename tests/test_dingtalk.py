"""DingTalk against a fake DingTalk OpenAPI on 127.0.0.1: signed robot callbacks posted to
`kpibot serve`'s app, the Stream path through dingtalk-stream's own client, interactive cards,
custom group robots and the error mapping."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text

from adapters.dingtalk.inbound import BOT_TOPIC, CARD_TOPIC, callback_sign
from adapters.dingtalk.outbound import DingTalkAdapter, out_track_id
from bot.app import create_app
from bot.chat.adapter import AuthRevoked, RateLimited, TargetNotFound, Unavailable
from bot.chat.messages import Button, Chart, KeyValue, Reply, Target
from bot.outbox import LIMITS, Outbox, Sender
from config.settings import Settings
from kpi_engine.clock import fixed_clock, system_clock
from kpi_engine.models import InboundEvent
from kpi_engine.organisation import AlertCondition, AlertRuleConfig, Organisation
from tests.conftest import EXAMPLE_CONFIG
from tests.fakechat import bot_for
from tests.fakedingtalk import CORP, FakeDingTalk
from tests.pinned import PINNED, PINNED_AT, PINNED_DAY
from tests.waiting import wait_for
from tests.workspaces import load_demo

SECRET = "dingtalk-app-secret-for-tests"
GROUP = "cidSzLive0uT7mH2k9Qw=="  # sz-live's DingTalk group (organisation.yaml)
LINA = "lina1024"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def robot_message(
    sender: str, text: str, *, group: bool = True, at_bot: bool = True, msg_id: str | None = None
) -> dict[str, Any]:
    """A robot message as DingTalk documents it (HTTP callback body, Stream `data`)."""
    return {
        "conversationId": GROUP if group else f"cid-single-{sender}",
        "atUsers": [{"dingtalkId": "$:LWCP_v1:$bot"}] if at_bot else [],
        "chatbotCorpId": CORP,
        "chatbotUserId": "$:LWCP_v1:$bot",
        "msgId": msg_id or f"msg{uuid.uuid4().hex}",
        "senderNick": "李娜",
        "isAdmin": False,
        "senderStaffId": sender,
        "sessionWebhookExpiredTime": int(system_clock() * 1000) + 5400_000,
        "createAt": int(system_clock() * 1000),
        "senderCorpId": CORP,
        "conversationType": "2" if group else "1",
        "senderId": "$:LWCP_v1:$sender",
        "conversationTitle": "深圳直播组",
        "isInAtList": at_bot if group else False,
        "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=x",
        "text": {"content": f" {text}"},
        "robotCode": "dingrobot",
        "msgtype": "text",
    }


def signed(secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    stamp = str(int((at if at is not None else system_clock()) * 1000))
    return {
        "timestamp": stamp,
        "sign": callback_sign(secret, stamp),
        "Content-Type": "application/json",
    }


@pytest.fixture
def fake() -> Iterator[FakeDingTalk]:
    with FakeDingTalk() as server:
        yield server


@pytest.fixture
def loaded(engine: Engine, organisation: Organisation, tmp_path: Path) -> Engine:
    return load_demo(engine, organisation, tmp_path, days=3, end=PINNED_DAY, seed=8)


def settings_for(db_url: str, fake: FakeDingTalk, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "KPIBOT_DATABASE_URL": db_url,
        "KPIBOT_CONFIG_DIR": EXAMPLE_CONFIG,
        "KPIBOT_SCHEDULER": False,
        "KPIBOT_NOW": PINNED_AT,
        "DINGTALK_CLIENT_ID": "dingappkey",
        "DINGTALK_CLIENT_SECRET": SECRET,
        "DINGTALK_ROBOT_CODE": "dingrobot",
        "DINGTALK_CONNECTION": "http",
        "DINGTALK_CARD_TEMPLATE_ID": "kpibot-card.schema",
        "KPIBOT_DINGTALK_API_URL": fake.url,
        "KPIBOT_DINGTALK_OAPI_URL": fake.url,
    }
    values.update(extra)
    return Settings(**values)


@pytest.fixture
def client(db_url: str, loaded: Engine, fake: FakeDingTalk) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(db_url, fake))) as test_client:
        yield test_client


def deliveries(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(InboundEvent)).scalar_one())


def adapter_for(fake: FakeDingTalk, **options: Any) -> DingTalkAdapter:
    return DingTalkAdapter(
        "dingappkey",
        options.pop("secret", SECRET),
        "dingrobot",
        api=fake.url,
        oapi=fake.url,
        **options,
    )


# -- the HTTP callback ----------------------------------------------------------------------


def test_a_signed_mention_in_the_group_is_answered_one_to_one_with_a_note(
    client: TestClient, loaded: Engine, fake: FakeDingTalk
) -> None:
    answer = client.post(
        "/dingtalk/robot", json=robot_message(LINA, "今天GMV多少"), headers=signed()
    )
    assert answer.status_code == 200
    wait_for(lambda: len(fake.messages) == 2, "the answer and the note")
    [mine] = fake.to(LINA)
    [note] = fake.to(GROUP)
    # The answer has follow-up buttons: an interactive card in her one-to-one chat.
    assert mine.kind == "card" and "目标" in mine.params["markdown"]
    assert {b["action"] for b in json.loads(mine.params["buttons"])} >= {"ask", "appeal.start"}
    assert "私信" in note.params["text"]


def test_forged_old_and_duplicated_callbacks(
    client: TestClient, loaded: Engine, fake: FakeDingTalk
) -> None:
    message = robot_message(LINA, "今天GMV多少", msg_id="msg-dup-1")
    assert (
        client.post("/dingtalk/robot", json=message, headers=signed("not-the-secret")).status_code
        == 401
    )
    assert (
        client.post(
            "/dingtalk/robot", json=message, headers=signed(at=system_clock() - 3700)
        ).status_code
        == 401
    )
    assert client.post("/dingtalk/robot", json=message).status_code == 401
    assert deliveries(loaded) == 0 and fake.messages == []
    # The sign does not cover the body: a replay within the hour is stopped by its msgId.
    for _ in range(3):
        assert client.post("/dingtalk/robot", json=message, headers=signed()).status_code == 200
    wait_for(lambda: len(fake.messages) == 2, "the answer")
    time.sleep(0.3)
    assert len(fake.messages) == 2 and deliveries(loaded) == 1


def test_single_chats_are_answered_and_unaddressed_group_messages_ignored(
    client: TestClient, loaded: Engine, fake: FakeDingTalk
) -> None:
    chatter = robot_message(LINA, "大家好", at_bot=False)
    assert client.post("/dingtalk/robot", json=chatter, headers=signed()).status_code == 200
    single = robot_message(LINA, "what's my GMV this month?", group=False)
    assert client.post("/dingtalk/robot", json=single, headers=signed()).status_code == 200
    wait_for(lambda: len(fake.messages) == 1, "the answer")
    [answer] = fake.messages
    assert answer.to == LINA and "Target" in json.dumps(answer.params, ensure_ascii=False)
    assert deliveries(loaded) == 1


# -- Stream ---------------------------------------------------------------------------------


def test_stream_mode_messages_and_card_clicks_through_the_sdk(
    db_url: str, loaded: Engine, organisation: Organisation, fake: FakeDingTalk
) -> None:
    fake.start_stream()
    settings = settings_for(db_url, fake, DINGTALK_CONNECTION="stream")
    with TestClient(create_app(settings)) as app_client:
        assert fake.ws_connected.wait(20), "the SDK did not connect"
        frame = fake.push(
            BOT_TOPIC, robot_message(LINA, "本月排名", group=False, msg_id="stream-1")
        )
        wait_for(lambda: len(fake.messages) == 1, "the answer")
        wait_for(lambda: any(a["headers"]["messageId"] == frame for a in fake.acks), "the ACK")
        ack = next(a for a in fake.acks if a["headers"]["messageId"] == frame)
        assert ack["code"] == 200
        # An alert card with buttons, then a click on its Ack button over the Stream.
        chat = app_client.app.state.chat  # type: ignore[attr-defined]
        rule = AlertRuleConfig(
            id="lina-gmv", scope="person:li.na", condition=AlertCondition(below=Decimal(10**9))
        )
        chat.service("alerts").rules = {rule.id: rule}
        chat.service("alerts").run(int(chat.core.clock()))
        chat.sender.wake()
        wait_for(lambda: chat.outbox.counts().get("sent") == 3, "the alert cards")
        # li.na's alert card (her ranking answer, with its 📊 button, is a card too).
        track, buttons = next(
            (t, b)
            for t, c in fake.cards.items()
            if LINA in c["openSpaceId"]
            for b in [json.loads(c["cardData"]["cardParamMap"].get("buttons") or "[]")]
            if any(button["action"] == "alert.ack" for button in b)
        )
        ack_button = next(b for b in buttons if b["action"] == "alert.ack")
        click = {
            "extension": "{}",
            "corpId": CORP,
            "type": "actionCallback",
            "userId": LINA,
            "content": json.dumps(
                {
                    "cardPrivateData": {
                        "actionIds": ["ack"],
                        "params": {"action": "alert.ack", "value": ack_button["value"]},
                    }
                }
            ),
            "outTrackId": track,
        }
        fake.push(CARD_TOPIC, click, message_id="click-1")
        fake.push(CARD_TOPIC, click, message_id="click-1")  # pushed again after the ACK
        wait_for(lambda: len(fake.card_updates) == 2, "both cards updated")
        assert all("已确认" in params["markdown"] for _, params in fake.card_updates)
        time.sleep(0.3)
        assert len(fake.card_updates) == 2


# -- outbound -------------------------------------------------------------------------------


def test_cards_are_idempotent_and_updated_in_place(fake: FakeDingTalk) -> None:
    adapter = adapter_for(fake, card_template="kpibot-card.schema")
    reply = Reply(
        "告警 #1",
        "zh",
        headline="告警 #1",
        fields=(KeyValue("当前", "¥8,000"),),
        buttons=(Button("确认", "alert.ack", "1:1", "primary"),),
    )
    first = adapter.send(reply, Target("dingtalk", CORP, GROUP), key="alert:1:v1:n0")
    again = adapter.send(reply, Target("dingtalk", CORP, GROUP), key="alert:1:v1:n0")
    assert first.message_id == again.message_id == "card:" + out_track_id("alert:1:v1:n0")
    assert len(fake.cards) == 1 and fake.repeated_cards == 1
    adapter.update(first, Reply("已确认", "zh", headline="告警 #1", buttons=()))
    assert fake.card_updates and "已确认" in fake.card_updates[0][1]["markdown"]


def test_charts_are_uploaded_and_sent_as_images(fake: FakeDingTalk) -> None:
    adapter = adapter_for(fake)
    reply = Reply("早报", "zh", headline="早报", chart=Chart("本月GMV", PNG, "每日GMV"))
    adapter.send(reply, Target("dingtalk", CORP, GROUP), key="digest-1")
    kinds = [(m.msg_key, m.to) for m in fake.messages]
    assert kinds == [("sampleMarkdown", GROUP), ("sampleImageMsg", GROUP)]
    assert fake.messages[1].params == {"photoURL": "@lAD1"} and len(fake.media) == 1


def test_errors_map_to_the_shared_hierarchy(fake: FakeDingTalk) -> None:
    adapter = adapter_for(fake)
    target = Target("dingtalk", CORP, GROUP)
    fake.fail_next("group", 400, {"code": "130101", "message": "send too fast"})
    with pytest.raises(RateLimited) as fast:
        adapter.send(Reply("x", "zh"), target)
    assert fast.value.retry_after == 600
    fake.fail_next("group", 200, {"status": 1111, "wait": 5, "punish": "deny"})
    with pytest.raises(RateLimited) as gateway:
        adapter.send(Reply("x", "zh"), target)
    assert gateway.value.retry_after == 5
    fake.fail_next(
        "group", 403, {"code": "Forbidden.AccessDenied.ApiCountLimitForOrg", "message": "quota"}
    )
    with pytest.raises(AuthRevoked, match="quota"):
        adapter.send(Reply("x", "zh"), target)
    fake.fail_next(
        "group", 400, {"code": "param.openConversationId.invalid", "message": "no group"}
    )
    with pytest.raises(TargetNotFound):
        adapter.send(Reply("x", "zh"), target)
    fake.fail_next("group", 503, {})
    with pytest.raises(Unavailable):
        adapter.send(Reply("x", "zh"), target)
    with pytest.raises(AuthRevoked):
        adapter_for(fake, secret="wrong").send(Reply("x", "zh"), target)


def test_a_custom_group_robot_is_signed_and_paced_at_20_a_minute(
    engine: Engine,
) -> None:
    with FakeDingTalk(robot_secret="SEC0123456789abcdef") as fake:
        adapter = adapter_for(fake, robot_secret="SEC0123456789abcdef")
        webhook = f"{fake.url}/robot/send?access_token=robot-token-1"

        class Clock:
            now = 1_800_000_000.0

            def __call__(self) -> float:
                return self.now

            def sleep(self, seconds: float) -> None:
                self.now += seconds

        clock = Clock()
        outbox = Outbox(engine, clock=clock)
        sender = Sender(outbox, {"dingtalk": adapter}, limits=LIMITS, sleep=clock.sleep, threads=1)
        for n in range(21):
            outbox.put(
                Reply(f"早报 {n}", "zh"),
                Target("dingtalk", "", webhook),
                key=f"robot-{n}",
                kind="digest",
            )
        sender.drain(poll=1.0)
        sender.stop()
        assert len(fake.messages) == 21 and all(m.kind == "custom" for m in fake.messages)
        # 21 messages at no more than 20 a minute: more than a minute went by.
        assert clock.now - 1_800_000_000.0 >= 60
        # The app robot's OpenAPI is not a custom robot: five answers to one person in a row
        # go out within a second, not one every three.
        started = clock.now
        for n in range(5):
            outbox.put(
                Reply(f"答复 {n}", "zh"),
                Target("dingtalk", "", "", user=LINA, private=True),
                key=f"answer-{n}",
                kind="reply",
            )
        sender = Sender(outbox, {"dingtalk": adapter}, limits=LIMITS, sleep=clock.sleep, threads=1)
        sender.drain(poll=1.0)
        sender.stop()
        assert len(fake.to(LINA)) == 5
        assert clock.now - started < 1
        # A wrong secret is refused by DingTalk (310000): permanent.
        with pytest.raises(Exception, match="310000"):
            adapter_for(fake, robot_secret="SECwrong").send(
                Reply("x", "zh"), Target("dingtalk", "", webhook)
            )


def test_the_morning_digest_reaches_the_group_with_its_chart(
    loaded: Engine, organisation: Organisation, fake: FakeDingTalk
) -> None:
    adapter = adapter_for(fake)
    bot = bot_for(loaded, organisation, {"dingtalk": adapter}, fixed_clock(PINNED))
    outbox, sender = bot.outbox, bot.sender
    job = bot.scheduler.jobs["morning:sz-live"]
    now = PINNED
    bot.scheduler.execute(job, job.firings(now - 86400, now)[-1])
    sender.drain()
    group = fake.to(GROUP)
    assert [m.msg_key for m in group] == ["sampleMarkdown", "sampleImageMsg"]
    assert "####" in group[0].params["text"] and len(fake.media) == 1
    assert fake.to(LINA), "li.na gets her own numbers one-to-one"
    assert set(outbox.counts()) == {"sent"}


def test_an_appeal_is_a_chain_of_messages_naming_it_with_the_reviewer_mentioned(
    db_url: str, loaded: Engine, fake: FakeDingTalk
) -> None:
    fake.start_stream()
    settings = settings_for(db_url, fake, DINGTALK_CONNECTION="stream")
    with TestClient(create_app(settings)):
        assert fake.ws_connected.wait(20), "the SDK did not connect"
        fake.push(BOT_TOPIC, robot_message(LINA, "申诉 昨天GMV 应该是12000 订单 5791234"))
        # The card, and the note in the group that li.na was answered privately.
        wait_for(lambda: len([m for m in fake.messages if m.to == GROUP]) >= 2, "card and note")
        [card] = [
            m
            for m in fake.messages
            if m.to == GROUP and "申诉 #1" in json.dumps(m.params, ensure_ascii=False)
        ]
        body = json.dumps(card.params, ensure_ascii=False)
        # The reviewer is mentioned where DingTalk reads it, and shown by name.
        delivery = fake.cards[card.id]["imGroupOpenDeliverModel"]
        assert delivery["atUserIds"] == {"wangfang0412": "王芳"}
        assert "@王芳" in card.params["markdown"] and "申诉 #1" in body
        # The reviewer accepts it in a single chat with the robot: the group hears of it.
        fake.push(BOT_TOPIC, robot_message("wangfang0412", "接受 1", group=False))

        def decision() -> list[str]:
            shown = [
                json.dumps(m.params, ensure_ascii=False) for m in fake.messages if m.to == GROUP
            ]
            return [text for text in shown if "已接受" in text]

        wait_for(lambda: bool(decision()), "the decision")
        assert "申诉 #1" in decision()[0]


def test_changes_are_refused_over_the_replayable_http_callback(
    client: TestClient, loaded: Engine, fake: FakeDingTalk
) -> None:
    # A captured timestamp and sign work with any body for an hour: nothing that changes
    # something is taken from it, and the answer points to Stream mode.
    for said in ("申诉 昨天GMV 应该是12000", "确认 1", "加备注 不该记下的", "接受 1"):
        before = len(fake.messages)
        message = robot_message(LINA, said, group=False)
        assert client.post("/dingtalk/robot", json=message, headers=signed()).status_code == 200
        wait_for(lambda: len(fake.messages) > before, "the refusal")  # noqa: B023
        assert "Stream" in json.dumps(fake.messages[-1].params, ensure_ascii=False)
    with loaded.connect() as conn:
        for table in ("appeals", "annotations", "alert_events"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
    # Questions are still answered over it.
    question = robot_message(LINA, "今天GMV多少", group=False)
    assert client.post("/dingtalk/robot", json=question, headers=signed()).status_code == 200
    wait_for(
        lambda: any("成交额" in json.dumps(m.params, ensure_ascii=False) for m in fake.messages),
        "the answer",
    )


def test_a_click_in_a_one_to_one_card_is_answered_in_that_chat(
    db_url: str, loaded: Engine, organisation: Organisation, fake: FakeDingTalk
) -> None:
    fake.start_stream()
    settings = settings_for(db_url, fake, DINGTALK_CONNECTION="stream")
    with TestClient(create_app(settings)) as app_client:
        assert fake.ws_connected.wait(20), "the SDK did not connect"
        fake.push(BOT_TOPIC, robot_message(LINA, "今天GMV多少", group=False, msg_id="single-1"))
        wait_for(lambda: len(fake.cards) == 1, "the answer card")
        [(track, card)] = fake.cards.items()
        # Delivered as the official SDK delivers a one-to-one card.
        assert card["openSpaceId"] == f"dtv1.card//IM_ROBOT.{LINA}"
        assert card["imRobotOpenDeliverModel"] == {
            "spaceType": "IM_ROBOT",
            "robotCode": "dingrobot",
        }
        assert card["imRobotOpenSpaceModel"] == {"supportForward": True}
        ask = next(
            b
            for b in json.loads(card["cardData"]["cardParamMap"]["buttons"])
            if b["action"] == "ask"
        )
        # The click names no group: it came from the robot's one-to-one chat.
        click = {
            "extension": "{}",
            "corpId": CORP,
            "type": "actionCallback",
            "userId": LINA,
            "spaceType": "IM_ROBOT",
            "spaceId": LINA,
            "content": json.dumps(
                {"cardPrivateData": {"params": {"action": "ask", "value": ask["value"]}}}
            ),
            "outTrackId": track,
        }
        fake.push(CARD_TOPIC, click, message_id="single-click-1")
        wait_for(lambda: len(fake.to(LINA)) == 2, "the answer to the click")
        chat = app_client.app.state.chat  # type: ignore[attr-defined]
        wait_for(lambda: chat.outbox.counts().get("sent") == 2, "both sent")
        assert set(chat.outbox.counts()) == {"sent"}  # nothing dead-lettered
        assert fake.to(GROUP) == []


def test_http_callbacks_are_marked_replayable_and_stream_messages_are_not() -> None:
    from fastapi import FastAPI

    from adapters.dingtalk.inbound import DingTalkEvents, mount_webhook
    from bot.chat.messages import InboundMessage

    class Recorder:  # stands in for the pipeline: records what the adapter hands on
        def __init__(self) -> None:
            self.got: list[InboundMessage] = []

        def accept(self, message: InboundMessage) -> bool:
            self.got.append(message)
            return True

    events = DingTalkEvents(SECRET)
    recorder = Recorder()
    events.pipeline = recorder  # type: ignore[assignment]
    app = FastAPI()
    mount_webhook(app, events)
    with TestClient(app) as http:
        message = robot_message(LINA, "确认 1", group=False)
        assert http.post("/dingtalk/robot", json=message, headers=signed()).status_code == 200
    events.message(robot_message(LINA, "确认 1", group=False))  # as the Stream handler does
    assert [m.replayable for m in recorder.got] == [True, False]


def test_unauthenticated_junk_gets_401_400_or_413_with_one_log_line(
    client: TestClient, loaded: Engine, fake: FakeDingTalk, caplog: pytest.LogCaptureFixture
) -> None:
    message = json.dumps(robot_message(LINA, "今天GMV多少")).encode()
    good = signed()
    cases: list[tuple[bytes, dict[str, Any], int]] = [
        (message, {**good, "timestamp": "9" * 400}, 401),  # no float can hold it
        (message, {**good, "timestamp": "1e3"}, 401),
        (message, {**good, "sign": "é".encode()}, 401),
        (b"{not json", good, 400),  # the sign covers no body: junk after a valid sign
        (b"\xff\xfe", good, 400),
        (b"x" * (1024 * 1024 + 1), good, 413),
    ]
    for content, headers, status in cases:
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            answer = client.post("/dingtalk/robot", content=content, headers=headers)
        assert answer.status_code == status, headers
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and warnings[0].exc_info is None, warnings
    assert deliveries(loaded) == 0 and fake.messages == []
