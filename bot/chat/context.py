"""What a handler gets besides the request: who is asking, where, in which language, when, and
the core services — with the small helpers every feature's replies share (names of scopes,
metrics and periods in the reader's language, the provisional/freshness line, refusals and
questions back)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from bot.chat.messages import Button, Language, Reply
from bot.chat.request import Request, Subject, Unknown
from bot.i18n import Texts, texts
from bot.i18n.format import DASH, moment, money, number
from bot.i18n.format import percent as percent_of
from bot.i18n.names import metric_name
from kpi_engine.figures import Figure, format_value
from kpi_engine.metrics import Unit
from kpi_engine.organisation import PersonConfig
from kpi_engine.periods import Period, parse_period
from kpi_engine.scopes import Scope

if TYPE_CHECKING:
    from bot.core import Core

ASK = "ask"  # the action of a button whose value is a question to ask


@dataclass(frozen=True)
class Where:
    """Where a message was said (or a button clicked)."""

    platform: str
    workspace: str
    channel: str
    is_direct: bool
    thread: str | None = None
    replayable: bool = False  # its authenticity could be replayed (DingTalk's HTTP callback)


@dataclass(frozen=True)
class Context:
    """Everything a handler may use to answer one person."""

    core: Core
    asker: PersonConfig
    where: Where
    language: Language
    now: int

    @property
    def t(self) -> Texts:
        """The reader's message catalogue."""
        return texts(self.language)

    def figure_text(self, value: Decimal | None, unit: Unit, currency: str | None) -> str:
        """A figure's value as the reader reads it (`figure_text`)."""
        return figure_text(value, unit, currency, self.language)

    # -- whom and when ------------------------------------------------------------------------

    def scope_of(self, subject: Subject | None, *, default: Scope | None = None) -> Scope:
        """The scope a subject stands for, from the asker's point of view (nobody named: the
        given default, else the asker's default — their team for a manager, the company for
        an admin, themselves for anyone else)."""
        if subject is None:
            return default or self.core.access.default_scope(self.asker)
        if subject.kind == "me":
            return Scope("person", self.asker.id)
        if subject.kind == "team":
            if subject.id:
                return Scope("team", subject.id)
            fallback = self.core.access.default_scope(self.asker)
            return fallback if fallback.kind == "team" else Scope("team", self.asker.team)
        if subject.kind == "company":
            return Scope("company")
        return Scope(subject.kind, subject.id)

    def period_of(self, request: Request, scope: Scope, default: str) -> Period:
        """The period asked for, in the scope's zone (PeriodError when it makes no sense)."""
        return parse_period(
            request.period or default,
            now=self.now,
            timezone=self.core.figures.timezone(scope),
            week_start=self.core.organisation.settings.week_start,
        )

    def name_of(self, scope: Scope) -> str:
        """A scope as people call it."""
        org = self.core.organisation
        if scope.kind == "person":
            return org.people[scope.id].name
        if scope.kind == "team":
            return org.teams[scope.id].name
        if scope.kind == "shop":
            return org.shops[scope.id].name
        return org.settings.name

    def metric_name(self, metric: str) -> str:
        """A metric's name in the reader's language."""
        return metric_name(self.core.organisation.catalogue, metric, self.language)

    # -- who sees it -------------------------------------------------------------------------

    def private_for(self, scope: Scope) -> bool:
        """Should an answer about `scope` go to the asker alone? Yes in a group unless every
        member of the group may see it (a direct chat is private already)."""
        if self.where.is_direct:
            return False
        team = self.core.access.team_of_channel(self.where.platform, self.where.channel)
        if team is None:
            return True  # a group kpibot does not know the members of
        return not self.core.access.group_may_see(team, scope)

    # -- replies -----------------------------------------------------------------------------

    def refuse(self) -> Reply:
        """The answer for what does not exist and for what the asker may not see: the same
        words, so a refusal tells nothing about whoever was asked about."""
        return Reply(self.t("access.refused"), self.language, private=True)

    def context_line(self, figures: list[Figure]) -> str:
        """Provisional, freshness, missing FX, shared credit and corrections, in the reader's
        language."""
        return context_line(self.language, figures, split=self.core.figures.split_credit)


def figure_text(value: Decimal | None, unit: Unit, currency: str | None, language: Language) -> str:
    """A figure's value as the reader reads it: percentages, counts and decimals grouped as the
    reader's locale groups them. Money is written as the Japanese locale writes it for Japanese
    readers (￥12,346); Chinese and English replies keep the "1,234.50 CNY" their cards have
    always shown, the currency named by its code."""
    if value is None:
        return DASH
    if unit == "money" and currency:
        if language == "ja":
            return money(value, currency, language)
        return format_value(value, unit, currency)
    if unit == "ratio":
        return percent_of(value, language, places=1)
    if unit == "count":
        return number(value, language)
    if unit == "seconds":
        return texts(language)("figures.seconds", value=number(value, language))
    return number(value, language, places=2)


def bar_caption(figure: Figure, target: Decimal | None, language: Language) -> str:
    """A progress bar's "actual / target", short enough for a card: large amounts the way the
    reader's locale shortens them (¥123.5万, ￥1.2億, CN¥1.2M)."""
    if figure.unit == "money" and figure.currency:
        short = [money(v, figure.currency, language, compact=True) for v in (figure.value, target)]
    else:
        short = [
            figure_text(v, figure.unit, figure.currency, language) for v in (figure.value, target)
        ]
    return f"{short[0]} / {short[1]}"


def caveats(language: Language, figures: Iterable[Figure], *, split: bool = False) -> list[str]:
    """What a reader must know about these figures besides their values, in their language:
    provisional, incomplete (the missing FX rates named), sources without data, credit shared
    by several people, accepted corrections included."""
    t = texts(language)
    found = list(figures)
    parts = []
    if any(f.provisional for f in found):
        parts.append(t("figure.provisional"))
    missing = sorted({m for f in found for m in f.missing_rates})
    if missing:
        rates = ", ".join(f"{c} {d.isoformat()}" for c, d in missing[:3])
        more = f" +{len(missing) - 3}" if len(missing) > 3 else ""
        parts.append(t("figures.caveat.missing_fx", rates=rates + more))
    if any(f.unimported for f in found):
        parts.append(t("figure.unimported"))
    if any(f.shared for f in found):
        parts.append(t("figures.caveat.shared_split" if split else "figures.caveat.shared_full"))
    if any(f.corrections for f in found):
        appeals = ", ".join(f"#{i}" for i in sorted({i for f in found for i in f.corrections}))
        parts.append(t("figures.caveat.corrections", appeals=appeals))
    return parts


def incomplete_mark(language: Language, figures: Iterable[Figure]) -> str:
    """A short mark after a value (pace, rank) computed from an incomplete figure."""
    if any(f.incomplete for f in figures):
        return texts(language)("figures.incomplete_mark")
    return ""


def context_line(language: Language, figures: list[Figure], *, split: bool = False) -> str:
    """Provisional, freshness, missing FX, shared credit and corrections."""
    parts = caveats(language, figures, split=split)
    times = [f.as_of for f in figures if f.as_of is not None]
    if times:
        tz = figures[0].period.timezone
        stamp = moment(min(times), tz, language)
        at = 1 if any(f.provisional for f in figures) else 0
        parts.insert(at, texts(language)("figure.as_of", stamp=stamp, zone=tz))
    return " · ".join(parts)


def ask_back(ctx: Context, unknown: Unknown, request: Request) -> Reply:
    """A short question instead of a guess: what was not understood, and the closest known
    names as buttons that ask the question again with them."""
    t = ctx.t
    kind = unknown.kind
    if kind == "period":
        said = t(f"period.{unknown.reason or 'unreadable'}", said=unknown.said)
        # A day still to come may have meant the one a year earlier: offered, never assumed.
        offered = [name for _, name in unknown.closest]
        if offered:
            said += " " + t("unknown.did_you_mean", names=t("list.separator").join(offered))
        buttons = tuple(
            Button(name, ASK, _again(request, unknown, key, name)) for key, name in unknown.closest
        )
        return Reply(said, ctx.language, buttons=buttons)
    names = [name for _, name in unknown.closest]
    if kind == "metric":
        names = [
            metric_name(ctx.core.organisation.catalogue, key, ctx.language)
            for key, _ in unknown.closest
        ]
    listed = t("list.separator").join(names)
    key = f"unknown.{kind}" + (f".{unknown.reason}" if unknown.reason else "")
    text = t(key, said=unknown.said) + (
        " " + t("unknown.did_you_mean", names=listed) if names else ""
    )
    buttons = tuple(
        Button(name, ASK, _again(request, unknown, key, name))
        for (key, _), name in zip(unknown.closest, names, strict=True)
    )
    return Reply(text, ctx.language, buttons=buttons, private=not ctx.where.is_direct)


def _again(request: Request, unknown: Unknown, key: str, name: str) -> str:
    """The question re-asked with a known name in place of the unknown one."""
    replacement = name if unknown.kind in ("person", "team") else key  # a shop by its id
    if unknown.kind == "period":  # a date in place of the words: "2025-11-20 gmv"
        return " ".join(request.words.replace(unknown.said.lower(), f" {key} ", 1).split())
    return request.words.replace(unknown.said.lower(), replacement, 1)
