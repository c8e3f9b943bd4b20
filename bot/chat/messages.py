"""The neutral seam between chat platforms and the bot: typed, frozen messages.

Adapters turn platform payloads into `InboundMessage` / `Action` and render `Reply` into each
platform's own format (ARCHITECTURE.md has the mapping); no platform dict crosses this seam.
A `Reply`'s `text` is always complete on its own: platforms that cannot show a part (a chart,
a button) still say everything.

Every string in a `Reply` is plain text, whoever wrote it (a template or a member's note):
renderers escape all of it for their platform, and the only markup a message carries is what
the renderer makes from the typed parts (headline, fields, table, buttons, `Mention`s). So a
note that says `<!channel>` or `[点这里](https://evil.example)` is shown as those characters,
and a mention notifies only when it is a `Mention`.
"""

from __future__ import annotations

import base64
import functools
import re
import unicodedata
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # adapters import this module: keep the engine out of their start-up
    from kpi_engine.restatements import Watched

from kpi_engine.languages import Language as Language  # the seam's language type

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
    # True when the transport cannot tell this message from a replay of an earlier one with
    # another body (DingTalk's HTTP callback signs only its timestamp, valid for an hour):
    # the bot should not change state on its word alone.
    replayable: bool = False


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
    # Clicked in a one-to-one chat with the bot: answers go there (not as an in-group private
    # message, which direct chats do not have).
    is_direct: bool = False
    replayable: bool = False  # as on `InboundMessage`


@dataclass(frozen=True)
class Mention:
    """Somebody to @mention (and notify): their platform user id and the name to show."""

    user: str
    name: str


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
    # People to @mention (and notify) at the top of the message.
    mentions: tuple[Mention, ...] = ()
    # The figures the message states, re-checked later for revisions (not rendered).
    watch: tuple[Watched, ...] = field(default=(), compare=False)


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

    data = plain(asdict(replace(reply, watch=())))
    assert isinstance(data, dict)
    data.pop("watch", None)
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
        mentions=tuple(_mention(m) for m in data.get("mentions", ())),
    )


def _mention(data: Any) -> Mention:
    # Rows written before mentions carried names hold the bare user id.
    if isinstance(data, str):
        return Mention(data, data)
    return Mention(str(data["user"]), str(data.get("name") or data["user"]))


# C0 controls other than tab and newline, DEL, C1 controls, and the bidi embedding, override
# and isolate controls (which can make a link read backwards): never part of what we show.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def displayable(text: str) -> str:
    """`text` fit for any platform payload: lone surrogates (which no JSON encoder can send
    as UTF-8) become U+FFFD, invisible control and bidi-override characters are dropped,
    and line ends are newlines."""
    if text.isprintable():  # no control, format (bidi), surrogate or line-end character
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SURROGATE.sub("\ufffd", text)
    return _INVISIBLE.sub("", text)


def width(text: str) -> int:
    """Columns `text` takes in a monospace font: East Asian wide and full-width characters
    (Chinese, Japanese, Korean, most emoji) take two."""
    return len(text) if text.isascii() else sum(map(_char_width, text))


@functools.cache
def _char_width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
