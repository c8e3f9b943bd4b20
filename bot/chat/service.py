"""The running bot's chat side, wired once: router, notifier over every adapter, pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor

from bot.chat.adapter import ChatAdapter
from bot.chat.notifier import Notifier
from bot.chat.pipeline import Pipeline
from bot.chat.router import Router
from bot.runtime import Runtime
from kpi_engine.figures import Figures


class ChatService:
    """What the HTTP app, the long connections and the scheduler share."""

    def __init__(
        self,
        runtime: Runtime,
        adapters: Mapping[str, ChatAdapter],
        *,
        workers: Executor | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runtime = runtime
        figures = Figures(runtime.engine, runtime.organisation)
        self.router = Router(runtime.organisation, runtime.engine, figures)
        self.notifier = Notifier(adapters)
        self.pipeline = Pipeline(
            runtime.engine, self.router, self.notifier, workers=workers, clock=clock
        )
