"""Shopee's error strings, mapped onto the connectors' error hierarchy (success: error == "")."""

from __future__ import annotations

import json
from decimal import Decimal
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

BUSY = frozenset({"error_system_busy", "error_busi_busy"})


def check(response: httpx.Response, *, token_call: bool = False) -> dict[str, Any]:
    """The body of a successful answer; money stays exact (floats parsed as Decimal)."""
    if response.status_code == 429:
        raise RateLimited("Shopee: HTTP 429", retry_after=retry_after(response))
    if response.status_code >= 500 and not response.content.startswith(b"{"):
        raise Transient(f"Shopee: HTTP {response.status_code}")
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        raise BadResponse(f"Shopee: HTTP {response.status_code}, not JSON") from None
    error = str(body.get("error") or "")
    if not error:
        return dict(body)
    message = f"Shopee {error}: {body.get('message', '')}"
    if error in BUSY or "too many" in message.lower() or error.startswith("ads.rate_limit"):
        raise RateLimited(message, retry_after=retry_after(response), code=error)
    if error in ("error_auth", "error_permission", "invalid_acceess_token", "invalid_access_token"):
        # A refused refresh token cannot be repaired; a refused access token can be refreshed.
        if token_call:
            raise AuthRevoked(message, code=error)
        raise TokenExpired(message, code=error)
    if response.status_code >= 500 or error == "error_server":
        raise Transient(message, code=error)
    raise ConnectorError(message, code=error)
