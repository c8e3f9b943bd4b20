"""The platforms' documented limits and what live markup looks like on each, as checks over
rendered replies: shared by the renderer fuzz (tests/test_render_fuzz.py) and the message fuzz
(tests/test_message_fuzz.py)."""

from __future__ import annotations

import json
import re
from typing import Any

from slack_sdk.models.blocks import Block

from adapters.console.render import render_text as console_text
from adapters.dingtalk.outbound import DingTalkAdapter
from adapters.dingtalk.outbound import markdown as dingtalk_markdown
from adapters.feishu.cards import content as feishu_content
from adapters.slack.render import render_message
from bot.chat.messages import Reply, Target


def dingtalk_adapters() -> tuple[DingTalkAdapter, DingTalkAdapter]:
    """DingTalk's two ways of showing a reply: markdown messages and an interactive card."""
    return (
        DingTalkAdapter("k", "s", "r", api="http://127.0.0.1:9", oapi="http://127.0.0.1:9"),
        DingTalkAdapter(
            "k", "s", "r", api="http://127.0.0.1:9", oapi="http://127.0.0.1:9", card_template="t"
        ),
    )


def utf8(value: Any) -> int:
    """Bytes of `value` as JSON in a request (raises if it cannot be sent as UTF-8)."""
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


# -- the platforms' limits and live markup ---------------------------------------------------------


def check_slack(reply: Reply) -> None:
    allowed = {f"<@{m.user}>" for m in reply.mentions if re.fullmatch(r"[A-Z0-9]+", m.user)}
    for attached in (False, True) if reply.chart else (False,):
        payload = render_message(reply, chart_attached=attached)
        utf8(payload)
        assert len(payload["text"]) <= 40_000
        blocks = payload["blocks"]
        assert len(blocks) <= 50
        texts = [payload["text"]]
        for block in blocks:
            kind = block["type"]
            if kind == "section":
                if "text" in block:
                    assert 0 < len(block["text"]["text"]) <= 3_000
                    texts.append(block["text"]["text"])
                for field in block.get("fields", ()):
                    assert 0 < len(field["text"]) <= 2_000
                    texts.append(field["text"])
                assert len(block.get("fields", ())) <= 10
            elif kind == "header":
                assert 0 < len(block["text"]["text"]) <= 150
            elif kind == "context":
                assert len(block["elements"]) <= 10
                for element in block["elements"]:
                    assert 0 < len(element["text"]) <= 2_000
                    texts.append(element["text"])
            elif kind == "actions":
                ids = [e["action_id"] for e in block["elements"]]
                assert len(ids) <= 25 and len(set(ids)) == len(ids)
                for element in block["elements"]:
                    assert 0 < len(element["text"]["text"]) <= 75
                    assert len(element["action_id"]) <= 255
                    assert len(element.get("value", "")) <= 2_000
            for part in (block.get("text"), *block.get("fields", ()), *block.get("elements", ())):
                if isinstance(part, dict) and part.get("type") == "mrkdwn":
                    assert part["verbatim"] is True  # no bare URL, #channel or @here parsed
        for text in texts:
            bare = text
            for token in allowed:
                bare = bare.replace(token, "")
            assert "<" not in bare and ">" not in bare, text[:200]
            assert not re.search(r"&(?!amp;|lt;|gt;)", bare), text[:200]


def check_slack_models(reply: Reply) -> None:
    for block in render_message(reply)["blocks"]:
        model = Block.parse(block)
        assert model is not None
        model.validate_json()


_FEISHU_OWN = re.compile(r"<at id=[\w-]+></at>")


def check_feishu(reply: Reply) -> None:
    msg_type, body = feishu_content(reply)
    size = len(body.encode("utf-8"))
    if msg_type == "text":
        assert size <= 150 * 1024
        assert not re.search(r"<[A-Za-z/!?]", json.loads(body)["text"])
        return
    assert size <= 30 * 1024
    card = json.loads(body)

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if item["tag"] == "markdown":
                text = _FEISHU_OWN.sub("", item["content"])
                assert not re.search(r"^\s*([-+]|\d+\.)\s", text, re.MULTILINE), text[:200]
                text = text.replace("**", "")
                assert not re.search(r"&(?!#\d+;)", text), text[:200]
                text = re.sub(r"&#\d+;", "", text)
                assert not re.search(r"[<>\[\]`*_~#|\\!]", text), text[:200]
            if item["tag"] == "column_set":
                for column in item["columns"]:
                    walk(column["elements"])

    walk(card["body"]["elements"])


def check_dingtalk(reply: Reply, adapters: tuple[DingTalkAdapter, DingTalkAdapter]) -> None:
    texts = []
    for adapter in adapters:
        for target in (Target("dingtalk", "", "cidGroup"),):
            rendered = adapter.render(reply, target)
            assert isinstance(rendered, dict)
            params = rendered.get("card") or rendered["msgParam"]
            assert utf8(params) <= 15_000 and len(params["title"]) <= 60
            texts.append(params["markdown"] if "markdown" in params else params["text"])
            assert texts[-1].strip()
    title, text = dingtalk_markdown(reply, at=True)
    assert utf8({"msgtype": "markdown", "markdown": {"title": title, "text": text}}) <= 15_000
    texts.append(text)
    for text in texts:
        bare = re.sub(r"^> ", "", text.replace("**", ""), flags=re.MULTILINE)  # ours: the context
        assert not re.search(r"[<>\[\]`*\\]|~~", bare), text[:200]
        headings = [line for line in text.split("\n") if line.lstrip().startswith("#")]
        assert len(headings) <= 1 and all(h.startswith("#### ") for h in headings), headings
        quotes = [line for line in text.split("\n") if line.lstrip().startswith(">")]
        assert len(quotes) <= 1


def check_everywhere(
    reply: Reply, adapters: tuple[DingTalkAdapter, DingTalkAdapter], *, models: bool = False
) -> None:
    """`reply` rendered for Slack (checked against slack_sdk's models too when `models`),
    Feishu, DingTalk and the console: within every limit, and no member's text live."""
    check_slack(reply)
    if models:
        check_slack_models(reply)
    check_feishu(reply)
    check_dingtalk(reply, adapters)
    console_text(reply)
