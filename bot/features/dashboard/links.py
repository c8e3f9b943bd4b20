"""Signed one-time dashboard links: what the chat hands a person to open their dashboard.

A link carries the person's id, an expiry minutes away and a random nonce, signed with
HMAC-SHA256 under a key derived from `KPIBOT_SECRET_KEY` (its own key: the shop tokens use
another). Nothing in it is a figure. It is checked in constant time; the nonce is recorded when
the link is redeemed (`kpi_engine.sessions.redeem`), so it opens one session, once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.runtime import Runtime

LOGIN_PATH = "/dashboard/login/"
_VERSION = "v1"
_MAX_TOKEN = 400  # longer than any link we sign


class DashboardUnavailable(RuntimeError):
    """No `KPIBOT_SECRET_KEY` is set, so no link can be signed (or checked)."""


class LinkRefused(ValueError):
    """A link that cannot open a session: `reason` is "malformed", "forged" or "expired"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkClaim:
    """What a genuine, unexpired link says: whose it is, until when, and its nonce."""

    person: str
    expires_at: int
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def link_key(secret: str) -> bytes:
    """The links' signing key, derived from the server secret for this purpose alone."""
    if not secret:
        raise DashboardUnavailable("set KPIBOT_SECRET_KEY to open the dashboard from chat")
    return hmac.new(secret.encode(), b"kpibot dashboard link v1", hashlib.sha256).digest()


def sign_link(key: bytes, person: str, *, expires_at: int, nonce: str | None = None) -> str:
    """The token of a link for `person`, valid until `expires_at` (epoch seconds)."""
    payload = json.dumps(
        {"p": person, "e": expires_at, "n": nonce or secrets.token_urlsafe(16)},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    body = f"{_VERSION}.{_b64(payload)}"
    signature = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def read_link(key: bytes, token: str, *, now: int) -> LinkClaim:
    """The claim of a genuine link that has not expired; LinkRefused otherwise."""
    parts = token.split(".")
    if len(token) > _MAX_TOKEN or len(parts) != 3 or parts[0] != _VERSION:
        raise LinkRefused("malformed")
    try:
        signature = _unb64(parts[2])
    except (binascii.Error, ValueError):
        raise LinkRefused("malformed") from None
    expected = hmac.new(key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise LinkRefused("forged")
    data = json.loads(_unb64(parts[1]))  # signed by us: well-formed
    claim = LinkClaim(str(data["p"]), int(data["e"]), str(data["n"]))
    if claim.expires_at <= now:
        raise LinkRefused("expired")
    return claim


def dashboard_link(runtime: Runtime, person_id: str, *, now: int) -> str:
    """A one-time link that opens `person_id`'s dashboard, valid for
    `KPIBOT_DASHBOARD_LINK_MINUTES` from `now`; what "看板 / dashboard" and the 📊 buttons send,
    privately, to that person. KeyError for an unknown person; DashboardUnavailable without
    `KPIBOT_SECRET_KEY`."""
    if person_id not in runtime.organisation.people:
        raise KeyError(person_id)
    settings = runtime.settings
    secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
    token = sign_link(
        link_key(secret), person_id, expires_at=now + settings.dashboard_link_minutes * 60
    )
    return f"{settings.public_url.rstrip('/')}{LOGIN_PATH}{token}"
