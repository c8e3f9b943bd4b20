"""The typed request the one parser makes of a message: everything a handler needs, so that no
handler reads the raw text."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from kpi_engine.languages import Language

SubjectKind = Literal["me", "team", "person", "shop", "company"]
Breakdown = Literal["shop", "person", "day", "channel", "team"]
UnknownKind = Literal["metric", "person", "team", "shop", "period", "intent"]


@dataclass(frozen=True)
class Subject:
    """Whom a question is about: the asker, a team (theirs when `id` is empty), a person, a
    shop, or the company."""

    kind: SubjectKind
    id: str = ""

    def text(self) -> str:
        """ "me", "team", "team:sz-live", "person:li.na", "shop:tts-us-01", "company"."""
        return f"{self.kind}:{self.id}" if self.id else self.kind


@dataclass(frozen=True)
class Unknown:
    """Something the message names that kpibot does not know (or a period that cannot be):
    the words as said, and the closest known names to offer instead."""

    kind: UnknownKind
    said: str
    closest: tuple[tuple[str, str], ...] = ()  # (id, display name)
    reason: str = ""  # for periods: "future", "impossible", "unreadable"


@dataclass(frozen=True)
class Request:
    """A parsed message."""

    intent: str  # a registered intent, or "unknown"
    language: Language
    metric: str | None = None
    subject: Subject | None = None  # None: nobody named; the handler's default applies
    period: str | None = None  # a spec `kpi_engine.periods.parse_period` understands
    period_said: str | None = None  # the words that named it ("上周", "Nov 20")
    by: Breakdown | None = None
    compare: Literal["previous", "year_ago"] | None = None
    top: int | None = None  # "前三", "top 3"
    bottom: bool = False  # "倒数前三", "bottom 3", "who is behind"
    role: str | None = None
    verb: str | None = None  # ack / snooze / false_alarm / resolve; review / accept / …
    number: int | None = None  # the alert or appeal number after a verb
    amount: Decimal | None = None  # a claimed value ("应该是12000")
    evidence: tuple[str, ...] = ()  # order ids and links given as evidence
    text: str = ""  # what is left: a note, a reason, a snooze length
    unknown: Unknown | None = None
    words: str = ""  # the whole text, normalised, for suggestions
    mentions: tuple[str, ...] = field(default=(), compare=False)  # person ids @mentioned

    def understood(self, visibility: str) -> dict[str, object]:
        """The request as parsed (`Routed.understood` fills in what the handler resolved)."""
        return {
            "intent": self.intent,
            "metric": self.metric,
            "subject": self.subject.text() if self.subject else None,
            "period": self.period,
            "language": self.language,
            "visibility": visibility,
        }
