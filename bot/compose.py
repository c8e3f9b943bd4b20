"""The composition root: one function builds the whole chat side from a runtime and the
connected platforms' adapters — core services, the outbox and its sender, the notifier, every
feature, the router, the pipeline and the scheduler. `kpibot serve`, the console, the CLI and
the tests all use it; nothing is wired anywhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from bot.chat.access import Access
from bot.chat.adapter import ChatAdapter
from bot.chat.messages import Target
from bot.chat.notifier import Notifier
from bot.chat.pipeline import Pipeline
from bot.chat.registry import Registry, install_all
from bot.chat.router import Router
from bot.core import Core
from bot.features import features
from bot.outbox import LIMITS, Limit, Outbox, Sender, notice_admins
from bot.runtime import Runtime
from bot.scheduler import Scheduler
from kpi_engine.figures import Figures
from kpi_engine.languages import Language
from kpi_engine.organisation import Organisation
from kpi_engine.targets import Plans


def admin_targets(
    organisation: Organisation, platforms: Iterable[str]
) -> list[tuple[Target, Language]]:
    """Each admin's direct chat on each connected platform, with their language."""
    found: list[tuple[Target, Language]] = []
    for person in organisation.people.values():
        if person.role != "admin":
            continue
        language = organisation.language_of(person)
        for platform in platforms:
            user = person.chat.get(platform)
            if user:
                found.append((Target.direct(platform, "", user), language))
    return found


@dataclass(frozen=True)
class Bot:
    """The chat side, wired once."""

    core: Core
    router: Router
    outbox: Outbox
    sender: Sender
    notifier: Notifier
    pipeline: Pipeline
    scheduler: Scheduler

    def service(self, feature: str) -> Any:
        """A feature's service ("alerts", "appeals", "digests"…)."""
        return self.core.services[feature]

    def start(self, *, scheduler: bool) -> None:
        """Start delivering what is (or will be) in the outbox, and firing jobs if asked."""
        self.sender.start()
        if scheduler:
            self.scheduler.start()

    def stop(self) -> None:
        """Stop firing and sending; undelivered rows stay for the next start."""
        self.scheduler.stop()
        self.sender.stop()


def compose(
    runtime: Runtime,
    adapters: Mapping[str, ChatAdapter],
    *,
    workers: Executor | None = None,
    limits: Mapping[str, Limit] = LIMITS,
    services: Mapping[str, Any] | None = None,
) -> Bot:
    """Build the chat side for `runtime` on the given platforms. `services` are ready-made
    services features may use (the shop sync, by name)."""
    organisation, engine, clock = runtime.organisation, runtime.engine, runtime.clock
    outbox = Outbox(engine, clock=clock)
    sender = Sender(
        outbox,
        adapters,
        limits=limits,
        lease=runtime.settings.outbox_lease_seconds,
        on_dead=notice_admins(outbox, admin_targets(organisation, adapters)),
    )
    notifier = Notifier(adapters, outbox=outbox, sender=sender)
    core = Core(
        runtime=runtime,
        figures=Figures(engine, organisation),
        plans=Plans(organisation.plans, organisation.targets, organisation.catalogue),
        access=Access(organisation),
        registry=Registry(),
        notifier=notifier,
        platforms=tuple(adapters),
        services=dict(services or {}),
    )
    install_all(features(), core.registry, core)
    router = Router(core)
    pipeline = Pipeline(
        engine,
        router,
        notifier,
        workers=workers,
        clock=clock,
        queue=runtime.settings.chat_queue,
        lease=runtime.settings.inbound_lease_seconds,
    )
    scheduler = Scheduler(organisation, engine, core.registry.jobs, clock=clock)
    notifier.run_soon = scheduler.run_soon
    return Bot(core, router, outbox, sender, notifier, pipeline, scheduler)
