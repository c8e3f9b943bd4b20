"""Slack Web API failures mapped onto the shared chat errors, so the outbox decides retries.

Retry later: HTTP 429 / `ratelimited` (after Retry-After), 5xx, network failures and Slack's
own `internal_error` / `fatal_error` / `service_unavailable` / `request_timeout`. Permanent:
revoked or insufficient credentials (`AuthRevoked`), a channel, user or message the bot cannot
reach (`TargetNotFound`), and a payload Slack refuses (`Unsupported`). Anything else is a plain
`ChatError`, which the outbox retries a bounded number of times.
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.chat.adapter import (
    AuthRevoked,
    ChatError,
    RateLimited,
    TargetNotFound,
    Unavailable,
    Unsupported,
)

AUTH_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "team_access_not_granted",
        "org_login_required",
        "ekm_access_denied",
    }
)
TARGET_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "user_not_found",
        "user_not_in_channel",
        "user_disabled",
        "users_not_found",
        "cannot_dm_bot",
        "message_not_found",
        "cant_update_message",
        "thread_not_found",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
    }
)
PAYLOAD_ERRORS = frozenset(
    {
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_arguments",
        "too_many_attachments",
        "invalid_attachments",
        "edit_window_closed",
    }
)
LATER_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
DEFAULT_RETRY_AFTER = 30.0  # seconds, when a 429 comes without Retry-After (Slack always sends it)


def _retry_after(headers: Mapping[str, object]) -> float:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            text = value[0] if isinstance(value, list) and value else value
            try:
                return max(0.0, float(str(text)))
            except ValueError:
                break
    return DEFAULT_RETRY_AFTER


def error_code(exc: SlackApiError) -> str:
    """Slack's error code of a failed call ("" when the answer had none)."""
    data = exc.response.data if exc.response is not None else None
    return str(data.get("error") or "") if isinstance(data, dict) else ""


def to_chat_error(exc: Exception, method: str) -> ChatError:
    """The shared error for a failed Web API call (`exc` raised by slack_sdk)."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = int(response.status_code) if response is not None else 0
        code = error_code(exc)
        where = f"{method}: {code or f'HTTP {status}'}"
        if status == 429 or code in ("ratelimited", "rate_limited"):
            headers = dict(response.headers) if response is not None else {}
            return RateLimited(_retry_after(headers), f"{method}: rate limited")
        if code in AUTH_ERRORS:
            return AuthRevoked(where)
        if code in TARGET_ERRORS:
            return TargetNotFound(where)
        if code in PAYLOAD_ERRORS:
            return Unsupported(where)
        if status >= 500 or code in LATER_ERRORS:
            return Unavailable(where)
        return ChatError(where)
    if isinstance(exc, http.client.HTTPException | OSError):  # URLError, timeouts, resets
        return Unavailable(f"{method}: {type(exc).__name__}: {exc}")
    if isinstance(exc, SlackClientError):
        return ChatError(f"{method}: {exc}")
    return ChatError(f"{method}: {type(exc).__name__}: {exc}")
