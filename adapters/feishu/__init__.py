"""Feishu / Lark: cards with working buttons, threads, images; webhook or long connection.

Enabled when `FEISHU_APP_ID` and `FEISHU_APP_SECRET` are set. `FEISHU_CONNECTION=long` receives
events over lark-oapi's WebSocket (no public URL needed); otherwise Feishu posts them to
`/feishu/events` and card clicks to `/feishu/card`. `KPIBOT_FEISHU_DOMAIN` picks Feishu
(https://open.feishu.cn), Lark (https://open.larksuite.com) or a private deployment.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from adapters.feishu.inbound import FeishuEvents, LongConnection
    from adapters.feishu.outbound import FeishuAdapter
    from bot.chat.pipeline import Pipeline
    from config.settings import Settings

log = logging.getLogger(__name__)
DOMAINS = {"feishu": "https://open.feishu.cn", "lark": "https://open.larksuite.com"}


class FeishuConnection:
    """The configured Feishu app: outbound adapter, webhooks, optional long connection."""

    adapter: FeishuAdapter
    events: FeishuEvents
    long: LongConnection | None

    def __init__(self, settings: Settings) -> None:
        # lark-oapi takes seconds to import: only a configured Feishu pays for it.
        from adapters.feishu.inbound import FeishuEvents, LongConnection
        from adapters.feishu.outbound import FeishuAdapter

        assert settings.feishu_app_id
        assert settings.feishu_app_secret
        domain = DOMAINS.get(settings.feishu_domain.lower(), settings.feishu_domain)
        secret = settings.feishu_app_secret.get_secret_value()
        self.adapter = FeishuAdapter(settings.feishu_app_id, secret, domain)
        self.events = FeishuEvents(
            self.adapter,
            encrypt_key=settings.feishu_encrypt_key.get_secret_value()
            if settings.feishu_encrypt_key
            else None,
            verification_token=settings.feishu_verification_token.get_secret_value()
            if settings.feishu_verification_token
            else None,
        )
        self.long = (
            LongConnection(settings.feishu_app_id, secret, domain, self.events)
            if settings.feishu_connection == "long"
            else None
        )

    def mount(self, app: FastAPI, pipeline: Pipeline) -> None:
        """The webhooks (always mounted: the long connection does not carry old-style cards)."""
        from adapters.feishu.inbound import mount_webhooks

        self.events.pipeline = pipeline
        mount_webhooks(app, self.events)

    def start(self, pipeline: Pipeline) -> None:
        """Open the long connection when configured."""
        self.events.pipeline = pipeline
        # The bot's own open_id tells group messages that @mention it; fetch it now rather
        # than while Feishu waits for an answer.
        threading.Thread(target=self._prefetch, name="feishu-bot-info", daemon=True).start()
        if self.long is not None:
            self.long.start()

    def _prefetch(self) -> None:
        from bot.chat.adapter import ChatError

        try:
            self.adapter.bot_open_id()
        except ChatError as exc:
            log.warning("cannot read the Feishu bot's info yet: %s", exc)

    def stop(self) -> None:
        """Close the long connection."""
        if self.long is not None:
            self.long.stop()


def connect(settings: Settings) -> FeishuConnection | None:
    """The Feishu connection, or None when no app credentials are set."""
    if not (settings.feishu_app_id and settings.feishu_app_secret):
        return None
    if settings.feishu_connection not in ("http", "long"):
        raise ValueError(
            f"FEISHU_CONNECTION must be http or long, not {settings.feishu_connection!r}"
        )
    if settings.feishu_connection == "http" and not (
        settings.feishu_encrypt_key or settings.feishu_verification_token
    ):
        raise ValueError(
            "Feishu webhooks need FEISHU_ENCRYPT_KEY (recommended) or FEISHU_VERIFICATION_TOKEN "
            "from the app's Events and Callbacks page; without them anyone could post events"
        )
    return FeishuConnection(settings)
