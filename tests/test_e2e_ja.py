"""A Japanese team end to end on each platform: sz-live with `language: ja`, the real app
(`create_app`) against the local fake Slack, Feishu and DingTalk. A member asks in Japanese
through the platform's signed inbound path, clicks a button on the card he gets, and the team's
morning digest reaches its channel: all three in Japanese."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

import tests.test_dingtalk as dingtalk_tests
import tests.test_feishu as feishu_tests
import tests.test_slack as slack_tests
from adapters.dingtalk.inbound import BOT_TOPIC, CARD_TOPIC
from bot.app import create_app
from bot.chat.context import ASK
from kpi_engine.organisation import Organisation, load_organisation
from tests.fakedingtalk import CORP, FakeDingTalk
from tests.fakefeishu import FakeFeishu
from tests.fakeslack import BOT_USER, FakeSlack, event_body, signed_headers
from tests.pinned import PINNED, PINNED_DAY
from tests.test_chat_ja import NOT_JAPANESE
from tests.test_digest_ja import NOT_JAPANESE as NOT_JAPANESE_DIGEST
from tests.test_digest_ja import japanese_config
from tests.waiting import wait_for
from tests.workspaces import load_demo

ASKER = "zhang.wei"  # of sz-live, with no language of his own: he reads the team's
QUESTION = "今日の売上は？"
# The morning of the pinned Tuesday reports on Monday.
HEADLINE = "深圳直播组 · 朝会レポート（11月23日(月)実績）"
CHART, CHART_ALT = "深圳直播组 · 2026年11月 日別売上", "23日間の日別売上と日次目標"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return japanese_config(tmp_path)


@pytest.fixture
def japanese(config: Path) -> Organisation:
    organisation = load_organisation(config)
    assert organisation.teams["sz-live"].language == "ja"
    assert organisation.people[ASKER].language is None
    return organisation


@pytest.fixture
def loaded(engine: Engine, japanese: Organisation, tmp_path: Path) -> Engine:
    return load_demo(engine, japanese, tmp_path / "data", days=3, end=PINNED_DAY, seed=8)


def said(payload: Any) -> str:
    """Everything in a platform payload, for looking words up."""
    return json.dumps(payload, ensure_ascii=False)


def assert_japanese(text: str, words: tuple[str, ...] = NOT_JAPANESE) -> None:
    assert [word for word in words if word in text] == [], text


def assert_progress_card(text: str) -> None:
    """The answer to 今日の売上は？: Japanese labels, none of the Chinese or English ones."""
    for label in ("今日", "売上", "実績", "目標", "達成率"):
        assert label in text, label
    assert_japanese(text)


def assert_ranking(text: str) -> None:
    """The answer to the card's team-ranking button: the team's ranking, the asker marked."""
    assert "順位" in text and "张伟（あなた）" in text, text
    assert_japanese(text)


def morning_digest(client: TestClient) -> None:
    """Fire sz-live's last morning digest in the running app and let its sender deliver it."""
    chat = client.app.state.chat  # type: ignore[attr-defined]
    job = chat.scheduler.jobs["morning:sz-live"]
    chat.scheduler.execute(job, job.firings(PINNED - 86400, PINNED)[-1])
    chat.sender.wake()


def chat_id(organisation: Organisation, person: str, platform: str) -> str:
    found = getattr(organisation.people[person].chat, platform)
    assert found
    return str(found)


# -- Slack ------------------------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def test_slack_speaks_japanese_to_a_japanese_team(
    db_url: str, loaded: Engine, japanese: Organisation, config: Path, slack: FakeSlack
) -> None:
    settings = slack_tests.slack_settings(db_url, slack).model_copy(update={"config_dir": config})
    zhang = chat_id(japanese, ASKER, "slack")
    channel = japanese.teams["sz-live"].channels.slack
    assert channel == slack_tests.SZ_LIVE
    with TestClient(create_app(settings)) as client:

        def post(body: bytes, content_type: str) -> int:
            headers = signed_headers(slack_tests.SECRET, body, content_type)
            return int(client.post("/slack/events", content=body, headers=headers).status_code)

        mention = slack_tests.mention(f"<@{BOT_USER}> {QUESTION}", channel=channel, user=zhang)
        assert post(event_body(mention, slack_tests.next_event_id()), slack_tests.JSON) == 200
        [card] = slack.wait_for("chat.postEphemeral")
        assert card["user"] == zhang and card["channel"] == channel
        assert card["blocks"][0]["text"]["text"].startswith("张伟 · 今日")
        assert_progress_card(said(card["blocks"]) + card["text"])
        # The card's first button (the team's ranking), clicked.
        ask = slack_tests.button(card, ASK)
        assert ask["text"]["text"] == "チームランキング"
        click = slack_tests.click_payload(zhang, channel, "1731400000.000900", ASK, ask["value"])
        assert post(click, slack_tests.FORM) == 200
        [ranking] = slack.wait_for("chat.postEphemeral", count=2)[1:]
        assert ranking["user"] == zhang
        assert_ranking(said(ranking["blocks"]))
        assert_japanese(said(ranking["blocks"]) + ranking["text"])
        # sz-live's morning digest in its channel.
        morning_digest(client)
        slack.wait_until(
            lambda: any(p["channel"] == channel for p in slack.calls_to("chat.postMessage"))
        )
        [digest] = [p for p in slack.calls_to("chat.postMessage") if p["channel"] == channel]
        assert digest["blocks"][0]["text"]["text"] == HEADLINE
        assert "今月の進捗率" in said(digest["blocks"])
        assert_japanese(said(digest["blocks"]) + digest["text"], NOT_JAPANESE_DIGEST)
        # Its chart, titled and described in Japanese.
        [upload] = slack.wait_for("files.completeUploadExternal")
        [file] = json.loads(upload["files"])
        assert upload["channel_id"] == channel and file["title"] == CHART
        [url] = slack.calls_to("files.getUploadURLExternal")
        assert url["alt_txt"].startswith(CHART_ALT)


# -- Feishu -----------------------------------------------------------------------------------


@pytest.fixture
def feishu() -> Iterator[FakeFeishu]:
    with FakeFeishu() as server:
        yield server


def test_feishu_speaks_japanese_to_a_japanese_team(
    db_url: str, loaded: Engine, japanese: Organisation, config: Path, feishu: FakeFeishu
) -> None:
    settings = feishu_tests.settings_for(db_url, feishu, KPIBOT_CONFIG_DIR=config)
    zhang = chat_id(japanese, ASKER, "feishu")
    group = japanese.teams["sz-live"].channels.feishu
    assert group == feishu_tests.GROUP
    with TestClient(create_app(settings)) as client:

        def post(path: str, event: dict[str, Any]) -> int:
            body = feishu_tests.encrypt(event)
            answer = client.post(path, content=body, headers=feishu_tests.signed(body))
            return int(answer.status_code)

        assert post("/feishu/events", feishu_tests.message_event(zhang, QUESTION)) == 200
        wait_for(lambda: len(feishu.messages) == 1, "the answer")
        [card] = feishu.messages
        assert card.ephemeral_for == zhang and card.chat_id == group
        assert card.content["header"]["title"]["content"].startswith("张伟 · 今日")
        assert_progress_card(said(card.content))
        # The card's first button (the team's ranking), clicked.
        value = feishu_tests._button_value(card, "ask")
        click = feishu_tests.card_action(zhang, value, card.message_id, event_id=uuid.uuid4().hex)
        assert post("/feishu/card", click) == 200
        wait_for(lambda: len(feishu.messages) == 2, "the answer to the click")
        ranking = feishu.messages[1]
        assert ranking.ephemeral_for == zhang
        assert_ranking(said(ranking.content))
        # sz-live's morning digest in its group.
        morning_digest(client)

        def in_group() -> list[Any]:
            return [m for m in feishu.posted_to(group) if not m.ephemeral_for]

        wait_for(lambda: bool(in_group()), "the morning digest")
        [digest] = in_group()
        assert digest.content["header"]["title"]["content"] == HEADLINE
        assert "今月の進捗率" in said(digest.content)
        assert_japanese(said(digest.content), NOT_JAPANESE_DIGEST)
        [image] = [e for e in feishu_tests._elements(digest.content) if e["tag"] == "img"]
        assert len(feishu.images) == 1 and image["alt"]["content"].startswith(CHART_ALT)


# -- DingTalk ---------------------------------------------------------------------------------


@pytest.fixture
def dingtalk() -> Iterator[FakeDingTalk]:
    with FakeDingTalk() as server:
        yield server


def test_dingtalk_speaks_japanese_to_a_japanese_team(
    db_url: str, loaded: Engine, japanese: Organisation, config: Path, dingtalk: FakeDingTalk
) -> None:
    # Over Stream: card clicks reach the app only that way.
    dingtalk.start_stream()
    settings = dingtalk_tests.settings_for(
        db_url, dingtalk, DINGTALK_CONNECTION="stream", KPIBOT_CONFIG_DIR=config
    )
    zhang = chat_id(japanese, ASKER, "dingtalk")
    group = japanese.teams["sz-live"].channels.dingtalk
    assert group == dingtalk_tests.GROUP
    with TestClient(create_app(settings)) as client:
        assert dingtalk.ws_connected.wait(20), "the SDK did not connect"
        question = {**dingtalk_tests.robot_message(zhang, QUESTION), "senderNick": "张伟"}
        dingtalk.push(BOT_TOPIC, question)
        wait_for(lambda: len(dingtalk.messages) == 2, "the answer and the note")
        # The card in his one-to-one chat, and a note in the group that he was answered.
        [card] = dingtalk.to(zhang)
        [note] = dingtalk.to(group)
        assert card.kind == "card"
        assert_progress_card(said(card.params))
        assert "個別にお返事しました。" in note.params["text"]
        assert_japanese(said(note.params))
        # The card's first button (the team's ranking), clicked.
        track = next(t for t, c in dingtalk.cards.items() if zhang in c["openSpaceId"])
        buttons = json.loads(dingtalk.cards[track]["cardData"]["cardParamMap"]["buttons"])
        ask = next(b for b in buttons if b["action"] == "ask")
        content = {"cardPrivateData": {"params": {"action": "ask", "value": ask["value"]}}}
        click = {
            "extension": "{}",
            "corpId": CORP,
            "type": "actionCallback",
            "userId": zhang,
            "spaceType": "IM_ROBOT",
            "spaceId": zhang,
            "content": json.dumps(content, ensure_ascii=False),
            "outTrackId": track,
        }
        dingtalk.push(CARD_TOPIC, click, message_id=f"click-{uuid.uuid4().hex}")
        wait_for(lambda: len(dingtalk.to(zhang)) == 2, "the answer to the click")
        ranking = dingtalk.to(zhang)[1]
        assert_ranking(said(ranking.params))
        # sz-live's morning digest in its group, with its chart.
        morning_digest(client)
        wait_for(lambda: len(dingtalk.to(group)) == 3, "the morning digest and its chart")
        digest, chart = dingtalk.to(group)[1:]
        # A card (it has buttons), then its chart.
        assert [digest.kind, chart.msg_key] == ["card", "sampleImageMsg"]
        assert digest.params["title"] == HEADLINE
        assert "今月の進捗率" in digest.params["markdown"]
        assert_japanese(said(digest.params), NOT_JAPANESE_DIGEST)
