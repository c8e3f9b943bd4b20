"""TikTok Shop's error codes, mapped onto the connectors' error hierarchy."""

from __future__ import annotations

from typing import Any

import httpx

from connectors.errors import (
    AuthRevoked,
    BadResponse,
    ConnectorError,
    RateLimited,
    TokenExpired,
    Transient,
)
from connectors.transport import retry_after

TOKEN_EXPIRED = 105002
TOO_MANY_REQUESTS = 36009002
# The authorization record is gone, or its refresh token expired: only the seller can fix it.
REVOKED = frozenset({36004001, 36004005, 105001, 105003})


def check(response: httpx.Response) -> dict[str, Any]:
    """The `data` of a successful answer (code 0); otherwise the matching error, raised."""
    if response.status_code == 429:
        raise RateLimited("TikTok: HTTP 429", retry_after=retry_after(response))
    if response.status_code >= 500:
        raise Transient(f"TikTok: HTTP {response.status_code}")
    try:
        body = response.json()
        code = int(body.get("code", -1))
    except (ValueError, AttributeError, TypeError):
        raise BadResponse(f"TikTok: HTTP {response.status_code}, not JSON") from None
    if code == 0:
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise BadResponse("TikTok: `data` is not an object")
        return data
    message = f"TikTok {code}: {body.get('message', '')}"
    if code == TOKEN_EXPIRED:
        raise TokenExpired(message, code=str(code))
    if code == TOO_MANY_REQUESTS:
        raise RateLimited(message, retry_after=retry_after(response), code=str(code))
    if code in REVOKED or response.status_code == 401:
        raise AuthRevoked(message, code=str(code))
    raise ConnectorError(message, code=str(code))
