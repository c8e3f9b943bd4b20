"""TikTok Shop request signing (Partner Center's "Sign your API request")."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

UNSIGNED = frozenset({"sign", "access_token"})


def sign(
    secret: str,
    path: str,
    params: Mapping[str, str],
    body: bytes = b"",
    content_type: str = "application/json",
) -> str:
    """hex(HMAC-SHA256(secret, secret + path + sorted k+v + body + secret)), lowercase.

    The body is the exact bytes sent (serialise once, sign those, send those); multipart
    bodies are not signed.
    """
    base = path + "".join(f"{key}{params[key]}" for key in sorted(params) if key not in UNSIGNED)
    if body and not content_type.startswith("multipart/form-data"):
        base += body.decode()
    wrapped = f"{secret}{base}{secret}"
    return hmac.new(secret.encode(), wrapped.encode(), hashlib.sha256).hexdigest()


def sign_webhook(secret: str, app_key: str, raw_body: bytes) -> str:
    """A webhook's Authorization value: hex(HMAC-SHA256(secret, app_key + raw body))."""
    return hmac.new(secret.encode(), app_key.encode() + raw_body, hashlib.sha256).hexdigest()
