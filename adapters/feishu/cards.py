"""Replies as Feishu interactive cards (card JSON 2.0), or as plain text when nothing in the
reply needs a card.

A card carries `update_multi` so that the bot can change it in place after a button click
(JSON 2.0 cards stay interactive and updatable for 14 days). A button's callback value is an
object (the SDK only accepts objects): ``{"action": <Button.action>, "value": <Button.value>}``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from bot.chat.messages import Reply

# Feishu caps a card's JSON at 30 KB; a table longer than this is cut with a note.
MAX_TABLE_ROWS = 50
_BAR = 20


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
    if not reply.progress:
        return "blue"
    weakest = min(bar.ratio for bar in reply.progress)
    if weakest >= 1:
        return "green"
    if weakest >= Decimal("0.9"):
        return "blue"
    if weakest >= Decimal("0.7"):
        return "orange"
    return "red"


def progress_line(ratio: Decimal, label: str, caption: str) -> str:
    """One achievement as a text bar, e.g. ``**GMV** ▓▓▓▓▓░░░░░ 52%  ¥52,000 / ¥100,000``."""
    filled = max(0, min(_BAR, round(float(ratio) * _BAR)))
    return f"**{label}** {'▓' * filled}{'░' * (_BAR - filled)} {ratio * 100:.0f}%  {caption}"


def _markdown(content: str, *, size: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"tag": "markdown", "content": content}
    if size:
        element["text_size"] = size
    return element


def _escape(text: str) -> str:
    """Text shown in card markdown without being read as markup."""
    for ch in ("\\", "*", "_", "~", "`", "[", "]", "<", ">"):
        text = text.replace(ch, "\\" + ch)
    return text


def card(reply: Reply, *, image_key: str | None = None) -> dict[str, Any]:
    """The card JSON 2.0 for `reply`; `image_key` is the uploaded chart, if any."""
    elements: list[dict[str, Any]] = []
    if reply.mentions:  # card markdown mentions notify the people named
        elements.append(_markdown(" ".join(f"<at id={user}></at>" for user in reply.mentions)))
    structured = reply.fields or reply.table or reply.progress
    if not structured:
        elements.append(_markdown(_escape(reply.text)))
    if reply.fields:
        elements.append(
            {
                "tag": "column_set",
                "flex_mode": "bisect",
                "columns": [
                    {
                        "tag": "column",
                        "width": "weighted",
                        "weight": 1,
                        "elements": [
                            _markdown(f"**{_escape(field.label)}**\n{_escape(field.value)}")
                        ],
                    }
                    for field in reply.fields
                ],
            }
        )
    if reply.progress:
        elements.append(
            _markdown(
                "\n".join(
                    progress_line(bar.ratio, _escape(bar.label), _escape(bar.caption))
                    for bar in reply.progress
                )
            )
        )
    if reply.table:
        columns = [f"c{i}" for i in range(len(reply.table.columns))]
        rows = reply.table.rows[:MAX_TABLE_ROWS]
        elements.append(
            {
                "tag": "table",
                "page_size": min(10, max(1, len(rows))),
                "columns": [
                    {"name": name, "display_name": title, "data_type": "text"}
                    for name, title in zip(columns, reply.table.columns, strict=True)
                ],
                "rows": [dict(zip(columns, row, strict=True)) for row in rows],
            }
        )
        if len(reply.table.rows) > MAX_TABLE_ROWS:
            more = len(reply.table.rows) - MAX_TABLE_ROWS
            note = f"另有 {more} 行未显示" if reply.language == "zh" else f"{more} more rows"
            elements.append(_markdown(note, size="notation"))
    if reply.chart and image_key:
        elements.append(
            {
                "tag": "img",
                "img_key": image_key,
                "alt": {"tag": "plain_text", "content": reply.chart.alt[:500]},
                "title": {"tag": "plain_text", "content": reply.chart.title},
            }
        )
    elif reply.chart:
        elements.append(_markdown(f"{_escape(reply.chart.title)}: {_escape(reply.chart.alt)}"))
    if reply.buttons:
        elements.append(
            {
                "tag": "column_set",
                "flex_mode": "flow",
                "columns": [
                    {
                        "tag": "column",
                        "width": "auto",
                        "elements": [
                            {
                                "tag": "button",
                                "text": {"tag": "plain_text", "content": button.label},
                                "type": button.style,
                                "behaviors": [
                                    {
                                        "type": "callback",
                                        "value": {"action": button.action, "value": button.value},
                                    }
                                ],
                            }
                        ],
                    }
                    for button in reply.buttons
                ],
            }
        )
    if reply.context:
        elements.append(_markdown(_escape(reply.context), size="notation"))
    built: dict[str, Any] = {
        "schema": "2.0",
        "config": {"update_multi": True},
        "body": {"elements": elements},
    }
    if reply.headline:
        built["header"] = {
            "title": {"tag": "plain_text", "content": reply.headline},
            "template": status_colour(reply),
        }
    return built


def content(reply: Reply, *, image_key: str | None = None) -> tuple[str, str]:
    """(msg_type, content) for the message APIs: content is a JSON *string*."""
    if needs_card(reply):
        return "interactive", json.dumps(card(reply, image_key=image_key), ensure_ascii=False)
    return "text", json.dumps({"text": reply.text}, ensure_ascii=False)
