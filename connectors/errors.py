"""The one error hierarchy every platform's client maps its failures onto."""

from __future__ import annotations


class ConnectorError(Exception):
    """A platform call failed; `code` is the platform's own error code when it gave one."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class AuthRevoked(ConnectorError):
    """The authorization is gone (revoked, expired, refresh token used or refused): an admin
    must connect the shop again."""


class TokenExpired(ConnectorError):
    """The access token was refused as expired: refresh it and try again."""


class RateLimited(ConnectorError):
    """Too many requests; wait `retry_after` seconds (None: back off on our own)."""

    def __init__(self, message: str, *, retry_after: float | None = None, code: str = "") -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Transient(ConnectorError):
    """A failure that may pass: 5xx, a network error, the platform busy."""


class BadResponse(ConnectorError):
    """The platform answered something we cannot map (a changed format, a bad value)."""
