"""Replies as Block Kit: a header, the text or the structured parts (fields, progress bars as
text bars, the table as preformatted text), buttons and a context line — within Slack's limits.

Limits respected (Block Kit reference): 50 blocks a message, a header's 150 characters, a
section's 3,000 characters of text and 10 fields of 2,000, a button's 75-character label,
2,000-character value and 255-character action id, and 40,000 characters of message text.
Long text and tables are split over several sections; a message that would still need more
than 50 blocks is cut at 49 with a line saying so (its `text` stays complete).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from bot.chat.messages import Button, Reply, Table

Block = dict[str, Any]

MAX_BLOCKS = 50
MAX_TEXT = 40_000
MAX_HEADER = 150
MAX_SECTION = 3_000
MAX_FIELDS = 10
MAX_FIELD = 2_000
MAX_CONTEXT = 2_000
MAX_BUTTONS = 25  # elements of one actions block
MAX_BUTTON_LABEL = 75
MAX_BUTTON_VALUE = 2_000
MAX_ACTION_ID = 255
BAR_CELLS = 20
# A Block Kit action id must be unique within its block, but several of our buttons may share
# an action (three "ask" buttons): the second and later get "~2", "~3"…, which `action_of`
# takes off again when the click comes back.
ACTION_SUFFIX = "~"

# Slack's own markup in text we send: mentions, channel links, special mentions and links.
_SLACK_TOKEN = re.compile(r"<(?:[@#!][^<>\s]*|(?:https?|mailto):[^<>\s]*)>")


def escape(text: str) -> str:
    """Text for mrkdwn: &, < and > escaped, Slack's own <@U…>/<#C…>/<!here>/<url|…> kept."""
    out: list[str] = []
    last = 0
    for match in _SLACK_TOKEN.finditer(text):
        out.append(_escape_plain(text[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_escape_plain(text[last:]))
    return "".join(out)


def _escape_plain(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def width(text: str) -> int:
    """Columns the text takes in a monospace font (Chinese characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def table_lines(table: Table) -> list[str]:
    """The table as aligned monospace lines: header, rule, rows."""
    rows = [table.columns, *table.rows]
    count = len(table.columns)
    widths = [max(width(row[i]) if i < len(row) else 0 for row in rows) for i in range(count)]

    def line(row: tuple[str, ...]) -> str:
        cells = [row[i] if i < len(row) else "" for i in range(count)]
        return "  ".join(c + " " * (widths[i] - width(c)) for i, c in enumerate(cells)).rstrip()

    return [line(table.columns), "  ".join("─" * w for w in widths), *map(line, table.rows)]


def bar(ratio: float) -> str:
    """A text progress bar of `BAR_CELLS` cells, full at 100 % (and beyond)."""
    filled = max(0, min(BAR_CELLS, round(ratio * BAR_CELLS)))
    return "█" * filled + "░" * (BAR_CELLS - filled)


def action_of(action_id: str) -> str:
    """The button's action (`Button.action`) from a Block Kit action id."""
    base, sep, number = action_id.rpartition(ACTION_SUFFIX)
    return base if sep and base and number.isdigit() else action_id


def _chunks(lines: list[str], limit: int) -> Iterator[list[str]]:
    """Consecutive lines grouped so each group's joined length stays within `limit`."""
    group: list[str] = []
    size = 0
    for line in lines:
        line = truncate(line, limit)
        if group and size + len(line) + 1 > limit:
            yield group
            group, size = [], 0
        group.append(line)
        size += len(line) + 1
    if group:
        yield group


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": truncate(text, MAX_CONTEXT)}],
    }


def _text_sections(text: str) -> list[Block]:
    if not text.strip():
        return []  # Slack refuses an empty section
    return [_section("\n".join(group)) for group in _chunks(escape(text).split("\n"), MAX_SECTION)]


def _table_sections(table: Table) -> list[Block]:
    fence = 8  # the ``` before and after, and their newlines
    lines = table_lines(table)
    head, body = lines[:2], lines[2:] or [""]
    room = MAX_SECTION - fence - sum(len(h) + 1 for h in head)
    return [
        _section("```\n" + "\n".join(head + group) + "\n```")
        for group in _chunks([_escape_plain(line) for line in body], max(200, room))
    ]


def _buttons(buttons: tuple[Button, ...]) -> list[Block]:
    blocks: list[Block] = []
    for start in range(0, len(buttons), MAX_BUTTONS):
        seen: dict[str, int] = {}
        elements = []
        for button in buttons[start : start + MAX_BUTTONS]:
            seen[button.action] = seen.get(button.action, 0) + 1
            n = seen[button.action]
            action_id = button.action if n == 1 else f"{button.action}{ACTION_SUFFIX}{n}"
            element: dict[str, Any] = {
                "type": "button",
                "text": {
                    "type": "plain_text",
                    "text": truncate(button.label, MAX_BUTTON_LABEL),
                    "emoji": True,
                },
                "action_id": action_id[:MAX_ACTION_ID],
            }
            if button.value:  # Slack refuses an empty value
                element["value"] = button.value[:MAX_BUTTON_VALUE]
            if button.style != "default":  # Slack knows only primary and danger
                element["style"] = button.style
            elements.append(element)
        blocks.append({"type": "actions", "elements": elements})
    return blocks


def render_blocks(reply: Reply, *, chart_attached: bool = False) -> list[Block]:
    """The Block Kit blocks of `reply`.

    As on every surface, the structured parts (fields, progress, table) replace the plain text
    where present. A chart is uploaded as a file beside the message when `chart_attached`;
    otherwise (an ephemeral message, an edit) its text alternative becomes a context line.
    """
    zh = reply.language == "zh"
    blocks: list[Block] = []
    if reply.mentions:
        blocks.append(_section(" ".join(f"<@{user}>" for user in reply.mentions)))
    if reply.headline:
        blocks.append(
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": truncate(reply.headline, MAX_HEADER),
                    "emoji": True,
                },
            }
        )
    structured = reply.fields or reply.table or reply.progress
    if not structured:
        blocks += _text_sections(reply.text)
    for start in range(0, len(reply.fields), MAX_FIELDS):
        fields = reply.fields[start : start + MAX_FIELDS]
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": truncate(f"*{escape(f.label)}*\n{escape(f.value)}", MAX_FIELD),
                    }
                    for f in fields
                ],
            }
        )
    bars = [
        f"*{escape(p.label)}*\n`{bar(float(p.ratio))}` {p.ratio * 100:.0f}%  {escape(p.caption)}"
        for p in reply.progress
    ]
    blocks += [_section("\n".join(group)) for group in _chunks(bars, MAX_SECTION)]
    if reply.table is not None:
        blocks += _table_sections(reply.table)
    if reply.chart is not None and not chart_attached:
        blocks.append(_context(f"📈 {escape(reply.chart.title)}: {escape(reply.chart.alt)}"))
    blocks += _buttons(reply.buttons)
    if reply.context:
        blocks.append(_context(escape(reply.context)))
    if len(blocks) > MAX_BLOCKS:
        left = len(blocks) - (MAX_BLOCKS - 1)
        note = f"…（另有 {left} 段未显示）" if zh else f"… ({left} more parts not shown)"
        blocks = [*blocks[: MAX_BLOCKS - 1], _context(note)]
    return blocks


def render_message(reply: Reply, *, chart_attached: bool = False) -> dict[str, Any]:
    """The `text` (the complete fallback, for notifications) and `blocks` of a message."""
    mentions = "".join(f"<@{user}> " for user in reply.mentions)
    return {
        "text": truncate(mentions + reply.text, MAX_TEXT),
        "blocks": render_blocks(reply, chart_attached=chart_attached),
    }
