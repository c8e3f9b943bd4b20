"""The running bot's chat side, wired once: router, outbox and sender, notifier, pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor

from bot.alerts import ALERT_ACTIONS, AlertService
from bot.appeals import APPEAL_ACTIONS, AppealService
from bot.chat.adapter import ChatAdapter
from bot.chat.messages import Target
from bot.chat.notifier import Notifier
from bot.chat.pipeline import Pipeline
from bot.chat.router import Router
from bot.outbox import LIMITS, Limit, Outbox, Sender, notice_admins
from bot.runtime import Runtime
from kpi_engine.figures import Figures
from kpi_engine.organisation import Organisation


def admin_targets(organisation: Organisation, platforms: Iterable[str]) -> list[tuple[Target, str]]:
    """Each admin's direct chat on each connected platform, with their language."""
    found: list[tuple[Target, str]] = []
    for person in organisation.people.values():
        if person.role != "admin":
            continue
        language = person.language or organisation.settings.default_language
        for platform in platforms:
            user = person.chat.get(platform)
            if user:
                found.append((Target.direct(platform, "", user), language))
    return found


class ChatService:
    """What the HTTP app, the long connections and the scheduler share."""

    def __init__(
        self,
        runtime: Runtime,
        adapters: Mapping[str, ChatAdapter],
        *,
        workers: Executor | None = None,
        clock: Callable[[], float] = time.time,
        limits: Mapping[str, Limit] = LIMITS,
    ) -> None:
        self.runtime = runtime
        organisation = runtime.organisation
        figures = Figures(runtime.engine, organisation)
        self.router = Router(organisation, runtime.engine, figures)
        self.outbox = Outbox(runtime.engine, clock=clock)
        self.sender = Sender(
            self.outbox,
            adapters,
            limits=limits,
            lease=runtime.settings.outbox_lease_seconds,
            on_dead=notice_admins(self.outbox, admin_targets(organisation, adapters)),
        )
        self.notifier = Notifier(adapters, outbox=self.outbox, sender=self.sender)
        self.pipeline = Pipeline(
            runtime.engine, self.router, self.notifier, workers=workers, clock=clock
        )
        self.alerts = AlertService(
            organisation, runtime.engine, figures, self.router.plans, self.notifier, list(adapters)
        )
        self.router.alerts = self.alerts
        for action in ALERT_ACTIONS:
            self.pipeline.actions[action] = self.alerts.on_action
        self.appeals = AppealService(organisation, runtime.engine, figures, self.notifier)
        self.router.appeals = self.appeals
        for action in APPEAL_ACTIONS:
            self.pipeline.actions[action] = self.appeals.on_action

    def start(self) -> None:
        """Start delivering what is (or will be) in the outbox."""
        self.sender.start()

    def stop(self) -> None:
        """Stop the sender; undelivered rows stay for the next start."""
        self.sender.stop()
