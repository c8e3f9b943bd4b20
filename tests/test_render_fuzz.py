"""Renderer fuzzing: thousands of generated replies — any Unicode (lone surrogates, emoji,
right-to-left text and overrides, control characters), texts up to 200,000 characters,
markup from all three platforms in every part, absurd numbers — through every platform's
renderer, asserting that none raises, every payload is within its platform's documented
limits, and no member's text comes out as live markup."""

from __future__ import annotations

import random
import time
from decimal import Decimal

from bot.chat.messages import (
    Button,
    Chart,
    KeyValue,
    Mention,
    ProgressBar,
    Reply,
    Table,
)
from tests.platform_limits import check_everywhere, dingtalk_adapters

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


def test_five_thousand_generated_replies_render_within_limits_and_without_live_markup() -> None:
    generator = Generator(SEED)
    adapters = dingtalk_adapters()
    started = time.process_time()
    biggest = 0
    for n in range(COUNT):
        reply = generator.reply()
        biggest = max(biggest, len(reply.text), *(len(f.value) for f in reply.fields))
        check_everywhere(reply, adapters, models=n % 25 == 0)
    assert biggest > 100_000  # the generator did reach the big sizes
    # CPU time of this process: the machine's other work does not count against it.
    assert time.process_time() - started < 60
