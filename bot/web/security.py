"""The dashboard's guards: security headers, CSRF checks, form bodies and rate limits.

Every dashboard response carries a Content-Security-Policy without inline scripts or styles
(scripts and styles are files of this package), with `frame-ancestors` naming only the chat
platforms whose in-app browsers and workbenches may show it, and headers that keep pages out of
caches and referrers (a link's token is in its address). Every action is a POST whose CSRF token
must match the session's, from a page of our own origin.
"""

from __future__ import annotations

import hmac
import threading
from collections import deque
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kpi_engine.clock import Clock

PREFIX = "/dashboard"
# The platforms whose clients may frame the dashboard: Feishu/Lark's workbench (web apps,
# 网页应用) and DingTalk's (H5 micro-apps); everyone else is refused by the browser. Slack is
# not listed: it never frames a page — its links open in the browser (a Custom Tab on Android,
# Safari's view controller on iOS), where frame-ancestors does not apply.
FRAME_ANCESTORS = (
    "'self'",
    "https://*.feishu.cn",
    "https://*.feishucdn.com",
    "https://*.larksuite.com",
    "https://*.larkoffice.com",
    "https://*.dingtalk.com",
)
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors " + " ".join(FRAME_ANCESTORS),
    )
)
MAX_FORM = 16 * 1024


def security_headers(secure: bool) -> dict[str, str]:
    """The headers every dashboard response carries (HSTS only when served over https)."""
    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }
    if secure:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


def is_dashboard(path: str) -> bool:
    """Paths the dashboard serves (and `/`, which leads to it)."""
    return path == "/" or path == PREFIX or path.startswith(PREFIX + "/")


class SecurityHeaders:
    """ASGI middleware: the security headers on dashboard responses; pages are not cached.

    Plain ASGI rather than an `@app.middleware("http")` function: that form wraps every request
    of the app — every chat webhook too — in a task group and a response stream; this one lets
    anything outside the dashboard through untouched."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https  # the public address is https: HSTS whatever the hop says

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_dashboard(scope["path"]):
            await self.app(scope, receive, send)
            return
        secure = self.https or scope.get("scheme") == "https"
        cached = scope["path"].startswith(PREFIX + "/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in security_headers(secure).items():
                    if name not in headers:
                        headers[name] = value
                if not cached:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)


def same_origin(request: Request, public_url: str) -> bool:
    """False when the request says it comes from another site (Origin, else Referer)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return True  # browsers send Origin on POST; the CSRF token still has to match
    origin = urlsplit(source)
    ours = {
        (request.url.scheme, request.url.netloc),
        (urlsplit(public_url).scheme, urlsplit(public_url).netloc),
    }
    return (origin.scheme, origin.netloc) in ours


def csrf_ok(expected: str, given: str | None) -> bool:
    """The form's (or htmx header's) token is the session's, compared in constant time."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


async def read_form(request: Request) -> dict[str, str]:
    """A small urlencoded form body (the dashboard's forms); larger bodies are cut off."""
    body = await request.body()
    if len(body) > MAX_FORM:
        return {}
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {name: values[-1] for name, values in fields.items()}


def client_of(request: Request) -> str:
    """The client's address (behind a proxy, as the server was told to trust it)."""
    return request.client.host if request.client else "unknown"


class RateLimiter:
    """At most `limit` attempts per `window` seconds per key (a client address), in this
    process; the clock is the app's."""

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> float | None:
        """Count an attempt; None when allowed, else the seconds until one is."""
        now = self.clock()
        with self._lock:
            if len(self._seen) > 10_000:  # bounded: forget quiet clients
                self._seen = {
                    k: v for k, v in self._seen.items() if v and v[-1] > now - self.window
                }
            seen = self._seen.setdefault(key, deque())
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if len(seen) >= self.limit:
                return max(seen[0] + self.window - now, 1.0)
            seen.append(now)
            return None
