"""Replies as Block Kit: a header, the text or the structured parts (fields, progress bars as
text bars, the table as preformatted text), buttons and a context line — within Slack's limits.

Every string of a `Reply` is plain text (`bot.chat.messages`): `&`, `<` and `>` are escaped
everywhere, so no `<!channel>`, `<@U…>` or `<https://…|disguise>` from a member's note becomes
live; every mrkdwn object is `verbatim` (Slack turns no bare URL, `#channel` or `@here` into a
link or a mention); the only tokens a message carries are the `<@U…>` of its typed mentions.
Slack's mrkdwn has no way to escape `*`, `_`, `~` and backticks, so those may still style a
member's words: emphasis, never a link, mention or image.

Limits respected (Block Kit reference): 50 blocks a message, a header's 150 characters, a
section's 3,000 characters of text and 10 fields of 2,000, a context's 10 elements of 2,000,
a button's 75-character label, 2,000-character value and 255-character action id, 25 elements
an actions block, and 40,000 characters of message text. Long text and tables are split over
several sections (a line longer than a section is split too); a message that would still need
more than 50 blocks is cut at 49 with a line saying so (its `text` stays complete up to 40,000
characters, where it is cut with a marker).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from bot.chat.messages import Button, Reply, Table, displayable, width
from bot.i18n import texts

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
MAX_TABLE_ROWS = 2_000
MAX_CELL = 300
# A Block Kit action id must be unique within its block, but several of our buttons may share
# an action (three "ask" buttons): the second and later get "~2", "~3"…, which `action_of`
# takes off again when the click comes back.
ACTION_SUFFIX = "~"
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def escape(text: str) -> str:
    """Plain text for mrkdwn (and the message's `text`): `&`, `<` and `>` escaped, so none of
    it is read as a link, a mention or a special mention."""
    return displayable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut (never inside an escape)."""
    if len(text) <= limit:
        return text
    return _PARTIAL_ENTITY.sub("", text[: limit - 1]) + "…"


def table_lines(table: Table) -> list[str]:
    """The table as aligned monospace lines: header, rule, rows (at most `MAX_TABLE_ROWS`
    rows of cells of at most `MAX_CELL` characters: more would not fit in 50 blocks)."""
    cut = [tuple(truncate(cell, MAX_CELL) for cell in row) for row in table.rows[:MAX_TABLE_ROWS]]
    rows = [tuple(truncate(c, MAX_CELL) for c in table.columns), *cut]
    count = len(table.columns)
    widths = [max(width(row[i]) if i < len(row) else 0 for row in rows) for i in range(count)]

    def line(row: tuple[str, ...]) -> str:
        cells = [row[i] if i < len(row) else "" for i in range(count)]
        return "  ".join(c + " " * (widths[i] - width(c)) for i, c in enumerate(cells)).rstrip()

    return [line(rows[0]), "  ".join("─" * w for w in widths), *map(line, rows[1:])]


def bar(ratio: Decimal) -> str:
    """A text progress bar of `BAR_CELLS` cells, full at 100 % (and beyond)."""
    filled = round(_clamped(ratio) * BAR_CELLS)
    return "█" * filled + "░" * (BAR_CELLS - filled)


def _clamped(ratio: Decimal) -> float:
    try:
        value = float(ratio)
    except (ArithmeticError, TypeError, ValueError):
        return 0.0
    return min(1.0, max(0.0, value)) if value == value else 0.0


def percent(ratio: Decimal) -> str:
    """`ratio` as a whole percentage; an absurd one is shown as such, never raised."""
    try:
        if not Decimal(ratio).is_finite():
            return "—"
        value = Decimal(ratio) * 100
    except (ArithmeticError, TypeError, ValueError):
        return "—"
    if abs(value) >= 10**9:  # an absurd ratio is shown as such
        return "≥999,999,999%" if value > 0 else "≤-999,999,999%"
    return f"{value:.0f}%"


def action_of(action_id: str) -> str:
    """The button's action (`Button.action`) from a Block Kit action id."""
    base, sep, number = action_id.rpartition(ACTION_SUFFIX)
    return base if sep and base and number.isdigit() else action_id


def _pieces(line: str, limit: int) -> Iterator[str]:
    """A line in pieces of at most `limit` characters, never splitting an escape."""
    while len(line) > limit:
        cut = limit
        partial = _PARTIAL_ENTITY.search(line[:cut])
        if partial and partial.start() > 0:
            cut = partial.start()
        yield line[:cut]
        line = line[cut:]
    yield line


def _chunks(lines: list[str], limit: int) -> Iterator[list[str]]:
    """Consecutive lines grouped so each group's joined length stays within `limit`; a line
    longer than `limit` is split."""
    group: list[str] = []
    size = 0
    for whole in lines:
        for line in _pieces(whole, limit):
            if group and size + len(line) + 1 > limit:
                yield group
                group, size = [], 0
            group.append(line)
            size += len(line) + 1
    if group:
        yield group


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> Block:
    """A context line of mrkdwn text that is escaped already."""
    return {"type": "context", "elements": [_mrkdwn(truncate(text, MAX_CONTEXT))]}


def _text_sections(text: str) -> list[Block]:
    escaped = escape(text)
    if not escaped.strip():
        return []  # Slack refuses an empty section
    return [
        _section("\n".join(group))
        for group in _chunks(escaped.split("\n"), MAX_SECTION)
        if "".join(group).strip()
    ]


def _table_sections(table: Table) -> list[Block]:
    fence = 8  # the ``` before and after, and their newlines
    lines = [escape(line) for line in table_lines(table)]
    head, body = lines[:2], lines[2:] or [""]
    head = [truncate(h, MAX_SECTION // 4) for h in head]
    room = MAX_SECTION - fence - sum(len(h) + 1 for h in head)
    return [_section("```\n" + "\n".join(head + group) + "\n```") for group in _chunks(body, room)]


def _buttons(buttons: tuple[Button, ...]) -> list[Block]:
    blocks: list[Block] = []
    for start in range(0, len(buttons), MAX_BUTTONS):
        seen: dict[str, int] = {}
        elements = []
        for button in buttons[start : start + MAX_BUTTONS]:
            action = displayable(button.action)[: MAX_ACTION_ID - 4] or "·"
            seen[action] = seen.get(action, 0) + 1
            n = seen[action]
            action_id = action if n == 1 else f"{action}{ACTION_SUFFIX}{n}"
            element: dict[str, Any] = {
                "type": "button",
                "text": {
                    "type": "plain_text",
                    "text": truncate(displayable(button.label), MAX_BUTTON_LABEL) or "·",
                    "emoji": True,
                },
                "action_id": action_id,
            }
            if button.value:  # Slack refuses an empty value
                element["value"] = displayable(button.value)[:MAX_BUTTON_VALUE]
            if button.style != "default":  # Slack knows only primary and danger
                element["style"] = button.style
            elements.append(element)
        blocks.append({"type": "actions", "elements": elements})
    return blocks


def _mentions(reply: Reply) -> str:
    """The typed mentions as Slack tokens (user ids are Slack's own: letters and digits)."""
    return " ".join(f"<@{m.user}>" for m in reply.mentions if re.fullmatch(r"[A-Z0-9]+", m.user))


def render_blocks(reply: Reply, *, chart_attached: bool = False) -> list[Block]:
    """The Block Kit blocks of `reply`.

    As on every surface, the structured parts (fields, progress, table) replace the plain text
    where present. A chart is uploaded as a file beside the message when `chart_attached`;
    otherwise (an ephemeral message, an edit) its text alternative becomes a context line.
    """
    blocks: list[Block] = []
    mentions = _mentions(reply)
    if mentions:
        blocks.append(_section(truncate(mentions, MAX_SECTION)))
    if reply.headline and displayable(reply.headline).strip():
        blocks.append(
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": truncate(" ".join(displayable(reply.headline).split()), MAX_HEADER),
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
                    _mrkdwn(
                        truncate(
                            f"*{truncate(escape(f.label), 200)}*\n{escape(f.value)}", MAX_FIELD
                        )
                    )
                    for f in fields
                ],
            }
        )
    bars = [
        f"*{truncate(escape(p.label), 200)}*\n`{bar(p.ratio)}` {percent(p.ratio)}  "
        f"{escape(p.caption)}"
        for p in reply.progress
    ]
    blocks += [_section("\n".join(group)) for group in _chunks(bars, MAX_SECTION)]
    if reply.table is not None:
        blocks += _table_sections(reply.table)
    if reply.chart is not None and not chart_attached:
        blocks.append(_context(f"📈 {escape(reply.chart.title)}: {escape(reply.chart.alt)}"))
    blocks += _buttons(reply.buttons)
    if escape(reply.context or "").strip():
        blocks.append(_context(escape(reply.context or "")))
    if len(blocks) > MAX_BLOCKS:
        left = len(blocks) - (MAX_BLOCKS - 1)
        note = texts(reply.language)("render.more_parts", count=left)
        blocks = [*blocks[: MAX_BLOCKS - 1], _context(note)]
    return blocks


def render_text(reply: Reply) -> str:
    """The message's `text`: what notifications show and what is sent alone if Slack refuses
    the blocks — the typed mentions and the escaped complete text, within 40,000 characters."""
    mentions = _mentions(reply)
    text = (mentions + " " if mentions else "") + escape(reply.text)
    if len(text) <= MAX_TEXT:
        return text
    marker = texts(reply.language)("render.cut")
    return _PARTIAL_ENTITY.sub("", text[: MAX_TEXT - len(marker)]) + marker


def render_message(reply: Reply, *, chart_attached: bool = False) -> dict[str, Any]:
    """The `text` (the complete fallback, for notifications) and `blocks` of a message."""
    return {
        "text": render_text(reply),
        "blocks": render_blocks(reply, chart_attached=chart_attached),
    }
