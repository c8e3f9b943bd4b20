"""A thin client for the few Feishu/Lark Open API calls kpibot makes, on `requests`.

lark-oapi's package imports every API service it wraps (about 11,000 modules: 170 MB and
seconds of CPU in every process that touches it), and any `lark_oapi.x` submodule runs that
package first. kpibot sends through six endpoints, so it speaks them itself: the tenant access
token (`POST /open-apis/auth/v3/tenant_access_token/internal`, cached until shortly before it
expires, fetched again when Feishu calls it invalid) and JSON or multipart calls that answer
``{"code", "msg", "data"}``. Paths and fields are those of lark-oapi 1.7.5's request models
(reference/platforms.md §2.3). Only the long connection still loads lark-oapi.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import requests

from bot.chat.adapter import AuthRevoked, Unavailable
from kpi_engine.clock import system_clock

TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
# Error codes of the token call that mean the app's credentials are refused.
CREDENTIALS_REFUSED = {10003, 10014, 99991401, 99991543, 99991672, 99991679}
# Fetch a new token this long before Feishu says the cached one expires.
TOKEN_MARGIN = 180.0


class Answer:
    """An Open API answer: HTTP status and headers, and the JSON body's code, msg and data."""

    def __init__(self, status: int, headers: Mapping[str, str], body: dict[str, Any]) -> None:
        self.status = status
        self.headers = dict(headers)
        self.body = body
        code = body.get("code", 0 if status < 400 else status)
        self.code = code if isinstance(code, int) else 0
        self.msg = str(body.get("msg", ""))
        data = body.get("data")
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}

    def success(self) -> bool:
        """Feishu accepted the call."""
        return self.status < 400 and self.code == 0


class FeishuClient:
    """Calls the Open API of one app (tenant access token) at `domain`."""

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        domain: str,
        *,
        timeout: float = 10,
        clock: Callable[[], float] = system_clock,
    ) -> None:
        self.app_id = app_id
        self._secret = app_secret
        self.domain = domain.rstrip("/")
        self.timeout = timeout
        self.clock = clock
        self._session = requests.Session()
        self._token: tuple[str, float] | None = None  # (token, refresh after)
        self._lock = threading.Lock()

    # -- the tenant access token ------------------------------------------------------------

    def token(self) -> str:
        """The tenant access token, fetched when none is cached or it is about to expire."""
        with self._lock:
            if self._token is not None and self.clock() < self._token[1]:
                return self._token[0]
            answer = self._send("POST", TOKEN_PATH, json_body={
                "app_id": self.app_id, "app_secret": self._secret
            })  # fmt: skip
            token = answer.body.get("tenant_access_token")
            if not answer.success() or not isinstance(token, str) or not token:
                what = f"Feishu tenant token: error {answer.code}: {answer.msg}"
                if answer.code in CREDENTIALS_REFUSED:
                    raise AuthRevoked(f"Feishu refused the app credentials ({what})")
                raise Unavailable(what)
            expire = answer.body.get("expire")
            lifetime = float(expire) if isinstance(expire, int | float) else 7200.0
            self._token = (token, self.clock() + max(0.0, lifetime - TOKEN_MARGIN))
            return token

    def forget_token(self) -> None:
        """Drop the cached token (Feishu said it is no longer valid)."""
        with self._lock:
            self._token = None

    # -- calls -------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
    ) -> Answer:
        """One authorised call; the answer, whatever its code (`Answer.success`)."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        return self._send(method, path, query, json_body, files, data, headers)

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        try:
            response = self._session.request(
                method,
                self.domain + path,
                params=query,
                json=json_body,
                files=files,
                data=data,
                headers=headers,
                timeout=self.timeout,
            )
        except (requests.RequestException, OSError) as exc:
            raise Unavailable(f"Feishu did not answer: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        return Answer(
            response.status_code, response.headers, body if isinstance(body, dict) else {}
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()
