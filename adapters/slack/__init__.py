"""Slack, on slack-bolt and slack-sdk: Events API, interactivity and the `/kpi` command over HTTP
(`POST /slack/events`) or Socket Mode, and Block Kit replies through the Web API.

`connect(settings)` gives the connection when `SLACK_BOT_TOKEN` is set together with
`SLACK_SIGNING_SECRET` (HTTP) and/or `SLACK_APP_TOKEN` (Socket Mode); otherwise None.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk.signature import SignatureVerifier

from adapters.slack.client import SlackAdapter, make_web_client
from adapters.slack.inbound import build_bolt_app, parse_event
from bot.chat.adapter import MAX_BODY_BYTES, read_body
from bot.chat.webhooks import add_webhook, off_loop
from config.settings import Settings

if TYPE_CHECKING:
    from bot.chat.pipeline import Pipeline

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
RECONNECT_WAIT = (1.0, 60.0)  # seconds: first and longest wait between Socket Mode attempts


class SlackConnection:
    """The Slack adapter plus its inbound edge: the HTTP route and the Socket Mode socket."""

    def __init__(self, settings: Settings) -> None:
        assert settings.slack_bot_token is not None
        self.client = make_web_client(
            settings.slack_bot_token.get_secret_value(), settings.slack_api_url
        )
        self.adapter = SlackAdapter(self.client)
        secret, app_token = settings.slack_signing_secret, settings.slack_app_token
        self.signing_secret = secret.get_secret_value() if secret else None
        self.app_token = app_token.get_secret_value() if app_token else None
        self._bolt: tuple[Pipeline, App] | None = None
        self._bot_user: str | None = None  # the bot's user id, from auth.test (see bot_user)
        self._identity_lock = threading.Lock()
        self._socket: SocketModeHandler | None = None
        self._connecting: threading.Thread | None = None
        self._stopping = threading.Event()

    def bolt_app(self, pipeline: Pipeline) -> App:
        """The Bolt app feeding `pipeline` (one for both transports)."""
        if self._bolt is None or self._bolt[0] is not pipeline:
            self._bolt = (pipeline, build_bolt_app(self.client, self.signing_secret, pipeline))
        return self._bolt[1]

    def bot_user(self) -> str | None:
        """The bot's own user id (`auth.test`, asked once and kept); None while Slack cannot
        be asked (the next request asks again)."""
        if self._bot_user is None:
            with self._identity_lock:
                if self._bot_user is None:
                    try:
                        self._bot_user = str(self.client.auth_test()["user_id"])
                    except Exception as exc:
                        log.warning("Slack auth.test failed: %s", exc)
        return self._bot_user

    async def take_event(self, body: bytes, pipeline: Pipeline) -> Response | None:
        """A verified `event_callback` taken without Bolt: parsed and handed to `pipeline`,
        then acknowledged (a bot's own post, or an event that is nobody asking, is acknowledged
        and dropped). 503 while the bot's identity cannot be asked from Slack: Slack sends
        the event again later rather than it being lost. None when the body is not an event
        callback: Bolt takes it.

        Events are nearly all the traffic, and Bolt's dispatch of one (its request object,
        middleware chain, listener matching and runner) costs about five times what verifying
        and parsing it does (bench/README.md, "Webhooks"); commands, buttons, the URL check and
        Socket Mode still go through Bolt."""
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if not (
            isinstance(data, dict)
            and data.get("type") == "event_callback"
            and isinstance(data.get("event"), dict)
        ):
            return None
        bot_user = self._bot_user or await off_loop(self.bot_user)
        if bot_user is None:
            return _refused(503, "Slack cannot be reached to identify the bot")
        message = parse_event(data, bot_user)
        if message is not None:
            await pipeline.accept_async(message)
        return Response(status_code=200)

    def mount(self, app: FastAPI, pipeline: Pipeline) -> None:
        """`POST /slack/events`: the one Request URL for events, interactivity and commands."""
        if self.signing_secret is None:
            return  # Socket Mode only: no request could be verified
        bolt = self.bolt_app(pipeline)

        verifier = SignatureVerifier(self.signing_secret)

        async def slack_events(request: Request) -> Response:
            body = await read_body(request, MAX_BODY_BYTES)
            if body is None:
                log.warning("refused a Slack request: larger than %d bytes", MAX_BODY_BYTES)
                return _refused(413, "request too large")
            # Bolt parses the body before it verifies it: what is not Slack's own is refused
            # here first, with one line in the log and no trace.
            reason = unauthentic(verifier, request.headers, body)
            if reason is not None:
                log.warning("refused a Slack request: %s", reason)
                return _refused(401, "invalid request")
            if request.headers.get("content-type", "").startswith("application/json"):
                taken = await self.take_event(body, pipeline)
                if taken is not None:
                    return taken
            try:
                bolt_request = to_bolt_request(request, body)
                # Verification and the listeners touch the database: off the event loop.
                response = await off_loop(bolt.dispatch, bolt_request)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                # Signed, yet not a payload Bolt can read (JSON in a form field, a wrong shape).
                log.warning("refused a signed Slack request Bolt cannot parse: %r", exc)
                return _refused(400, "malformed request")
            return to_starlette_response(response)

        add_webhook(app, EVENTS_PATH, slack_events)

    def start(self, pipeline: Pipeline) -> None:
        """Open the Socket Mode connection (when `SLACK_APP_TOKEN` is set) in the background,
        trying again with growing waits while Slack cannot be reached."""
        if self.app_token is None or self._socket is not None:
            return
        handler = SocketModeHandler(self.bolt_app(pipeline), self.app_token)
        self._socket = handler
        self._stopping.clear()

        def connect() -> None:
            wait, longest = RECONNECT_WAIT
            while not self._stopping.is_set():
                try:
                    handler.client.connect()  # the SDK keeps it open (and reconnects) from here on
                    log.info("Slack Socket Mode connected")
                    return
                except Exception as exc:
                    log.warning(
                        "Slack Socket Mode: connecting failed (%s); again in %.0f s", exc, wait
                    )
                    self._stopping.wait(wait)
                    wait = min(longest, wait * 2)

        self._connecting = threading.Thread(target=connect, name="slack-socket-mode", daemon=True)
        self._connecting.start()

    def stop(self) -> None:
        """Close the Socket Mode connection."""
        self._stopping.set()
        if self._connecting is not None:
            self._connecting.join()
            self._connecting = None
        if self._socket is not None:
            self._socket.client.close()
            self._socket = None


_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


def unauthentic(verifier: SignatureVerifier, headers: Mapping[str, str], body: bytes) -> str | None:
    """Why a request is not Slack's own (the `v0=` signature over the raw body, at most five
    minutes old), or None."""
    stamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return "the timestamp is missing or not a number"
    if not _SIGNATURE.fullmatch(signature):
        return "the signature is missing or malformed"
    try:
        valid = verifier.is_valid(body, stamp, signature)
    except UnicodeDecodeError:  # the SDK signs text: bytes that are not UTF-8 are not Slack's
        return "the body is not UTF-8 text"
    if not valid:
        return "the signature does not match or the request is too old"
    return None


def _refused(status: int, error: str) -> Response:
    return Response(status_code=status, content=json.dumps({"error": error}))


def connect(settings: Settings) -> SlackConnection | None:
    """The Slack connection, or None when Slack is not configured."""
    if settings.slack_bot_token is None:
        return None
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        log.warning(
            "SLACK_BOT_TOKEN is set but neither SLACK_SIGNING_SECRET (HTTP) nor "
            "SLACK_APP_TOKEN (Socket Mode): Slack stays off"
        )
        return None
    return SlackConnection(settings)


__all__ = ["EVENTS_PATH", "SlackAdapter", "SlackConnection", "connect"]
