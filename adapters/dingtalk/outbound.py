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
import threading
import time
import urllib.parse
from typing import Any

import requests

from bot.chat.adapter import AuthRevoked, RateLimited, TargetNotFound, Unavailable, Unsupported
from bot.chat.messages import Reply, Sent, Target

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


def markdown(reply: Reply) -> tuple[str, str]:
    """(title, markdown text) of a reply: every part, as DingTalk's markdown can show it."""
    zh = reply.language == "zh"
    lines: list[str] = []
    if reply.mentions:
        lines.append(" ".join(f"@{user}" for user in reply.mentions))
    if reply.headline:
        lines.append(f"#### {reply.headline}")
    structured = reply.fields or reply.table or reply.progress
    if not structured:
        lines.append(reply.text.replace("\n", "  \n"))
    for field in reply.fields:
        lines.append(f"- **{field.label}**: {field.value}")
    for bar in reply.progress:
        filled = max(0, min(_BAR, round(float(bar.ratio) * _BAR)))
        lines.append(
            f"- **{bar.label}** {'▓' * filled}{'░' * (_BAR - filled)} "
            f"{bar.ratio * 100:.0f}%  {bar.caption}"
        )
    if reply.table:
        table = reply.table
        lines.append("| " + " | ".join(table.columns) + " |")
        lines.append("|" + "---|" * len(table.columns))
        lines += ["| " + " | ".join(row) + " |" for row in table.rows[:50]]
    if reply.chart:
        lines.append(f"> {reply.chart.title}: {reply.chart.alt}")
    if reply.buttons:
        asks = [b for b in reply.buttons if b.action == "ask"]
        if asks:
            prompt = "可以接着问：" if zh else "You can ask: "
            lines.append(prompt + " · ".join(f"「{b.value}」" for b in asks))
    if reply.context:
        lines.append(f"> {reply.context}")
    title = (reply.headline or reply.text.splitlines()[0] if reply.text else "kpibot")[:60]
    return title, "\n\n".join(lines)


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
            if self._token is not None and self._token[1] > time.time():
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
            self._token = (token, time.time() + int(body.get("expireIn", 7200)) - 300)
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
        title, text = markdown(reply)
        return {"msgKey": "sampleMarkdown", "msgParam": {"title": title, "text": text}}

    def _card_params(self, reply: Reply) -> dict[str, str]:
        title, text = markdown(reply)
        buttons = [
            {
                "text": b.label,
                "color": "blue" if b.style == "primary" else "gray",
                "action": b.action,
                "value": b.value,
            }
            for b in reply.buttons
        ]
        return {
            "title": title,
            "markdown": text,
            "buttons": json.dumps(buttons, ensure_ascii=False),
        }

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
            sent = self._send_card(payload["card"], target, user, key or repr(reply))
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
        self, params: dict[str, str], target: Target, user: str | None, key: str
    ) -> Sent:
        track = out_track_id(key)
        space = f"dtv1.card//IM_ROBOT.{user}" if user else f"dtv1.card//IM_GROUP.{target.channel}"
        body: dict[str, Any] = {
            "cardTemplateId": self.card_template,
            "outTrackId": track,
            "callbackType": "STREAM",
            "cardData": {"cardParamMap": params},
            "openSpaceId": space,
        }
        if user:
            body["imRobotOpenDeliverModel"] = {
                "spaceType": "IM_ROBOT",
                "robotCode": self.robot_code,
            }
        else:
            body["imGroupOpenDeliverModel"] = {"robotCode": self.robot_code}
            body["imGroupOpenSpaceModel"] = {"supportForward": True}
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
            stamp = int(time.time() * 1000)
            sign = urllib.parse.quote_plus(robot_sign(self.robot_secret, stamp))
            url = f"{url}&timestamp={stamp}&sign={sign}"
        title, text = markdown(reply)
        at = {"atUserIds": list(reply.mentions)} if reply.mentions else {}
        self._call(
            "POST",
            url,
            {"msgtype": "markdown", "markdown": {"title": title, "text": text}, "at": at},
            auth=False,
        )
        return Sent(self.platform, target.channel, "", {"title": title, "text": text})
