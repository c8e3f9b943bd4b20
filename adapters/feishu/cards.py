"""Replies as Feishu interactive cards (card JSON 2.0), or as plain text when nothing in the
reply needs a card.

A card carries `update_multi` so that the bot can change it in place after a button click
(JSON 2.0 cards stay interactive and updatable for 14 days). A button's callback value is an
object (the SDK only accepts objects): ``{"action": <Button.action>, "value": <Button.value>}``,
plus ``"direct": true`` on cards sent to a one-to-one chat, so that a click there is answered
in that chat (Feishu's click callback does not say what kind of chat it came from).

Every string of a `Reply` is plain text (`bot.chat.messages`). In the card's `markdown`
elements the characters markdown or Feishu's tags would read (``* _ ~ ` [ ] ( ) < > # ! | \\
: &`` and a list marker at a line's start) are written as the HTML entities Feishu's rich-text
documentation prescribes (``&#42;`` …), so a member's ``<at id=all></at>`` or
``[点这里](https://…)`` is shown as typed. Header, button and table-cell texts are Feishu
`plain_text`. In a plain `text` message, Feishu reads only ``<at …>`` tags: a ``<`` followed by
a letter gets a zero-width space after it.

Layout: fields go two to a row (a `column_set` of two columns); a field whose value is long or
has several lines takes a row of its own as markdown. Size: Feishu refuses cards over 30 KB, so
a card is kept within `MAX_CARD_BYTES` of JSON by cutting its longest texts (with a marker) and
then its table rows; a text message within `MAX_TEXT_BYTES`.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from bot.chat.messages import Button, KeyValue, Reply, displayable
from bot.i18n import texts
from kpi_engine.languages import Language

MAX_CARD_BYTES = 28_000  # Feishu: a card's JSON at most 30 KB; kept below it with room to spare
MAX_TEXT_BYTES = 100_000  # Feishu: a text message's request body at most 150 KB
MAX_TABLE_ROWS = 50
MAX_TABLE_COLUMNS = 20
MAX_FIELDS = 50
MAX_CELL = 200  # characters of one table cell
MAX_VALUE = 2_000  # characters of a field value, a caption or the context line
MAX_BODY = 20_000  # characters of the text (the card's limit cuts it further if need be)
MAX_LABEL = 100  # characters of a field label, a button label or the header
SHORT_VALUE = 40  # a field value longer than this (or with a newline) takes a row of its own
_BAR = 20
_ENTITIES = {ch: f"&#{ord(ch)};" for ch in "&*_~`[]()<>#!|\\:"}
_SPECIAL = re.compile("[" + re.escape("".join(_ENTITIES)) + "]")
_LINE_START = re.compile(r"^(\s*)([-+]|\d+\.)(?=\s)", re.MULTILINE)
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def escape(text: str) -> str:
    """Plain text for a card's `markdown` element: nothing in it is read as markup."""
    text = _SPECIAL.sub(lambda m: _ENTITIES[m.group(0)], displayable(text))
    # "- x", "+ x" and "1. x" at a line's start would become list items.
    return _LINE_START.sub(lambda m: m.group(1) + "".join(f"&#{ord(c)};" for c in m.group(2)), text)


def escape_text_message(text: str) -> str:
    """Plain text for a `text` message, where only ``<at …>`` tags are markup."""
    return _TAG_START.sub("<\u200b", displayable(text))


def needs_card(reply: Reply) -> bool:
    """True when the reply has parts beyond its text (and so is sent as a card)."""
    return bool(
        reply.headline
        or reply.mentions
        or reply.fields
        or reply.table
        or reply.progress
        or reply.chart
        or reply.buttons
        or reply.context
    )


def status_colour(reply: Reply) -> str:
    """The header's colour from the weakest achievement on the card: green at or above
    target, blue close to it, orange behind, red far behind; blue when there is none."""
    ratios = [bar.ratio for bar in reply.progress if Decimal(bar.ratio).is_finite()]
    if not ratios:
        return "blue"
    weakest = min(ratios)
    if weakest >= 1:
        return "green"
    if weakest >= Decimal("0.9"):
        return "blue"
    if weakest >= Decimal("0.7"):
        return "orange"
    return "red"


def _percent(ratio: Decimal) -> str:
    if not Decimal(ratio).is_finite():
        return "—"
    value = Decimal(ratio) * 100
    if abs(value) >= 10**9:  # an absurd ratio is shown as such
        return "≥999,999,999%" if value > 0 else "≤-999,999,999%"
    return f"{value:.0f}%"


def progress_line(ratio: Decimal, label: str, caption: str) -> str:
    """One achievement as a text bar, e.g. ``**GMV** ▓▓▓▓▓░░░░░ 52%  ¥52,000 / ¥100,000``
    (`label` and `caption` are escaped already)."""
    value = float(ratio) if Decimal(ratio).is_finite() else 0.0
    filled = round(min(1.0, max(0.0, value)) * _BAR)
    return f"**{label}** {'▓' * filled}{'░' * (_BAR - filled)} {_percent(ratio)}  {caption}"


def _cut(text: str, limit: int) -> str:
    text = displayable(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _markdown(content: str, *, size: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"tag": "markdown", "content": content}
    if size:
        element["text_size"] = size
    return element


def _plain(text: str) -> dict[str, str]:
    return {"tag": "plain_text", "content": text}


def _field_markdown(field: KeyValue) -> dict[str, Any]:
    label, value = escape(_cut(field.label, MAX_LABEL)), escape(_cut(field.value, MAX_VALUE))
    return _markdown(f"**{label}**\n{value}")


def _fields(fields: tuple[KeyValue, ...]) -> list[dict[str, Any]]:
    """Fields two to a row; a long or multi-line value on a row of its own."""
    elements: list[dict[str, Any]] = []
    pair: list[KeyValue] = []

    def flush() -> None:
        if len(pair) == 2:
            elements.append(
                {
                    "tag": "column_set",
                    "flex_mode": "none",
                    "columns": [
                        {
                            "tag": "column",
                            "width": "weighted",
                            "weight": 1,
                            "elements": [_field_markdown(field)],
                        }
                        for field in pair
                    ],
                }
            )
        elif pair:
            elements.append(_field_markdown(pair[0]))
        pair.clear()

    for field in fields[:MAX_FIELDS]:
        if len(field.value) > SHORT_VALUE or "\n" in field.value:
            flush()
            elements.append(_field_markdown(field))
            continue
        pair.append(field)
        if len(pair) == 2:
            flush()
    flush()
    if len(fields) > MAX_FIELDS:
        elements.append(_markdown(f"… +{len(fields) - MAX_FIELDS}", size="notation"))
    return elements


def _buttons(buttons: tuple[Button, ...], direct: bool) -> dict[str, Any]:
    def value(button: Button) -> dict[str, Any]:
        data: dict[str, Any] = {
            "action": displayable(button.action),
            "value": displayable(button.value),
        }
        if direct:
            data["direct"] = True
        return data

    return {
        "tag": "column_set",
        "flex_mode": "flow",
        "columns": [
            {
                "tag": "column",
                "width": "auto",
                "elements": [
                    {
                        "tag": "button",
                        "text": _plain(_cut(button.label, MAX_LABEL) or "·"),
                        "type": button.style,
                        "behaviors": [{"type": "callback", "value": value(button)}],
                    }
                ],
            }
            for button in buttons
        ],
    }


def _size(built: dict[str, Any]) -> int:
    return len(json.dumps(built, ensure_ascii=False).encode("utf-8"))


def _fit(built: dict[str, Any], language: Language) -> dict[str, Any]:
    """The card cut to `MAX_CARD_BYTES`: its longest markdown texts first, then table rows."""
    marker = texts(language)("render.cut")
    elements: list[dict[str, Any]] = built["body"]["elements"]

    def markdowns() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        def walk(items: list[dict[str, Any]]) -> None:
            for item in items:
                if item.get("tag") == "markdown":
                    found.append(item)
                for column in item.get("columns", ()):
                    walk(column.get("elements", []))

        walk(elements)
        return found

    while (excess := _size(built) - MAX_CARD_BYTES) > 0:
        longest = max(markdowns(), key=lambda e: len(e["content"]), default=None)
        table = next((e for e in elements if e.get("tag") == "table"), None)
        if longest is not None and len(longest["content"]) > 400:
            content: str = longest["content"]
            # Cut about the excess (a character is 1 to 4 bytes), never inside an entity.
            keep = max(200, len(content) - max(excess, len(content) // 4))
            kept = re.sub(r"&#?\w*$", "", content[:keep])
            longest["content"] = kept + marker
        elif table is not None and table["rows"]:
            table["rows"] = table["rows"][: len(table["rows"]) // 2]
            table["page_size"] = min(10, max(1, len(table["rows"])))
        else:  # nothing long left (many small parts): drop the largest part
            elements.remove(max(elements, key=lambda e: len(json.dumps(e, ensure_ascii=False))))
    return built


def card(reply: Reply, *, image_key: str | None = None, direct: bool = False) -> dict[str, Any]:
    """The card JSON 2.0 for `reply`; `image_key` is the uploaded chart, if any; `direct`
    when it goes to a one-to-one chat."""
    elements: list[dict[str, Any]] = []
    if reply.mentions:  # card markdown mentions notify the people named
        users = [m.user for m in reply.mentions if re.fullmatch(r"[\w-]+", m.user)]
        elements.append(_markdown(" ".join(f"<at id={user}></at>" for user in users)))
    structured = reply.fields or reply.table or reply.progress
    if not structured:
        elements.append(_markdown(escape(_cut(reply.text, MAX_BODY))))
    elements += _fields(reply.fields)
    if reply.progress:
        elements.append(
            _markdown(
                "\n".join(
                    progress_line(
                        bar.ratio, escape(_cut(bar.label, MAX_LABEL)), escape(bar.caption)
                    )
                    for bar in reply.progress
                )
            )
        )
    if reply.table:
        columns = [f"c{i}" for i in range(min(MAX_TABLE_COLUMNS, len(reply.table.columns)))]
        rows = reply.table.rows[:MAX_TABLE_ROWS]
        elements.append(
            {
                "tag": "table",
                "page_size": min(10, max(1, len(rows))),
                "columns": [
                    {"name": name, "display_name": _cut(title, MAX_LABEL), "data_type": "text"}
                    for name, title in zip(columns, reply.table.columns, strict=False)
                ],
                "rows": [
                    {name: _cut(cell, MAX_CELL) for name, cell in zip(columns, row, strict=False)}
                    for row in rows
                ],
            }
        )
        if len(reply.table.rows) > MAX_TABLE_ROWS:
            more = len(reply.table.rows) - MAX_TABLE_ROWS
            note = texts(reply.language)("render.more_rows", count=more)
            elements.append(_markdown(note, size="notation"))
    if reply.chart and image_key:
        elements.append(
            {
                "tag": "img",
                "img_key": image_key,
                "alt": _plain(_cut(reply.chart.alt, 500)),
                "title": _plain(_cut(reply.chart.title, MAX_LABEL)),
            }
        )
    elif reply.chart:
        elements.append(
            _markdown(escape(_cut(f"{reply.chart.title}: {reply.chart.alt}", MAX_VALUE)))
        )
    if reply.buttons:
        elements.append(_buttons(reply.buttons, direct))
    if reply.context:
        elements.append(_markdown(escape(_cut(reply.context, MAX_VALUE)), size="notation"))
    built: dict[str, Any] = {
        "schema": "2.0",
        "config": {"update_multi": True},
        "body": {"elements": elements},
    }
    headline = " ".join(displayable(reply.headline or "").split())
    if headline:
        built["header"] = {
            "title": _plain(_cut(headline, MAX_LABEL)),
            "template": status_colour(reply),
        }
    return _fit(built, reply.language)


def text_content(reply: Reply) -> str:
    """A `text` message's content (JSON), within `MAX_TEXT_BYTES`."""
    text = escape_text_message(reply.text)
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        marker = texts(reply.language)("render.cut")
        text = text.encode("utf-8")[: MAX_TEXT_BYTES - 100].decode("utf-8", "ignore") + marker
    return json.dumps({"text": text}, ensure_ascii=False)


def content(reply: Reply, *, image_key: str | None = None, direct: bool = False) -> tuple[str, str]:
    """(msg_type, content) for the message APIs: content is a JSON *string*."""
    if needs_card(reply):
        built = card(reply, image_key=image_key, direct=direct)
        return "interactive", json.dumps(built, ensure_ascii=False)
    return "text", text_content(reply)
