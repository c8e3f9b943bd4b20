"""Sending to DingTalk: the enterprise app's robot (group and one-to-one messages), interactive
cards that are updated in place, images, and custom group robots for digest-only teams.

DingTalk robots cannot reply in threads or edit plain messages. A reply with buttons is sent as
an interactive card (when a card template is configured) whose `outTrackId` comes from the
outbox key, so a retried send does not deliver a second card, and which `update` changes in
place. Without a template the buttons degrade to the text commands every such reply names.
Errors map to the shared hierarchy: 130101, 90002, 90019 and gateway status 1111 are "later"
(after the stated wait); 90020 (the organisation's monthly API quota) stops sending until an
admin acts; 310000, 300001 and permission errors are permanent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import threading
import urllib.parse
from decimal import Decimal
from typing import Any

import requests

from bot.chat.adapter import AuthRevoked, RateLimited, TargetNotFound, Unavailable, Unsupported
from bot.chat.messages import Mention, Reply, Sent, Table, Target, displayable
from bot.i18n import texts
from kpi_engine.clock import system_clock
from kpi_engine.languages import Language

log = logging.getLogger(__name__)

RETRY_LATER = {"130101": 600.0, "90002": 2.0, "90019": 2.0, "-1": 5.0}
QUOTA = {"90020", "Forbidden.AccessDenied.ApiCountLimitForOrg"}
AUTH = {
    "300001",
    "40014",
    "InvalidAuthentication",
    "Forbidden.AccessDenied.AccessTokenPermissionDenied",
}
TARGET = {"400002", "resource.not.found", "param.openConversationId.invalid", "robot.not.in.group"}
PERMANENT = {"310000"}
CARD_PREFIX = "card:"
_BAR = 10


def robot_sign(secret: str, timestamp_ms: int) -> str:
    """A custom robot's `sign`: Base64(HMAC-SHA256(secret, timestamp + "\\n" + secret))."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def out_track_id(key: str) -> str:
    """The interactive card id for an outbox key: the same key, the same card."""
    return "kpibot-" + hashlib.sha256(key.encode()).hexdigest()[:32]


# DingTalk's robot markdown documents no escape character, so a member's text is kept from
# being read as markup by writing the characters that would open it as their full-width
# twins (a link's brackets, a tag's angle brackets, emphasis stars, code ticks), and by a
# zero-width space before a heading, quote or list marker at a line's start. A URL keeps its
# characters (`/`, `:`, `_` inside a word), so it stays the link it is: the few that could open
# markup there (a lone `_`, `*`, `~`) are percent-encoded instead, which RFC 3986 (§2.3, §6.2.2.2)
# makes the same address for `_` and `~`; a dashboard link's token may hold `-_` or end in `_`.
_TWINS = (
    ("[", "［"),
    ("]", "］"),
    ("<", "＜"),
    (">", "＞"),
    ("*", "＊"),
    ("`", "｀"),
    ("\\", "＼"),
)
_LONE_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
# An http(s) URL: up to the first character a URL cannot hold (space, `"<>[\\]^`{|}`, non-ASCII).
_URL = re.compile(r"(https?://[!#-;=?-Z_a-z~]+)")
_URL_MARKUP = {"*": "%2A", "~": "%7E", "_": "%5F"}
_IN_URL_MARKUP = re.compile(r"[*~]|" + _LONE_UNDERSCORE.pattern)
_LINE_MARKUP = re.compile(r"^(\s*)(?=#|[-+]\s|\d+\.\s)", re.MULTILINE)
# msgParam is at most 15,000 bytes (robot group messages); a card's parameters are kept within
# the same budget.
MAX_PARAM_BYTES = 15_000
MAX_MARKDOWN_BYTES = 12_000
MAX_TITLE = 60
MAX_TABLE_ROWS = 50
MAX_BUTTONS = 20
MAX_TEXT = 15_000  # characters of any one text before it is escaped (the message is cut later)
MAX_CELL = 200
LINE_BREAK = "  \n"  # DingTalk: two spaces before a newline break the line


def escape(text: str, *, line_start: bool = False) -> str:
    """Plain text for DingTalk markdown: nothing in it is read as markup. `line_start` when
    the text begins a line (else only its later lines are)."""
    parts = _URL.split(displayable(text))  # text, URL, text, …, text
    for i in range(0, len(parts), 2):
        part = parts[i]
        for markup, twin in _TWINS:
            part = part.replace(markup, twin)
        parts[i] = _LONE_UNDERSCORE.sub("＿", part.replace("~~", "～～"))
    for i in range(1, len(parts), 2):
        parts[i] = _IN_URL_MARKUP.sub(lambda m: _URL_MARKUP[m.group(0)], parts[i])
    text = "".join(parts)
    first, newline, rest = text.partition("\n")
    if line_start:
        first = _LINE_MARKUP.sub(lambda m: m.group(1) + "\u200b", first)
    return first + newline + _LINE_MARKUP.sub(lambda m: m.group(1) + "\u200b", rest)


def _lines(text: str, *, line_start: bool = False) -> str:
    """Escaped text whose lines show as lines (not one paragraph)."""
    return LINE_BREAK.join(escape(_cut(text), line_start=line_start).split("\n"))


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str, limit: int = MAX_TEXT) -> str:
    """Escaped text on one line."""
    return escape(" ".join(_cut(text, limit).split()))


def _percent(ratio: Decimal) -> str:
    if not Decimal(ratio).is_finite():
        return "—"
    value = Decimal(ratio) * 100
    if abs(value) >= 10**9:  # an absurd ratio is shown as such
        return "≥999,999,999%" if value > 0 else "≤-999,999,999%"
    return f"{value:.0f}%"


def _bar(ratio: Decimal) -> str:
    value = float(ratio) if Decimal(ratio).is_finite() else 0.0
    filled = round(min(1.0, max(0.0, value)) * _BAR)
    return "▓" * filled + "░" * (_BAR - filled)


def table_lines(table: Table, language: Language) -> list[str]:
    """A table as DingTalk's markdown shows it well (it has no tables): its header as one
    bold line, then a list item per row, its cells separated by dots."""
    head = " · ".join(_one_line(c, MAX_CELL) for c in table.columns)
    lines = [f"**{head}**"] if head.strip() else []
    for row in table.rows[:MAX_TABLE_ROWS]:
        cells = [_one_line(c, MAX_CELL) for c in row]
        if not cells:
            continue
        # Empty cells and placeholders ("·" for a value the reader may not see) are left out.
        shown = " · ".join(c for c in cells if c.strip() not in ("", "·", "—"))
        lines.append(f"- {shown}".rstrip())
    if len(table.rows) > MAX_TABLE_ROWS:
        more = len(table.rows) - MAX_TABLE_ROWS
        lines.append("- … " + _one_line(texts(language)("render.more_rows", count=more)))
    return lines


_USER_ID = re.compile(r"[\w.-]{1,64}", re.ASCII)


def notifiable(mentions: tuple[Mention, ...]) -> list[Mention]:
    """The mentions whose user id can be a DingTalk userId (others are shown by name only)."""
    return [m for m in mentions if _USER_ID.fullmatch(m.user)]


def mention_text(mention: Mention, *, notify: bool) -> str:
    """How a mention reads: `@userId` (which DingTalk highlights and notifies when the id is in
    `at.atUserIds`) and the person's name; just `@name` where nothing can notify."""
    name = _one_line(mention.name, 100)
    return f"@{mention.user} {name}" if notify and _USER_ID.fullmatch(mention.user) else f"@{name}"


def encoded_size(value: object) -> int:
    """Bytes `value` takes in a JSON request body (as the adapter writes it)."""
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


def fit(text: str, limit: int, language: Language) -> str:
    """`text` within `limit` bytes of JSON, cut at a line when it can be, with a marker."""
    if encoded_size(text) <= limit:
        return text
    marker = LINE_BREAK + escape(texts(language)("render.cut"))
    room = limit - encoded_size(marker)
    kept = text.encode("utf-8")[:room].decode("utf-8", "ignore")
    while encoded_size(kept) > room:  # JSON escapes (newlines, quotes) take two bytes
        kept = kept[: len(kept) * 9 // 10]
    line = kept.rfind("\n")
    if line > len(kept) // 2:
        kept = kept[:line].removesuffix("  ")
    if kept.count("**") % 2:  # never leave a bold mark open
        kept = kept[: kept.rfind("**")]
    return kept + marker


def markdown(reply: Reply, *, at: bool = False, limit: int = MAX_MARKDOWN_BYTES) -> tuple[str, str]:
    """(title, markdown text) of a reply: every part, as DingTalk's markdown can show it,
    within `limit` bytes. `at`: the message carries `at.atUserIds`, so `@userId` in the text
    notifies."""
    language = reply.language
    blocks: list[list[str]] = []
    if reply.mentions:
        blocks.append([" ".join(mention_text(m, notify=at) for m in reply.mentions)])
    headline = " ".join(displayable(reply.headline or "").split())
    if headline:
        blocks.append([f"#### {escape(headline)}"])
    body: list[str] = []
    structured = reply.fields or reply.table or reply.progress
    if not structured:
        body.append(_lines(reply.text, line_start=True))
    for field in reply.fields:
        body.append(f"- **{_one_line(field.label, 200)}**: {_lines(field.value)}")
    for bar in reply.progress:
        body.append(
            f"- **{_one_line(bar.label, 200)}** {_bar(bar.ratio)} "
            f"{_percent(bar.ratio)}  {_one_line(bar.caption)}"
        )
    if reply.table:
        body += table_lines(reply.table, language)
    if reply.chart:
        body.append(f"📈 {_one_line(reply.chart.title)}: {_one_line(reply.chart.alt)}")
    if reply.buttons:
        asks = [b for b in reply.buttons if b.action == "ask"]
        if asks:
            prompt = escape(texts(language)("render.ask_next"))
            body.append(prompt + " · ".join(f"「{_one_line(b.value, 200)}」" for b in asks))
    if body:
        blocks.append(body)
    if reply.context:
        blocks.append([f"> {_one_line(reply.context)}"])
    first = reply.text.strip().splitlines()[0] if reply.text.strip() else "kpibot"
    title = " ".join(displayable(headline or first).split())[:MAX_TITLE] or "kpibot"
    # Lines inside a part break with two spaces; parts are paragraphs.
    text = "\n\n".join(LINE_BREAK.join(lines) for lines in blocks)
    if not text.strip():  # DingTalk sends no empty message: the text says it
        text = _lines(reply.text, line_start=True).strip() or "…"
    return title, fit(text, limit, language)


def raise_for(status: int, body: Any, headers: Any = None) -> None:
    """Raise the shared error for a DingTalk failure answer."""
    data = body if isinstance(body, dict) else {}
    if data.get("status") == 1111 or status == 429:  # the gateway's throttle page
        wait = float(data.get("wait") or 0) or 300.0
        raise RateLimited(wait, f"DingTalk gateway throttled ({data.get('punish', status)})")
    code = str(data.get("errcode", data.get("code", "")))
    message = str(data.get("errmsg", data.get("message", ""))) or f"HTTP {status}"
    what = f"DingTalk error {code}: {message}"
    if code in RETRY_LATER:
        raise RateLimited(RETRY_LATER[code], what)
    if code in QUOTA:
        raise AuthRevoked(what + " (the organisation's monthly API quota is used up)")
    if code in AUTH or status == 401:
        raise AuthRevoked(what)
    if code in TARGET or status == 404:
        raise TargetNotFound(what)
    if code in PERMANENT or code.startswith("Forbidden") or status == 403:
        raise AuthRevoked(what) if code.startswith("Forbidden") else Unsupported(what)
    if status >= 500 or not code:
        raise Unavailable(what)
    raise Unsupported(what)


class DingTalkAdapter:
    """The outbound side of DingTalk."""

    platform = "dingtalk"
    # Robots have no only-visible-to-you messages: private answers go one-to-one.
    private_in_place = False

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        robot_code: str,
        *,
        api: str,
        oapi: str,
        card_template: str | None = None,
        robot_secret: str | None = None,
        timeout: float = 10,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.robot_code = robot_code
        self.api = api.rstrip("/")
        self.oapi = oapi.rstrip("/")
        self.card_template = card_template
        self.robot_secret = robot_secret
        self.timeout = timeout
        self.http = requests.Session()
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    # -- calls -------------------------------------------------------------------------------

    def token(self) -> str:
        """The app's access token, fetched once and again 5 minutes before it expires."""
        with self._lock:
            if self._token is not None and self._token[1] > system_clock():
                return self._token[0]
            try:
                body = self._call(
                    "POST",
                    f"{self.api}/v1.0/oauth2/accessToken",
                    {"appKey": self.client_id, "appSecret": self.client_secret},
                    auth=False,
                )
            except (Unsupported, TargetNotFound) as exc:
                raise AuthRevoked(f"DingTalk refused the app credentials: {exc}") from exc
            token = str(body["accessToken"])
            self._token = (token, system_clock() + int(body.get("expireIn", 7200)) - 300)
            return token

    def _call(
        self,
        method: str,
        url: str,
        payload: dict[str, Any] | None = None,
        *,
        auth: bool = True,
        files: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> Any:
        headers = {"x-acs-dingtalk-access-token": self.token()} if auth else {}
        try:
            response = self.http.request(
                method,
                url,
                json=payload if files is None else None,
                files=files,
                params=query,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise Unavailable(f"DingTalk did not answer: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        failed = (
            response.status_code >= 400
            or (isinstance(body, dict) and body.get("errcode") not in (None, 0))
            or (isinstance(body, dict) and body.get("status") == 1111)
        )
        if failed:
            if response.status_code == 401 and auth:
                self._token = None  # fetched again on the next call
            raise_for(response.status_code, body)
        return body

    # -- ChatAdapter -------------------------------------------------------------------------

    def render(self, reply: Reply, target: Target) -> object:
        """The message (or card) parameters for `reply`."""
        if reply.buttons and self.card_template and not target.channel.startswith("http"):
            return {"card": self._card_params(reply)}
        title, text = markdown(reply, at=target.channel.startswith("http"))
        return {"msgKey": "sampleMarkdown", "msgParam": {"title": title, "text": text}}

    def _card_params(self, reply: Reply) -> dict[str, str]:
        buttons = json.dumps(
            [
                {
                    "text": " ".join(displayable(b.label).split())[:30] or "·",
                    "color": "blue" if b.style == "primary" else "gray",
                    "action": displayable(b.action)[:100],
                    "value": displayable(b.value)[:200],
                }
                for b in reply.buttons[:MAX_BUTTONS]
            ],
            ensure_ascii=False,
        )
        room = MAX_PARAM_BYTES - encoded_size(buttons) - 600  # the title and the map's keys
        title, text = markdown(reply, limit=min(MAX_MARKDOWN_BYTES, room))
        return {"title": title, "markdown": text, "buttons": buttons}

    def send(self, reply: Reply, target: Target, *, key: str | None = None) -> Sent:
        """A group message, a one-to-one message, a card, or a custom robot post."""
        if target.channel.startswith("http"):
            return self._custom_robot(reply, target)
        user = target.user if (target.private or not target.channel) else None
        if user is None and not target.channel:
            raise TargetNotFound("a DingTalk target needs an openConversationId or a user id")
        payload = self.render(reply, target)
        assert isinstance(payload, dict)
        if "card" in payload:
            sent = self._send_card(
                payload["card"], target, user, key or repr(reply), reply.mentions
            )
        else:
            sent = self._send_message(payload["msgKey"], payload["msgParam"], target, user)
        if reply.chart is not None:
            media = self.upload_image(reply.chart.png)
            self._send_message("sampleImageMsg", {"photoURL": media}, target, user)
        return sent

    def _send_message(
        self, key: str, params: dict[str, Any], target: Target, user: str | None
    ) -> Sent:
        common = {
            "robotCode": self.robot_code,
            "msgKey": key,
            "msgParam": json.dumps(params, ensure_ascii=False),
        }
        if user is not None:
            body = self._call(
                "POST",
                f"{self.api}/v1.0/robot/oToMessages/batchSend",
                {**common, "userIds": [user]},
            )
            return Sent(self.platform, user, str(body.get("processQueryKey", "")), params)
        body = self._call(
            "POST",
            f"{self.api}/v1.0/robot/groupMessages/send",
            {**common, "openConversationId": target.channel},
        )
        return Sent(self.platform, target.channel, str(body.get("processQueryKey", "")), params)

    def _send_card(
        self,
        params: dict[str, str],
        target: Target,
        user: str | None,
        key: str,
        mentions: tuple[Mention, ...] = (),
    ) -> Sent:
        """Create and deliver an interactive card, with the space and delivery models the
        official SDK sends (`dingtalk_stream.CardReplier`): a one-to-one card in the robot's
        chat with `user` (IM_ROBOT), a group card in the group (IM_GROUP), mentioning
        `mentions` there through `atUserIds`."""
        track = out_track_id(key)
        body: dict[str, Any] = {
            "cardTemplateId": self.card_template,
            "outTrackId": track,
            "callbackType": "STREAM",
            "cardData": {"cardParamMap": params},
            "userIdType": 1,
            "imGroupOpenSpaceModel": {"supportForward": True},
            "imRobotOpenSpaceModel": {"supportForward": True},
        }
        if user:
            body["openSpaceId"] = f"dtv1.card//IM_ROBOT.{user}"
            body["imRobotOpenDeliverModel"] = {
                "spaceType": "IM_ROBOT",
                "robotCode": self.robot_code,
            }
        else:
            body["openSpaceId"] = f"dtv1.card//IM_GROUP.{target.channel}"
            deliver: dict[str, Any] = {"robotCode": self.robot_code}
            if notifiable(mentions):
                # Notified as the message's @ (atUserIds: id → name) and @ in the card.
                deliver["atUserIds"] = {
                    m.user: " ".join(displayable(m.name).split()) or m.user
                    for m in notifiable(mentions)
                }
                body["cardAtUserIds"] = [m.user for m in notifiable(mentions)]
            body["imGroupOpenDeliverModel"] = deliver
        self._call("POST", f"{self.api}/v1.0/card/instances/createAndDeliver", body)
        return Sent(self.platform, user or target.channel, CARD_PREFIX + track, params)

    def update(self, sent: Sent, reply: Reply) -> Sent:
        """Change an interactive card in place; plain robot messages cannot be edited."""
        if not sent.message_id.startswith(CARD_PREFIX):
            raise Unsupported("DingTalk robots cannot edit a message that is not a card")
        params = self._card_params(reply)
        self._call(
            "PUT",
            f"{self.api}/v1.0/card/instances",
            {
                "outTrackId": sent.message_id.removeprefix(CARD_PREFIX),
                "cardData": {"cardParamMap": params},
                "cardUpdateOptions": {"updateCardDataByKey": True},
            },
        )
        return Sent(self.platform, sent.channel, sent.message_id, params)

    def upload_image(self, png: bytes) -> str:
        """Upload a chart; its media id."""
        body = self._call(
            "POST",
            f"{self.oapi}/media/upload",
            files={"media": ("chart.png", png, "image/png")},
            query={"access_token": self.token(), "type": "image"},
            auth=False,
        )
        return str(body["media_id"])

    def _custom_robot(self, reply: Reply, target: Target) -> Sent:
        """A custom group robot (the team channel is its webhook URL), signed when a secret
        is set. It takes 20 messages a minute: the outbox paces it, and a digest is one
        markdown message."""
        url = target.channel
        if self.robot_secret:
            stamp = int(system_clock() * 1000)
            sign = urllib.parse.quote_plus(robot_sign(self.robot_secret, stamp))
            url = f"{url}&timestamp={stamp}&sign={sign}"
        title, text = markdown(reply, at=True)
        users = [m.user for m in notifiable(reply.mentions)]
        at = {"atUserIds": users} if users else {}
        self._call(
            "POST",
            url,
            {"msgtype": "markdown", "markdown": {"title": title, "text": text}, "at": at},
            auth=False,
        )
        return Sent(self.platform, target.channel, "", {"title": title, "text": text})
