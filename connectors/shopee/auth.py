"""Shopee v2 request signing ("API calls" and "Authorization and authentication" guides)."""

from __future__ import annotations

import hashlib
import hmac


def base_string(
    partner_id: str, path: str, timestamp: int, access_token: str = "", shop_id: str = ""
) -> str:
    """Public APIs: partner_id + path + timestamp; shop APIs add access_token + shop_id."""
    return f"{partner_id}{path}{timestamp}{access_token}{shop_id}"


def sign(partner_key: str, base: str) -> str:
    """hex(HMAC-SHA256(partner_key, base)), lowercase, always 64 characters."""
    return hmac.new(partner_key.encode(), base.encode(), hashlib.sha256).hexdigest()
