"""Feishu/Lark through lark-oapi against a fake Feishu Open API on 127.0.0.1, and signed,
encrypted event deliveries built from Feishu's documented payloads, posted to `kpibot serve`'s
app."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from Crypto.Cipher import AES
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from adapters.feishu.cards import card
from adapters.feishu.inbound import signature
from adapters.feishu.outbound import FeishuAdapter, send_uuid
from bot.app import create_app
from bot.chat.adapter import AuthRevoked, RateLimited, TargetNotFound
from bot.chat.messages import Button, Chart, KeyValue, ProgressBar, Reply, Sent, Table, Target
from config.settings import Settings
from kpi_engine.clock import fixed_clock, system_clock
from kpi_engine.figures import Figures, Scope, format_value
from kpi_engine.models import InboundEvent
from kpi_engine.organisation import AlertCondition, AlertRuleConfig, Organisation
from kpi_engine.periods import day_of
from tests.conftest import EXAMPLE_CONFIG
from tests.fakechat import bot_for
from tests.fakefeishu import BOT_OPEN_ID, TENANT, FakeFeishu
from tests.pinned import PINNED, PINNED_AT, PINNED_DAY
from tests.waiting import wait_for
from tests.workspaces import load_demo

ENCRYPT_KEY = "kpibot-test-encrypt-key"
TOKEN = "v-token-kpibot-test"
GROUP = "oc_5ad11d72b830411d72b836c20b1f5d1a"  # sz-live's Feishu group (organisation.yaml)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def encrypt(payload: dict[str, Any], key: str = ENCRYPT_KEY) -> bytes:
    """Feishu's encryption: AES-256-CBC, key SHA-256(encrypt key), random IV first, base64."""
    plain = json.dumps(payload, ensure_ascii=False).encode()
    pad = 16 - len(plain) % 16
    iv = os.urandom(16)
    cipher = AES.new(hashlib.sha256(key.encode()).digest(), AES.MODE_CBC, iv)
    sealed = cipher.encrypt(plain + bytes([pad]) * pad)
    return json.dumps({"encrypt": base64.b64encode(iv + sealed).decode()}).encode()


def signed(body: bytes, *, at: float | None = None, key: str = ENCRYPT_KEY) -> dict[str, str]:
    timestamp = str(int(at if at is not None else system_clock()))
    nonce = uuid.uuid4().hex[:12]
    return {
        "Content-Type": "application/json",
        "X-Lark-Request-Timestamp": timestamp,
        "X-Lark-Request-Nonce": nonce,
        "X-Lark-Signature": signature(timestamp, nonce, key, body),
    }


def message_event(
    sender: str,
    text: str,
    *,
    chat: str = GROUP,
    chat_type: str = "group",
    mention_bot: bool = True,
    event_id: str | None = None,
) -> dict[str, Any]:
    """im.message.receive_v1 as in Feishu's documentation (schema 2.0)."""
    mentions = []
    if mention_bot:
        text = "@_user_1 " + text
        mentions.append(
            {
                "key": "@_user_1",
                "id": {"union_id": "on_bot", "user_id": "", "open_id": BOT_OPEN_ID},
                "name": "KPI 助手",
                "tenant_key": TENANT,
            }
        )
    return {
        "schema": "2.0",
        "header": {
            "event_id": event_id or uuid.uuid4().hex,
            "event_type": "im.message.receive_v1",
            "create_time": str(int(system_clock() * 1000)),
            "token": TOKEN,
            "app_id": "cli_a1b2c3d4e5f60708",
            "tenant_key": TENANT,
        },
        "event": {
            "sender": {
                "sender_id": {"union_id": "on_x", "user_id": "x", "open_id": sender},
                "sender_type": "user",
                "tenant_key": TENANT,
            },
            "message": {
                "message_id": f"om_{uuid.uuid4().hex[:24]}",
                "create_time": str(int(system_clock() * 1000)),
                "chat_id": chat,
                "chat_type": chat_type,
                "message_type": "text",
                "content": json.dumps({"text": text}, ensure_ascii=False),
                "mentions": mentions,
            },
        },
    }


def card_action(
    sender: str, value: dict[str, Any], message_id: str, *, event_id: str, chat: str = GROUP
) -> dict[str, Any]:
    """card.action.trigger (the new card callback) as documented."""
    return {
        "schema": "2.0",
        "header": {
            "event_id": event_id,
            "token": TOKEN,
            "create_time": str(int(system_clock() * 1_000_000)),
            "event_type": "card.action.trigger",
            "tenant_key": TENANT,
            "app_id": "cli_a1b2c3d4e5f60708",
        },
        "event": {
            "operator": {"tenant_key": TENANT, "user_id": "x", "open_id": sender},
            "token": "c-295ee57216a5dc9de90fefd0aadb4b1d7d337fc7",
            "action": {"value": value, "tag": "button"},
            "host": "im_message",
            "context": {"open_message_id": message_id, "open_chat_id": chat},
        },
    }


@pytest.fixture
def fake() -> Iterator[FakeFeishu]:
    with FakeFeishu() as server:
        yield server


@pytest.fixture
def today() -> date:
    return PINNED_DAY


@pytest.fixture
def loaded(engine: Engine, organisation: Organisation, tmp_path: Path, today: date) -> Engine:
    return load_demo(engine, organisation, tmp_path, days=3, end=today, seed=8)


def settings_for(db_url: str, fake: FakeFeishu, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "KPIBOT_DATABASE_URL": db_url,
        "KPIBOT_CONFIG_DIR": EXAMPLE_CONFIG,
        "KPIBOT_SCHEDULER": False,
        "KPIBOT_NOW": PINNED_AT,
        "FEISHU_APP_ID": f"cli_{uuid.uuid4().hex[:16]}",
        "FEISHU_APP_SECRET": "secret",
        "FEISHU_ENCRYPT_KEY": ENCRYPT_KEY,
        "FEISHU_VERIFICATION_TOKEN": TOKEN,
        "KPIBOT_FEISHU_DOMAIN": fake.url,
    }
    values.update(extra)
    return Settings(**values)


@pytest.fixture
def client(db_url: str, loaded: Engine, fake: FakeFeishu) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(db_url, fake))) as test_client:
        yield test_client


def deliveries(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(InboundEvent)).scalar_one())


def open_id(organisation: Organisation, person: str) -> str:
    found = organisation.people[person].chat.feishu
    assert found
    return found


# -- url_verification and authenticity ------------------------------------------------------


def test_url_verification_is_answered_plain_and_encrypted(db_url: str, fake: FakeFeishu) -> None:
    challenge = {"challenge": "ajls384kdjx98XX", "token": TOKEN, "type": "url_verification"}
    with TestClient(create_app(settings_for(db_url, fake))) as encrypted_app:
        answer = encrypted_app.post("/feishu/events", content=encrypt(challenge))
        assert answer.status_code == 200 and answer.json() == {"challenge": "ajls384kdjx98XX"}
        forged = encrypted_app.post(
            "/feishu/events", content=encrypt({**challenge, "token": "guess"})
        )
        assert forged.status_code == 401
    plain_settings = settings_for(db_url, fake, FEISHU_ENCRYPT_KEY=None)
    with TestClient(create_app(plain_settings)) as plain_app:
        answer = plain_app.post("/feishu/events", json=challenge)
        assert answer.status_code == 200 and answer.json() == {"challenge": "ajls384kdjx98XX"}
        assert plain_app.post("/feishu/events", json={**challenge, "token": "x"}).status_code == 401


def test_forged_tampered_and_replayed_events_are_refused(
    client: TestClient, loaded: Engine, organisation: Organisation, fake: FakeFeishu
) -> None:
    event = message_event(open_id(organisation, "li.na"), "今天GMV多少")
    body = encrypt(event)
    # Signed with another key; a body changed after signing; a delivery 10 minutes old;
    # an unencrypted body while an Encrypt Key is configured; no signature at all.
    forged = client.post("/feishu/events", content=body, headers=signed(body, key="other"))
    tampered = client.post("/feishu/events", content=encrypt(event), headers=signed(body))
    replayed = client.post(
        "/feishu/events", content=body, headers=signed(body, at=system_clock() - 600)
    )
    plain = json.dumps(event).encode()
    unencrypted = client.post("/feishu/events", content=plain, headers=signed(plain))
    unsigned = client.post("/feishu/events", content=body)
    for answer in (forged, tampered, replayed, unencrypted, unsigned):
        assert answer.status_code == 401, answer.text
    assert deliveries(loaded) == 0 and fake.messages == []
    # The genuine delivery is accepted.
    assert client.post("/feishu/events", content=body, headers=signed(body)).status_code == 200
    wait_for(lambda: len(fake.messages) == 1, "the answer")


# -- messages -------------------------------------------------------------------------------


def test_progress_asked_in_a_group_is_answered_only_to_the_asker_as_a_card(
    client: TestClient, loaded: Engine, organisation: Organisation, fake: FakeFeishu, today: date
) -> None:
    lina = open_id(organisation, "li.na")
    body = encrypt(message_event(lina, "今天GMV多少"))
    answer = client.post("/feishu/events", content=body, headers=signed(body))
    assert answer.status_code == 200 and answer.json() == {"msg": "success"}
    wait_for(lambda: len(fake.messages) == 1, "the answer")
    posted = fake.messages[0]
    # Only visible to li.na, in the group, as a card 2.0 with her number and the target.
    assert posted.ephemeral_for == lina and posted.chat_id == GROUP
    assert posted.msg_type == "interactive" and posted.content["schema"] == "2.0"
    figure = Figures(loaded, organisation).figure(
        "gmv", Scope("person", "li.na"), day_of(today, "Asia/Shanghai"), now=PINNED
    )
    text = json.dumps(posted.content, ensure_ascii=False)
    assert format_value(figure.value, figure.unit, figure.currency) in text
    assert "目标" in text and posted.content["config"]["update_multi"] is True
    buttons = [e for e in _elements(posted.content) if e.get("tag") == "button"]
    assert buttons and all(b["behaviors"][0]["type"] == "callback" for b in buttons)


def test_direct_messages_are_answered_in_the_language_asked(
    client: TestClient, organisation: Organisation, fake: FakeFeishu
) -> None:
    lina = open_id(organisation, "li.na")
    p2p = "oc_p2p_lina"
    body = encrypt(
        message_event(
            lina, "what's my GMV this month?", chat=p2p, chat_type="p2p", mention_bot=False
        )
    )
    assert client.post("/feishu/events", content=body, headers=signed(body)).status_code == 200
    wait_for(lambda: len(fake.messages) == 1, "the answer")
    posted = fake.messages[0]
    assert posted.receive_id == p2p and posted.ephemeral_for is None
    text = json.dumps(posted.content, ensure_ascii=False)
    assert "Target" in text and "目标" not in text, text
    # Every send carried a uuid, so a retry would not post twice.
    assert posted.uuid


def test_group_messages_not_addressed_to_the_bot_are_ignored_and_redeliveries_answered_once(
    client: TestClient, loaded: Engine, organisation: Organisation, fake: FakeFeishu
) -> None:
    lina = open_id(organisation, "li.na")
    chatter = encrypt(message_event(lina, "大家早上好", mention_bot=False))
    assert (
        client.post("/feishu/events", content=chatter, headers=signed(chatter)).status_code == 200
    )
    # Feishu pushes the same event again (after 15 s, 5 min…), each time freshly signed.
    event = message_event(lina, "本月排名", event_id="ev-redelivered-1")
    for _ in range(3):
        body = encrypt(event)
        assert client.post("/feishu/events", content=body, headers=signed(body)).status_code == 200
    wait_for(lambda: len(fake.messages) >= 1, "the answer")
    time.sleep(0.3)  # give a wrong second answer the chance to show up
    assert len(fake.messages) == 1 and deliveries(loaded) == 1


def test_a_card_button_click_is_processed_once(
    client: TestClient, loaded: Engine, organisation: Organisation, fake: FakeFeishu
) -> None:
    lina = open_id(organisation, "li.na")
    click = card_action(lina, {"action": "ask", "value": "本周GMV"}, "om_card1", event_id="cb-1")
    for _ in range(2):
        body = encrypt(click)
        answer = client.post("/feishu/card", content=body, headers=signed(body))
        assert answer.status_code == 200 and answer.json() == {}
    wait_for(lambda: len(fake.messages) >= 1, "the answer")
    time.sleep(0.3)
    assert len(fake.messages) == 1 and deliveries(loaded) == 1
    assert "本周" in json.dumps(fake.messages[0].content, ensure_ascii=False)


def test_events_kpibot_does_not_use_are_acknowledged_and_dropped(
    client: TestClient, loaded: Engine, fake: FakeFeishu
) -> None:
    read = message_event("ou_x", "x")
    read["header"]["event_type"] = "im.message.message_read_v1"
    body = encrypt(read)
    answer = client.post("/feishu/events", content=body, headers=signed(body))
    assert answer.status_code == 200 and answer.json() == {"msg": "ignored"}
    assert deliveries(loaded) == 0


def test_the_bot_greets_a_group_it_is_added_to(client: TestClient, fake: FakeFeishu) -> None:
    added = {
        "schema": "2.0",
        "header": {
            "event_id": "ev-added-1",
            "event_type": "im.chat.member.bot.added_v1",
            "create_time": str(int(system_clock() * 1000)),
            "token": TOKEN,
            "app_id": "cli_a1b2c3d4e5f60708",
            "tenant_key": TENANT,
        },
        "event": {
            "chat_id": "oc_newgroup",
            "operator_id": {"open_id": "ou_someone"},
            "external": False,
            "operator_tenant_key": TENANT,
            "name": "深圳直播二组",
        },
    }
    body = encrypt(added)
    assert client.post("/feishu/events", content=body, headers=signed(body)).status_code == 200
    wait_for(lambda: len(fake.posted_to("oc_newgroup")) == 1, "the welcome")
    assert "帮助" in fake.messages[0].content["text"]


def test_the_long_connection_receives_events_through_the_sdk(
    db_url: str, loaded: Engine, organisation: Organisation, fake: FakeFeishu
) -> None:
    fake.start_long_connection()
    settings = settings_for(
        db_url,
        fake,
        FEISHU_CONNECTION="long",
        FEISHU_ENCRYPT_KEY=None,
        FEISHU_VERIFICATION_TOKEN=None,
    )
    lina = open_id(organisation, "li.na")
    with TestClient(create_app(settings)):
        assert fake.ws_connected.wait(20), "the SDK did not connect"
        event = message_event(lina, "今天GMV多少", event_id="ws-ev-1")
        fake.push(event)
        fake.push(event)  # pushed again: Feishu may, after a slow answer
        wait_for(lambda: len(fake.ws_answers) == 2, "the SDK's answers")
        wait_for(lambda: len(fake.messages) == 1, "the reply")
        fake.push(
            card_action(lina, {"action": "ask", "value": "本月排名"}, "om_x", event_id="ws-cb-1")
        )
        wait_for(lambda: len(fake.messages) == 2, "the button's answer")
    assert all(answer["code"] == 200 for answer in fake.ws_answers)
    assert fake.messages[0].ephemeral_for == lina
    assert "本月" in json.dumps(fake.messages[1].content, ensure_ascii=False)
    assert deliveries(loaded) == 2


# -- outbound -------------------------------------------------------------------------------


def adapter_for(fake: FakeFeishu, app_secret: str = "secret") -> FeishuAdapter:
    return FeishuAdapter(f"cli_{uuid.uuid4().hex[:16]}", app_secret, fake.url)


def _elements(content: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "tag" in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(content.get("body", {}))
    return found


def test_every_reply_part_is_rendered_into_the_card() -> None:
    reply = Reply(
        "李娜 今天 GMV ¥8,000",
        "zh",
        headline="今日进度",
        fields=(KeyValue("GMV", "¥8,000"), KeyValue("目标", "¥10,000")),
        table=Table(("主播", "GMV"), (("李娜", "¥8,000"), ("王芳", "¥6,000"))),
        progress=(ProgressBar("GMV", Decimal("0.8"), "¥8,000 / ¥10,000"),),
        buttons=(Button("本月排名", "ask", "本月排名", "primary"),),
        context="暂定 · 截至 15:00",
    )
    built = card(reply, image_key="img_v3_1")
    assert built["header"]["title"]["content"] == "今日进度"
    assert built["header"]["template"] == "orange"  # 80 % of target
    tags = [e["tag"] for e in _elements(built)]
    assert "column_set" in tags and "table" in tags and "button" in tags
    table = next(e for e in _elements(built) if e["tag"] == "table")
    assert table["rows"][1] == {"c0": "王芳", "c1": "¥6,000"}
    button = next(e for e in _elements(built) if e["tag"] == "button")
    assert button["behaviors"] == [
        {"type": "callback", "value": {"action": "ask", "value": "本月排名"}}
    ]
    notes = [e for e in _elements(built) if e.get("text_size") == "notation"]
    assert notes and "暂定" in notes[-1]["content"]
    progress = next(e for e in _elements(built) if "80%" in e.get("content", ""))
    assert "▓" * 16 + "░" * 4 in progress["content"]


def test_sends_are_idempotent_by_their_outbox_key(fake: FakeFeishu) -> None:
    adapter = adapter_for(fake)
    target = Target("feishu", TENANT, GROUP)
    first = adapter.send(Reply("早报", "zh"), target, key="digest:sz-live:2026-11-20")
    again = adapter.send(Reply("早报", "zh"), target, key="digest:sz-live:2026-11-20")
    assert first.message_id == again.message_id and len(fake.messages) == 1
    assert fake.messages[0].uuid == send_uuid("digest:sz-live:2026-11-20")
    assert fake.repeated_uuids == 1
    adapter.send(Reply("早报", "zh"), target, key="digest:sz-live:2026-11-21")
    assert len(fake.messages) == 2


def test_direct_threaded_and_updated_messages(fake: FakeFeishu) -> None:
    adapter = adapter_for(fake)
    dm = adapter.send(Reply("你好", "zh"), Target.direct("feishu", TENANT, "ou_lina"), key="k1")
    assert (
        fake.messages[-1].receive_id_type == "open_id" and fake.messages[-1].receive_id == "ou_lina"
    )
    root = adapter.send(
        Reply("申诉 #7", "zh", headline="申诉"), Target("feishu", TENANT, GROUP), key="k2"
    )
    adapter.send(
        Reply("审核人已收到", "zh"),
        Target("feishu", TENANT, GROUP, thread=root.message_id),
        key="k3",
    )
    assert fake.messages[-1].reply_to == root.message_id
    updated = adapter.update(root, Reply("已确认 by 张三 10:42", "zh", headline="申诉"))
    assert updated.message_id == root.message_id
    assert fake.patches and fake.patches[-1][0] == root.message_id
    assert "已确认" in json.dumps(fake.patches[-1][1], ensure_ascii=False)
    with pytest.raises(TargetNotFound):
        adapter.update(Sent("feishu", GROUP, "om_unknown"), Reply("x", "zh", headline="x"))
    assert dm.channel.startswith("oc_")


def test_a_chart_is_uploaded_and_shown_in_the_card(fake: FakeFeishu) -> None:
    adapter = adapter_for(fake)
    reply = Reply("日报", "zh", headline="日报", chart=Chart("本月GMV", PNG, "每日GMV与目标线"))
    adapter.send(reply, Target("feishu", TENANT, GROUP), key="chart-1")
    assert len(fake.images) == 1
    image = next(e for e in _elements(fake.messages[0].content) if e["tag"] == "img")
    assert image["img_key"] == "img_v3_0001" and image["alt"]["content"] == "每日GMV与目标线"


def test_private_replies_fall_back_to_a_direct_message_where_ephemeral_cards_fail(
    fake: FakeFeishu,
) -> None:
    adapter = adapter_for(fake)
    fake.fail_next("ephemeral", 400, 230002, "Bot is not in the chat")
    target = Target("feishu", TENANT, GROUP, user="ou_lina", private=True)
    adapter.send(Reply("你的GMV", "zh", headline="进度"), target, key="p-1")
    assert fake.messages[-1].receive_id == "ou_lina" and fake.messages[-1].ephemeral_for is None


def test_errors_map_to_the_shared_hierarchy(fake: FakeFeishu) -> None:
    adapter = adapter_for(fake)
    target = Target("feishu", TENANT, GROUP)
    fake.fail_next(
        "send", 429, 99991400, "request trigger frequency limit", {"x-ogw-ratelimit-reset": "7"}
    )
    with pytest.raises(RateLimited) as limited:
        adapter.send(Reply("x", "zh"), target, key="e1")
    assert limited.value.retry_after == 7
    fake.fail_next("send", 400, 230002, "Bot is not in the chat")
    with pytest.raises(TargetNotFound):
        adapter.send(Reply("x", "zh"), target, key="e2")
    with pytest.raises(AuthRevoked):
        adapter_for(fake, app_secret="wrong").send(Reply("x", "zh"), target, key="e3")
    # A token Feishu no longer accepts is dropped and fetched again, once.
    fake.tokens.clear()
    adapter.send(Reply("x", "zh"), target, key="e4")
    assert fake.messages[-1].uuid == send_uuid("e4")


def test_the_morning_digest_reaches_the_group_as_a_card_with_its_chart(
    loaded: Engine, organisation: Organisation, fake: FakeFeishu
) -> None:
    adapter = adapter_for(fake)
    bot = bot_for(loaded, organisation, {"feishu": adapter}, fixed_clock(PINNED))
    outbox, sender = bot.outbox, bot.sender
    job = bot.scheduler.jobs["morning:sz-live"]
    nominal = job.firings(PINNED - 86400, PINNED)[-1]
    bot.scheduler.execute(job, nominal)
    sender.drain()
    [group] = [m for m in fake.messages if m.receive_id == GROUP]
    assert group.msg_type == "interactive" and len(fake.images) == 1
    elements = _elements(group.content)
    assert any(e["tag"] == "img" and e["img_key"] == "img_v3_0001" for e in elements)
    assert "header" in group.content and "早" in group.content["header"]["title"]["content"]
    # Each streamer with numbers also gets their own, privately, by open_id.
    personal = [m for m in fake.messages if m.receive_id_type == "open_id"]
    assert personal and open_id(organisation, "li.na") in {m.receive_id for m in personal}
    assert outbox.counts().get("sent") == len(fake.messages)


def _button_value(posted: Any, action: str) -> dict[str, Any]:
    for element in _elements(posted.content):
        if element.get("tag") == "button":
            value = element["behaviors"][0]["value"]
            if value["action"] == action:
                return dict(value)
    raise AssertionError(f"no {action} button")


def test_an_alert_card_is_acknowledged_with_its_button_and_updated_in_place(
    client: TestClient, loaded: Engine, organisation: Organisation, fake: FakeFeishu
) -> None:
    chat = client.app.state.chat  # type: ignore[attr-defined]
    lina = open_id(organisation, "li.na")
    rule = AlertRuleConfig(
        id="lina-gmv",
        scope="person:li.na",
        condition=AlertCondition(below=Decimal(10**9)),
    )
    chat.service("alerts").rules = {rule.id: rule}
    assert chat.service("alerts").run(int(chat.core.clock())).startswith("1 opened")
    chat.sender.wake()
    wait_for(lambda: len(fake.messages) == 2, "the alert cards")
    [mine] = [m for m in fake.messages if m.receive_id == lina]
    assert "李娜" in json.dumps(mine.content, ensure_ascii=False)
    click = card_action(lina, _button_value(mine, "alert.ack"), mine.message_id, event_id="ack-1")
    body = encrypt(click)
    assert client.post("/feishu/card", content=body, headers=signed(body)).status_code == 200
    wait_for(lambda: len(fake.patches) == 2, "both cards updated")
    assert all("已确认 by 李娜" in json.dumps(c, ensure_ascii=False) for _, c in fake.patches)
    assert {m for m, _ in fake.patches} == {m.message_id for m in fake.messages[:2]}


def test_an_appeal_opens_a_thread_with_the_reviewer_mentioned(
    client: TestClient, loaded: Engine, organisation: Organisation, fake: FakeFeishu
) -> None:
    lina, wang = open_id(organisation, "li.na"), open_id(organisation, "wang.fang")
    body = encrypt(message_event(lina, "申诉 昨天GMV 应该是12000 订单 5791234"))
    assert client.post("/feishu/events", content=body, headers=signed(body)).status_code == 200
    wait_for(
        lambda: any(m.receive_id == GROUP and not m.ephemeral_for for m in fake.messages),
        "the appeal card",
    )
    [root] = [m for m in fake.messages if m.receive_id == GROUP and not m.ephemeral_for]
    assert f"<at id={wang}></at>" in json.dumps(root.content, ensure_ascii=False)
    accept = card_action(
        wang, _button_value(root, "appeal.accept"), root.message_id, event_id="acc-1"
    )
    body = encrypt(accept)
    assert client.post("/feishu/card", content=body, headers=signed(body)).status_code == 200
    wait_for(lambda: any(m.reply_to == root.message_id for m in fake.messages), "the thread reply")
    [reply] = [m for m in fake.messages if m.reply_to == root.message_id]
    assert "已接受" in json.dumps(reply.content, ensure_ascii=False)


def test_a_click_in_a_direct_chat_is_answered_there_without_an_only_visible_card(
    client: TestClient, loaded: Engine, organisation: Organisation, fake: FakeFeishu
) -> None:
    lina = open_id(organisation, "li.na")
    direct = f"oc_p2p_{lina}"
    body = encrypt(
        message_event(lina, "今天GMV多少", chat=direct, chat_type="p2p", mention_bot=False)
    )
    assert client.post("/feishu/events", content=body, headers=signed(body)).status_code == 200
    wait_for(lambda: len(fake.messages) == 1, "the answer")
    [answer] = fake.messages
    assert answer.chat_id == direct
    # Its buttons say they are in a direct chat, so a click is answered there up front.
    value = _button_value(answer, "ask")
    assert value["direct"] is True
    click = card_action(lina, value, answer.message_id, event_id="p2p-click-1", chat=direct)
    body = encrypt(click)
    assert client.post("/feishu/card", content=body, headers=signed(body)).status_code == 200
    wait_for(lambda: len(fake.messages) == 2, "the answer to the click")
    assert fake.messages[1].chat_id == direct and fake.messages[1].ephemeral_for is None
    assert fake.ephemeral_in_direct_chats == 0


def test_oversized_and_odd_timestamped_requests_are_refused_with_one_log_line(
    client: TestClient, loaded: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    body = encrypt(message_event("ou_x", "今天GMV多少"))
    cases = [
        (body, {**signed(body), "X-Lark-Request-Timestamp": "nan"}, 401),
        (body, {**signed(body), "X-Lark-Request-Timestamp": "9" * 400}, 401),
        (b"x" * (1024 * 1024 + 1), signed(b"x"), 413),
    ]
    for content, headers, status in cases:
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            answer = client.post("/feishu/events", content=content, headers=headers)
        assert answer.status_code == status
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and warnings[0].exc_info is None, warnings
    assert deliveries(loaded) == 0
