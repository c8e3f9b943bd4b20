"""The neutral seam between chat platforms and the bot: typed, frozen messages.

Adapters turn platform payloads into `InboundMessage` / `Action` and render `Reply` into each
platform's own format (ARCHITECTURE.md has the mapping); no platform dict crosses this seam.
A `Reply`'s `text` is always complete on its own: platforms that cannot show a part (a chart,
a button) still say everything.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal

Language = Literal["zh", "en"]
ButtonStyle = Literal["default", "primary", "danger"]


@dataclass(frozen=True)
class InboundMessage:
    """A message somebody sent the bot, verified and parsed by an adapter."""

    platform: str  # "slack", "feishu", "dingtalk", "console"
    workspace: str  # Slack team id, Feishu tenant key, DingTalk corp id ("" for the console)
    channel: str  # the chat it was said in (a direct chat when `is_direct`)
    sender: str  # the sender's platform user id
    text: str  # with the bot's own mention removed
    event_id: str  # the platform's delivery id: a duplicate delivery has the same one
    received_at: int  # epoch seconds
    thread: str | None = None
    mentions: tuple[str, ...] = ()  # platform user ids mentioned in the text
    is_direct: bool = False


@dataclass(frozen=True)
class Action:
    """A button click on a message the bot sent."""

    platform: str
    workspace: str
    action: str  # the button's action id
    value: str
    sender: str
    channel: str
    message_id: str  # the message the button was on
    event_id: str
    received_at: int
    thread: str | None = None


@dataclass(frozen=True)
class KeyValue:
    """A labelled value, shown as a field (Slack), a column (Feishu) or a line (DingTalk)."""

    label: str
    value: str


@dataclass(frozen=True)
class Table:
    """Rows of text cells under a header."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class ProgressBar:
    """Achievement against a target: `ratio` 1 is 100 %."""

    label: str
    ratio: Decimal
    caption: str


@dataclass(frozen=True)
class Chart:
    """A rendered chart image with a text alternative."""

    title: str
    png: bytes
    alt: str


@dataclass(frozen=True)
class Button:
    """A button whose click comes back as an `Action` with this id and value."""

    label: str
    action: str
    value: str
    style: ButtonStyle = "default"


@dataclass(frozen=True)
class Reply:
    """What the bot says: plain text plus structured parts each platform renders its way."""

    text: str
    language: Language
    headline: str | None = None
    fields: tuple[KeyValue, ...] = ()
    table: Table | None = None
    progress: tuple[ProgressBar, ...] = ()
    chart: Chart | None = None
    buttons: tuple[Button, ...] = ()
    context: str | None = None  # provisional / as-of / source line
    private: bool = False  # only the asker may see it (ephemeral, else a direct message)
    thread: str | None = None  # answer inside this thread
    # Platform user ids to @mention (and notify) at the top of the message.
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """Where a reply goes: a channel (and thread), or privately to one user."""

    platform: str
    workspace: str
    channel: str
    user: str | None = None  # the one reader of a private reply
    thread: str | None = None
    private: bool = False

    @classmethod
    def direct(cls, platform: str, workspace: str, user: str) -> Target:
        """A direct message to `user` where no chat with them is known yet (the adapter
        opens or finds the one-to-one chat): `channel` is empty, `user` set, private."""
        return cls(platform, workspace, "", user=user, private=True)


@dataclass(frozen=True)
class Sent:
    """A delivered message, for later updates."""

    platform: str
    channel: str
    message_id: str
    payload: object = field(default=None, compare=False)  # what the adapter sent, for tests


def to_json(reply: Reply) -> dict[str, object]:
    """A reply as JSON-ready data (decimals as text, images as base64)."""

    def plain(value: object) -> object:
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, bytes):
            return base64.b64encode(value).decode("ascii")
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    data = plain(asdict(reply))
    assert isinstance(data, dict)
    return data


def reply_from_json(data: dict[str, Any]) -> Reply:
    """The `Reply` that `to_json` turned into `data`."""
    chart = data.get("chart")
    table = data.get("table")
    return Reply(
        text=data["text"],
        language=data["language"],
        headline=data.get("headline"),
        fields=tuple(KeyValue(**f) for f in data.get("fields", ())),
        table=Table(tuple(table["columns"]), tuple(tuple(r) for r in table["rows"]))
        if table
        else None,
        progress=tuple(
            ProgressBar(p["label"], Decimal(p["ratio"]), p["caption"])
            for p in data.get("progress", ())
        ),
        chart=Chart(chart["title"], base64.b64decode(chart["png"]), chart["alt"])
        if chart
        else None,
        buttons=tuple(Button(**b) for b in data.get("buttons", ())),
        context=data.get("context"),
        private=bool(data.get("private", False)),
        thread=data.get("thread"),
        mentions=tuple(data.get("mentions", ())),
    )
