"""What a handler gets besides the request: who is asking, where, in which language, when, and
the core services — with the small helpers every feature's replies share (names of scopes,
metrics and periods in the reader's language, the provisional/freshness line, refusals and
questions back)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from bot.chat.messages import Button, Language, Reply
from bot.chat.request import Request, Subject, Unknown
from bot.i18n import Texts, has_text, texts
from kpi_engine.figures import Figure
from kpi_engine.instants import zone
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

    def zh(self, zh: str, en: str) -> str:
        """A text not yet in the catalogue: Chinese for Chinese readers, else English."""
        return zh if self.language == "zh" else en

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
        return metric_name(self.core, metric, self.language)

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
        return context_line(self.zh, figures, split=self.core.figures.split_credit)


def metric_name(core: Core, metric: str, language: Language) -> str:
    """A metric's name in `language`: the catalogue's text, else the configured name."""
    message_id = f"metric.{metric}"
    if has_text(message_id):
        return texts(language)(message_id)
    found = core.organisation.catalogue.metrics.get(metric)
    if found is None:
        return metric
    return found.name_zh if language == "zh" else found.name_en


Chooser = Callable[[str, str], str]  # (Chinese, English) → the reader's


def caveats(t: Chooser, figures: Iterable[Figure], *, split: bool = False) -> list[str]:
    """What a reader must know about these figures besides their values, in their language:
    provisional, incomplete (the missing FX rates named), sources without data, credit shared
    by several people, accepted corrections included."""
    found = list(figures)
    parts = []
    if any(f.provisional for f in found):
        parts.append(t("暂定数据（尚未结算）", "provisional (not settled yet)"))
    missing = sorted({m for f in found for m in f.missing_rates})
    if missing:
        rates = ", ".join(f"{c} {d.isoformat()}" for c, d in missing[:3])
        more = f" +{len(missing) - 3}" if len(missing) > 3 else ""
        parts.append(
            t(
                f"数字不完整：缺少汇率 {rates}{more}（未计入这些金额）",
                f"incomplete: no FX rate for {rates}{more} (those amounts are left out)",
            )
        )
    if any(f.unimported for f in found):
        parts.append(t("部分数据源尚无数据", "some data sources have no data yet"))
    if any(f.shared for f in found):
        parts.append(
            t(
                "多人联播的订单由每位主播平分"
                if split
                else "多人联播的订单计入每位主播（全额），个人合计会高于团队",
                "co-hosted orders are split among the hosts"
                if split
                else "co-hosted orders count in full for each host: people add up to more "
                "than the team",
            )
        )
    if any(f.corrections for f in found):
        appeals = ", ".join(f"#{i}" for i in sorted({i for f in found for i in f.corrections}))
        parts.append(t(f"含已接受的更正 {appeals}", f"includes accepted corrections {appeals}"))
    return parts


def incomplete_mark(t: Chooser, figures: Iterable[Figure]) -> str:
    """A short mark after a value (pace, rank) computed from an incomplete figure."""
    if any(f.incomplete for f in figures):
        return t("（数据不完整）", " (incomplete)")
    return ""


def context_line(t: Chooser, figures: list[Figure], *, split: bool = False) -> str:
    """Provisional, freshness, missing FX, shared credit and corrections."""
    parts = caveats(t, figures, split=split)
    times = [f.as_of for f in figures if f.as_of is not None]
    if times:
        tz = figures[0].period.timezone
        stamp = datetime.fromtimestamp(min(times), zone(tz)).strftime("%m-%d %H:%M")
        at = 1 if any(f.provisional for f in figures) else 0
        parts.insert(at, t(f"数据截至 {stamp}（{tz}）", f"data as of {stamp} ({tz})"))
    return " · ".join(parts)


def percent(value: Decimal | None) -> str:
    """A ratio as a whole percentage, "—" for no value."""
    return "—" if value is None else f"{value * 100:.0f}%"


def ask_back(ctx: Context, unknown: Unknown, request: Request) -> Reply:
    """A short question instead of a guess: what was not understood, and the closest known
    names as buttons that ask the question again with them."""
    t = ctx.t
    kind = unknown.kind
    if kind == "period":
        return Reply(t(f"period.{unknown.reason or 'unreadable'}", said=unknown.said), ctx.language)
    names = [name for _, name in unknown.closest]
    if kind == "metric":
        names = [metric_name(ctx.core, key, ctx.language) for key, _ in unknown.closest]
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
    return request.words.replace(unknown.said.lower(), replacement, 1)
