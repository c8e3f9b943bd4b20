"""Chat platform edges (Slack, Feishu/Lark, DingTalk, console), one package per platform.

A platform package (``adapters.slack``, ``adapters.feishu``, ``adapters.dingtalk``) exposes
``connect(settings) -> Connection | None``: None when its credentials are not configured.
A `Connection` carries the platform's outbound `ChatAdapter`, mounts its webhook routes on the
HTTP app, and starts and stops its long connection (Slack Socket Mode, Feishu's WebSocket,
DingTalk Stream) when it uses one. `connect_platforms` is the one place that knows the list.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fastapi import FastAPI

    from bot.chat.adapter import ChatAdapter
    from bot.chat.pipeline import Pipeline
    from config.settings import Settings

PLATFORMS = ("slack", "feishu", "dingtalk")


class Connection(Protocol):
    """One configured chat platform: outbound adapter plus its inbound edge."""

    adapter: ChatAdapter

    def mount(self, app: FastAPI, pipeline: Pipeline) -> None:
        """Add the platform's webhook routes to `app`, feeding `pipeline`."""
        ...

    def start(self, pipeline: Pipeline) -> None:
        """Open the long connection, if the platform is configured to use one."""
        ...

    def stop(self) -> None:
        """Close what `start` opened."""
        ...


def connect_platforms(settings: Settings) -> dict[str, Connection]:
    """The platforms whose credentials are configured, by name."""
    connections: dict[str, Connection] = {}
    for name in PLATFORMS:
        try:
            module = importlib.import_module(f"adapters.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"adapters.{name}":
                raise
            continue  # this platform's package is not part of this build
        connection = module.connect(settings)
        if connection is not None:
            connections[name] = connection
    return connections
