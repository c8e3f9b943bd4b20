"""Login with Amazon (LWA): authorization codes and refresh tokens for access tokens.

No request signing: SP-API dropped AWS SigV4 on 2023-10-02; the token goes in
`x-amz-access-token`. The exchange is ours (not the SDK's cached one) so that expiry follows
the injected clock and the token lives in the encrypted store.
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.errors import AuthRevoked, BadResponse, RateLimited, Transient
from connectors.transport import retry_after


def lwa_token(http: httpx.Client, url: str, form: dict[str, str]) -> dict[str, Any]:
    """POST a form to LWA's token endpoint; `invalid_grant`: the seller must authorise again."""
    response = http.post(url, data=form)
    if response.status_code == 429:
        raise RateLimited("LWA: HTTP 429", retry_after=retry_after(response))
    if response.status_code >= 500:
        raise Transient(f"LWA: HTTP {response.status_code}")
    try:
        body = dict(response.json())
    except ValueError:
        raise BadResponse(f"LWA: HTTP {response.status_code}, not JSON") from None
    if response.status_code != 200:
        error = str(body.get("error", ""))
        message = f"LWA {error}: {body.get('error_description', '')}"
        if error in ("invalid_grant", "unauthorized_client", "invalid_client"):
            raise AuthRevoked(message, code=error)
        raise BadResponse(message, code=error)
    return body
