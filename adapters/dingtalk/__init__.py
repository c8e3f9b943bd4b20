"""DingTalk: the enterprise app's robot, over Stream mode (default) or the HTTP callback.

Enabled when `DINGTALK_CLIENT_ID` (AppKey) and `DINGTALK_CLIENT_SECRET` (AppSecret) are set;
`DINGTALK_ROBOT_CODE` (defaults to the AppKey) sends. `DINGTALK_CONNECTION=http` receives robot
messages at `/dingtalk/robot` instead of over the Stream connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from adapters.dingtalk.inbound import DingTalkEvents, StreamConnection
    from adapters.dingtalk.outbound import DingTalkAdapter
    from bot.chat.pipeline import Pipeline
    from config.settings import Settings


class DingTalkConnection:
    """The configured DingTalk app: outbound adapter, HTTP callback, Stream connection."""

    adapter: DingTalkAdapter
    events: DingTalkEvents
    stream: StreamConnection | None

    def __init__(self, settings: Settings) -> None:
        from adapters.dingtalk.inbound import DingTalkEvents, StreamConnection
        from adapters.dingtalk.outbound import DingTalkAdapter

        assert settings.dingtalk_client_id
        assert settings.dingtalk_client_secret
        secret = settings.dingtalk_client_secret.get_secret_value()
        self.adapter = DingTalkAdapter(
            settings.dingtalk_client_id,
            secret,
            settings.dingtalk_robot_code or settings.dingtalk_client_id,
            api=settings.dingtalk_api_url,
            oapi=settings.dingtalk_oapi_url,
            card_template=settings.dingtalk_card_template,
            robot_secret=settings.dingtalk_robot_secret.get_secret_value()
            if settings.dingtalk_robot_secret
            else None,
        )
        self.events = DingTalkEvents(secret)
        self.stream = (
            StreamConnection(
                settings.dingtalk_client_id, secret, settings.dingtalk_api_url, self.events
            )
            if settings.dingtalk_connection == "stream"
            else None
        )

    def mount(self, app: FastAPI, pipeline: Pipeline) -> None:
        """The HTTP callback (mounted in both modes; it refuses what is not signed)."""
        from adapters.dingtalk.inbound import mount_webhook

        self.events.pipeline = pipeline
        mount_webhook(app, self.events)

    def start(self, pipeline: Pipeline) -> None:
        """Open the Stream connection when configured."""
        self.events.pipeline = pipeline
        if self.stream is not None:
            self.stream.start()

    def stop(self) -> None:
        """Close the Stream connection."""
        if self.stream is not None:
            self.stream.stop()


def connect(settings: Settings) -> DingTalkConnection | None:
    """The DingTalk connection, or None when no app credentials are set."""
    if not (settings.dingtalk_client_id and settings.dingtalk_client_secret):
        return None
    if settings.dingtalk_connection not in ("stream", "http"):
        raise ValueError(
            f"DINGTALK_CONNECTION must be stream or http, not {settings.dingtalk_connection!r}"
        )
    return DingTalkConnection(settings)
