"""Renderer fuzzing: thousands of generated replies — any Unicode (lone surrogates, emoji,
right-to-left text and overrides, control characters), texts up to 200,000 characters,
markup from all three platforms in every part, absurd numbers — through every platform's
renderer, asserting that none raises, every payload is within its platform's documented
limits, and no member's text comes out as live markup."""

from __future__ import annotations

import json
import random
import re
import time
from decimal import Decimal
from typing import Any

from slack_sdk.models.blocks import Block

from adapters.console.render import render_text as console_text
from adapters.dingtalk.outbound import DingTalkAdapter
from adapters.dingtalk.outbound import markdown as dingtalk_markdown
from adapters.feishu.cards import content as feishu_content
from adapters.slack.render import render_message
from bot.chat.messages import (
    Button,
    Chart,
    KeyValue,
    Mention,
    ProgressBar,
    Reply,
    Table,
    Target,
)

COUNT = 5_000
SEED = 20261201
INJECTIONS = (
    # Slack
    "<!channel>",
    "<!here|here>",
    "<@U0ADMIN01>",
    "<#C0GENERAL|general>",
    "<https://evil.example/login|点这里查看奖金>",
    "<mailto:a@evil.example|mail>",
    "<!date^1392734382^{date}|x>",
    "&lt;!channel&gt;",
    "@channel @here @everyone",
    # Feishu
    "<at id=all></at>",
    '<at user_id="all">所有人</at>',
    "<a href='https://evil.example'>x</a>",
    "<link url='https://evil.example'>y</link>",
    "<font color=red>red</font>",
    "<person id='ou_x'></person>",
    "<text_tag color='red'>tag</text_tag>",
    ":DONE: :OK:",
    "&#60;at id=all&#62;",
    # Markdown (Feishu and DingTalk)
    "[点这里](https://evil.example/x)",
    "![img](https://evil.example/x.png)",
    "[a]: https://evil.example",
    "**bold** __b__ *i* _i_ ~~s~~ `code` ```block```",
    "# heading",
    "> quote",
    "- item",
    "1. item",
    "---",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "\\*escaped\\*",
    "[x](dingtalk://dingtalkclient/page/link?url=https%3A%2F%2Fevil.example)",
    "https://seller.example/?a=1&b=2_x",
)
UNICODE = (
    "成交额",
    "李娜（你）",
    "😀",
    "👩\u200d👩\u200d👧",
    "مرحبا بالعالم",
    "שלום",
    "\u202eevil.exe\u202c",
    "\u2066rtl\u2069",
    "e\u0301",
    "\u200b",
    "\ufeff",
    "\ud800",
    "\udfff",
    "\x00",
    "\x07",
    "\r\n",
    "\n",
    "\t",
    "𠀀𪚥",
    "ﾃｽﾄ",
)
RATIOS = (
    Decimal("0"),
    Decimal("0.5"),
    Decimal("1"),
    Decimal("1.7"),
    Decimal("-3"),
    Decimal("1e30"),
    Decimal("-1e30"),
    Decimal("1E+400"),
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
    Decimal("-0"),
    Decimal("0.99999999999999999999999"),
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


class Generator:
    """Seeded replies: the same run every time."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def text(self, big: bool = False) -> str:
        r = self.random
        pieces = []
        for _ in range(r.choice((1, 1, 2, 3, 6))):
            kind = r.random()
            if kind < 0.35:
                pieces.append(r.choice(INJECTIONS))
            elif kind < 0.6:
                pieces.append(r.choice(UNICODE))
            elif kind < 0.65:
                pieces.append(str(r.choice((10**40, -(10**30), 1.5e308, 0.1, 12000))))
            else:
                pieces.append("".join(map(chr, r.choices(range(32, 0x2FFF), k=r.randint(1, 12)))))
        text = (" " if r.random() < 0.5 else "").join(pieces)
        if big:  # up to 200,000 characters, markup and all
            size = r.randint(1_000, 200_000)
            text = (text + "\n" + self.text()) * (size // (len(text) + 1) + 1)
            text = text[:size]
        return text

    def reply(self) -> Reply:
        r = self.random
        big = r.random() < 0.01  # about 50 replies of up to 200,000 characters

        def small() -> str:
            return self.text(big=False)

        def some(limit: int) -> int:
            return r.choice((0, 0, 1, 2, 3, r.randint(0, limit)))

        columns = tuple(small() for _ in range(some(8)))
        rows = tuple(
            tuple(self.text(big and r.random() < 0.05) for _ in range(len(columns) + r.choice((0, 0, -1, 1))))
            for _ in range(r.choice((some(60), some(60), some(400))))
        )  # fmt: skip
        return Reply(
            self.text(big),
            r.choice(("zh", "en")),
            headline=small() if r.random() < 0.6 else None,
            fields=tuple(KeyValue(small(), self.text(big and r.random() < 0.3)) for _ in range(some(70))),
            table=Table(columns, rows) if columns or r.random() < 0.1 else None,
            progress=tuple(ProgressBar(small(), r.choice(RATIOS), small()) for _ in range(some(8))),
            chart=Chart(small(), PNG, small()) if r.random() < 0.1 else None,
            buttons=tuple(
                Button(small(), r.choice(("ask", "alert.ack", "appeal.accept", small() or "x")),
                       small(), r.choice(("default", "primary", "danger")))
                for _ in range(some(40))
            ),
            context=small() if r.random() < 0.5 else None,
            mentions=tuple(
                Mention(r.choice(("U07WANGFANG", "ou_1a2b3c", "wangfang0412", small())), small())
                for _ in range(some(4))
            ),
        )  # fmt: skip


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


def test_five_thousand_generated_replies_render_within_limits_and_without_live_markup() -> None:
    generator = Generator(SEED)
    adapters = (
        DingTalkAdapter("k", "s", "r", api="http://127.0.0.1:9", oapi="http://127.0.0.1:9"),
        DingTalkAdapter(
            "k", "s", "r", api="http://127.0.0.1:9", oapi="http://127.0.0.1:9", card_template="t"
        ),
    )
    started = time.process_time()
    biggest = 0
    for n in range(COUNT):
        reply = generator.reply()
        biggest = max(biggest, len(reply.text), *(len(f.value) for f in reply.fields))
        check_slack(reply)
        if n % 25 == 0:
            check_slack_models(reply)
        check_feishu(reply)
        check_dingtalk(reply, adapters)
        console_text(reply)
    assert biggest > 100_000  # the generator did reach the big sizes
    # CPU time of this process: the machine's other work does not count against it.
    assert time.process_time() - started < 60
