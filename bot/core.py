"""The services every feature is built on, made once by the composition root
(`bot.compose.compose`): the runtime, the engine's figures and plans, the one access policy,
the registry, the parser's vocabulary, and each installed feature's service by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from bot.chat.access import Access
from bot.chat.notifier import Notifier
from bot.chat.registry import Registry
from bot.chat.vocabulary import Names, Vocabulary, names_of, vocabulary
from bot.runtime import Runtime
from kpi_engine.clock import Clock
from kpi_engine.figures import Figures
from kpi_engine.organisation import Organisation
from kpi_engine.targets import Plans


@dataclass
class Core:
    """What features and the chat core share (one per process)."""

    runtime: Runtime
    figures: Figures
    plans: Plans
    access: Access
    registry: Registry
    notifier: Notifier
    platforms: tuple[str, ...]  # the connected chat platforms (the console included)
    services: dict[str, Any] = field(default_factory=dict)  # each feature's service
    _vocabulary: Vocabulary | None = None
    _names: Names | None = None

    @property
    def organisation(self) -> Organisation:
        """The organisation configuration."""
        return self.runtime.organisation

    @property
    def engine(self) -> Engine:
        """The database."""
        return self.runtime.engine

    @property
    def clock(self) -> Clock:
        """The one clock."""
        return self.runtime.clock

    def vocabulary(self) -> Vocabulary:
        """The parser's words, read once the features have registered their intents."""
        if self._vocabulary is None:
            catalogue = self.organisation.catalogue
            self._vocabulary = vocabulary(catalogue, self.registry.commands)
        return self._vocabulary

    def names(self) -> Names:
        """People, teams and shops by every name they are known by."""
        if self._names is None:
            self._names = names_of(self.organisation)
        return self._names
