"""Every kind of reply (progress, ranking, why, compare, breakdown, score, help, notes, alerts,
appeals and the three digests), produced by the real bot on the demo data, rendered for each
platform: checked against the platforms' own request models (slack_sdk's Block Kit models,
the official DingTalk SDK's) and for what each platform needs to show it well — DingTalk
without markdown tables or double-spaced lines, mentions where each platform reads them,
Feishu fields at most two to a row, Slack's text escaped, and a member's markup shown as
typed."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from alibabacloud_dingtalk.card_1_0 import models as card_models
from alibabacloud_dingtalk.oauth2_1_0 import models as oauth_models
from alibabacloud_dingtalk.robot_1_0 import models as robot_models
from slack_sdk.models.blocks import Block

from adapters.dingtalk.outbound import DingTalkAdapter
from adapters.feishu.cards import content
from adapters.feishu.cards import escape as feishu_escape
from adapters.slack.render import render_message
from bot.chat.messages import Reply, Target
from kpi_engine.db import make_engine, upgrade
from kpi_engine.organisation import Organisation
from tests.fakedingtalk import CORP, FakeDingTalk
from tests.replykinds import END, HOSTILE_NOTE, KINDS, collect, for_platform, write, write_html
from tests.workspaces import load_demo

GROUP = "cidSzLive0uT7mH2k9Qw=="
# What the hostile note would look like had it stayed live markup, per platform.
SLACK_LIVE = ("<!channel>", "<https://evil", "<at id=all>")
MARKDOWN_LIVE = ("<!channel>", "<https://evil", "[点这里](https://evil", "<at id=all>")


@pytest.fixture(scope="module")
def kinds(
    tmp_path_factory: pytest.TempPathFactory, organisation: Organisation
) -> dict[str, list[Reply]]:
    """The replies, collected once on a SQLite database of this module's own."""
    folder = tmp_path_factory.mktemp("kinds")
    url = f"sqlite:///{folder}/kinds.db"
    upgrade(url)
    engine = make_engine(url)
    load_demo(engine, organisation, folder, days=10, end=END, seed=21)
    try:
        return collect(engine, organisation)
    finally:
        engine.dispose()


def every(kinds: dict[str, list[Reply]]) -> Iterator[tuple[str, Reply]]:
    for kind in KINDS:
        for reply in kinds[kind]:
            yield kind, reply


def test_every_kind_was_produced_with_its_parts(kinds: dict[str, list[Reply]]) -> None:
    assert all(kinds[kind] for kind in KINDS)
    assert any(r.table for r in kinds["ranking"]) and any(r.table for r in kinds["notes"])
    assert any(r.mentions for r in kinds["appeals"]) and any(r.buttons for r in kinds["alerts"])
    assert any(r.fields for r in kinds["morning"]) and any(r.progress for r in kinds["progress"])
    assert any("evil.example" in json.dumps(r.table.rows) for r in kinds["notes"] if r.table)


# -- Slack --------------------------------------------------------------------------------------


def test_slack_blocks_pass_slack_sdks_models_and_the_text_is_escaped(
    kinds: dict[str, list[Reply]], organisation: Organisation
) -> None:
    for kind, reply in every(kinds):
        reply = for_platform(reply, organisation, "slack")
        payload = render_message(reply)
        for block in payload["blocks"]:
            model = Block.parse(block)
            assert model is not None, (kind, block)
            model.validate_json()  # Slack's limits, as the SDK knows them
            assert model.to_dict() == block, (kind, block)  # nothing the SDK does not know
        mentions = [f"<@{m.user}>" for m in reply.mentions]
        text = payload["text"]
        assert all(m in text for m in mentions), kind
        bare = re.sub(r"<@U[A-Z0-9]+>", "", text)
        assert "<" not in bare and ">" not in bare, (kind, text)
        assert all(m in json.dumps(payload["blocks"]) for m in mentions), kind
        assert not any(h in json.dumps(payload, ensure_ascii=False) for h in SLACK_LIVE), kind


# -- Feishu -------------------------------------------------------------------------------------


def _elements(card: dict[str, Any]) -> Iterator[dict[str, Any]]:
    def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in items:
            yield item
            for column in item.get("columns", ()):
                yield from walk(column.get("elements", []))

    yield from walk(card["body"]["elements"])


def test_feishu_fields_go_at_most_two_to_a_row_and_mentions_are_at_tags(
    kinds: dict[str, list[Reply]], organisation: Organisation
) -> None:
    for kind, reply in every(kinds):
        reply = for_platform(reply, organisation, "feishu")
        msg_type, body = content(reply)
        assert len(body.encode("utf-8")) <= 30 * 1024, kind
        if msg_type == "text":
            continue
        card = json.loads(body)
        markdown = [e["content"] for e in _elements(card) if e["tag"] == "markdown"]
        assert not any(h in m for h in MARKDOWN_LIVE for m in markdown), kind
        assert card["schema"] == "2.0"
        for element in _elements(card):
            if element["tag"] == "column_set" and element.get("flex_mode") != "flow":
                assert len(element["columns"]) <= 2, kind
                assert element["flex_mode"] == "none"  # side by side on desktop and phone
        contents = " ".join(e.get("content", "") for e in _elements(card))
        for mention in reply.mentions:
            assert f"<at id={mention.user}></at>" in contents, kind
        # Every field is there, its label in bold.
        assert all(f"**{feishu_escape(f.label)}**" in contents for f in reply.fields), kind


# -- DingTalk -----------------------------------------------------------------------------------


MODELS: dict[str, Callable[[], Any]] = {
    "/v1.0/oauth2/accessToken": oauth_models.GetAccessTokenRequest,
    "/v1.0/robot/groupMessages/send": robot_models.OrgGroupSendRequest,
    "/v1.0/robot/oToMessages/batchSend": robot_models.BatchSendOTORequest,
    "/v1.0/card/instances/createAndDeliver": card_models.CreateAndDeliverRequest,
    "/v1.0/card/instances": card_models.UpdateCardRequest,
}


def assert_official(path: str, body: dict[str, Any]) -> None:
    """`body` is a request the official SDK's model for `path` can express, field for field."""
    model = MODELS[path]().from_map(body)
    model.validate()
    # The models write an empty map for a map field that was not given (privateData).
    produced = {k: v for k, v in model.to_map().items() if k in body or v not in ({}, [])}
    assert produced == body, path


def markdown_texts(fake: FakeDingTalk) -> list[str]:
    found = []
    for path, body in fake.requests:
        if path == "/robot/send":
            found.append(body["markdown"]["text"])
        elif path.endswith(("/send", "batchSend")):
            params = json.loads(body["msgParam"])
            found.append(params.get("text", ""))
        elif path.endswith("createAndDeliver") or path == "/v1.0/card/instances":
            found.append(body["cardData"]["cardParamMap"]["markdown"])
    return [t for t in found if t]


def test_dingtalk_requests_pass_the_official_sdks_models_without_tables_and_with_mentions(
    kinds: dict[str, list[Reply]], organisation: Organisation
) -> None:
    with FakeDingTalk() as fake:
        with_cards = DingTalkAdapter(
            "dingappkey", "s", "dingrobot", api=fake.url, oapi=fake.url, card_template="tpl"
        )
        plain = DingTalkAdapter("dingappkey", "s", "dingrobot", api=fake.url, oapi=fake.url)
        robot = f"{fake.url}/robot/send?access_token=robot-1"
        for n, (kind, reply) in enumerate(every(kinds)):
            reply = for_platform(reply, organisation, "dingtalk")
            reply = reply if reply.chart is None else Reply(**{**reply.__dict__, "chart": None})
            for adapter in (with_cards, plain):
                group = adapter.send(reply, Target("dingtalk", CORP, GROUP), key=f"{kind}{n}g")
                adapter.send(reply, Target.direct("dingtalk", CORP, "lina1024"), key=f"{kind}{n}d")
                if group.message_id.startswith("card:"):
                    adapter.update(group, reply)
            plain.send(reply, Target("dingtalk", "", robot))
        assert {path for path, _ in fake.requests} >= set(MODELS) | {"/robot/send"}
        for path, body in fake.requests:
            if path in MODELS:
                assert_official(path, body)
        texts = markdown_texts(fake)
        assert len(texts) > 4 * len(list(every(kinds)))
        for text in texts:
            # No markdown tables (DingTalk shows their pipes), no line per paragraph.
            assert not re.search(r"^\s*\|.*\|\s*$", text, re.MULTILINE), text
            assert "|---" not in text and "| --- |" not in text
            assert text.count("\n\n") <= 4, text  # between the parts only
            assert not any(h in text for h in MARKDOWN_LIVE), text
        # The appeal's reviewer, in the fields DingTalk reads, and by name.
        reviewer = organisation.people["wang.fang"]
        cards = [b for p, b in fake.requests if p.endswith("createAndDeliver")]
        mentioning = [b for b in cards if "imGroupOpenDeliverModel" in b and "atUserIds" in
                      b["imGroupOpenDeliverModel"]]  # fmt: skip
        assert mentioning and all(
            b["imGroupOpenDeliverModel"]["atUserIds"] == {reviewer.chat.dingtalk: reviewer.name}
            and b["cardAtUserIds"] == [reviewer.chat.dingtalk]
            and f"@{reviewer.name}" in b["cardData"]["cardParamMap"]["markdown"]
            for b in mentioning
        )
        posts = [b for p, b in fake.requests if p == "/robot/send" and b["at"]]
        assert posts and all(
            b["at"] == {"atUserIds": [reviewer.chat.dingtalk]}
            and f"@{reviewer.chat.dingtalk} {reviewer.name}" in b["markdown"]["text"]
            for b in posts
        )
        # One-to-one cards: the robot space model the official SDK sends.
        direct = [b for b in cards if b["openSpaceId"].startswith("dtv1.card//IM_ROBOT.")]
        assert direct and all(
            b["imRobotOpenDeliverModel"]["spaceType"] == "IM_ROBOT"
            and b["imRobotOpenSpaceModel"] == {"supportForward": True}
            for b in direct
        )


def test_dingtalk_shows_a_table_as_lines_and_a_members_markup_as_typed(
    kinds: dict[str, list[Reply]],
) -> None:
    [notes] = [r for r in kinds["notes"] if r.table]
    adapter = DingTalkAdapter("k", "s", "r", api="http://127.0.0.1:9", oapi="http://127.0.0.1:9")
    rendered = adapter.render(notes, Target("dingtalk", CORP, GROUP))
    assert isinstance(rendered, dict)
    text = rendered["msgParam"]["text"]
    [row] = [line for line in text.split("\n") if "evil" in line]
    assert row.startswith("- 2026-11-12 · ＜!channel＞ 奖金名单 ＜https://evil.example/login")
    assert "［点这里］(https://evil.example/x)" in row and "＊＊粗体＊＊" in row
    assert HOSTILE_NOTE.endswith("# 标题")


def test_a_link_sent_on_dingtalk_stays_the_same_address() -> None:
    # A dashboard link's token is base64url: `-_` and a trailing `_` happen (about one link in
    # ten). Twinned to `＿` the link led nowhere; percent-encoded it is the same address.
    link = "http://127.0.0.1:8000/dashboard/login/v1.eyJwIjoiemhhbmcud2VpIn0-_x_y.Ab_-Cd_"
    wild = "https://shop.example/a**b**/~~c~~?q=_d_"
    adapter = DingTalkAdapter("k", "s", "r", api="http://127.0.0.1:9", oapi="http://127.0.0.1:9")
    reply = Reply(f"你的数据看板：{link}，仅限一次。又见 {wild} 与 _斜体_", "zh", private=True)
    rendered = adapter.render(reply, Target.direct("dingtalk", CORP, "lina1024"))
    assert isinstance(rendered, dict)
    text = rendered["msgParam"]["text"]
    found = re.findall(r"https?://[!-~]+", text)
    assert [unquote(u) for u in found] == [link, wild]
    # Nothing left in them that DingTalk's markdown reads as emphasis or strike-through.
    assert not any(re.search(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])|[*~]", u) for u in found)
    assert "＿斜体＿" in text  # outside a URL, a member's markup is still shown as typed


def test_the_snapshots_in_docs_can_be_written(
    kinds: dict[str, list[Reply]], organisation: Organisation, tmp_path: Path
) -> None:
    write(tmp_path, kinds, organisation)
    for name in ("slack", "feishu", "dingtalk", "console"):
        page = (tmp_path / f"{name}.md").read_text(encoding="utf-8")
        assert all(f"## {kind} 1" in page for kind in KINDS), name
    pages = write_html(tmp_path, kinds, organisation)
    assert [p.stem for p in pages] == list(KINDS)
    notes = (tmp_path / "notes.html").read_text(encoding="utf-8")
    assert "&lt;!channel&gt;" in notes and "<a " not in notes  # shown, not obeyed
