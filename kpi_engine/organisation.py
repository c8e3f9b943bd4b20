"""The organisation as code: teams, people, shops and assignments loaded from YAML and checked."""

from __future__ import annotations

import csv
import difflib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

from babel import Locale
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kpi_engine.calendar import CalendarEvent
from kpi_engine.instants import is_zone, zone_names
from kpi_engine.languages import Language
from kpi_engine.metrics import (
    Aggregate,
    Catalogue,
    Direction,
    Imported,
    Metric,
    MetricError,
    Unit,
    build_catalogue,
    custom_metric,
    imported_metric,
)
from kpi_engine.money import currency_codes, is_currency, minor_exponent
from kpi_engine.periods import Period, PeriodError, day_of, parse_period
from kpi_engine.plans import Plan, Recurrence, Step, Target
from kpi_engine.scopes import Scope, ScopeError, parse_scope
from kpi_engine.scorecards import (
    MAX_ITEMS_BEFORE_WARNING,
    Commission,
    Gate,
    ScorecardRule,
    ScoreItem,
    TeamBonus,
    Tier,
)
from kpi_engine.yaml_source import KeyPath, YamlDocument, YamlSourceError, load_yaml

Role = Literal["streamer", "operator", "ad_buyer", "editor", "cs", "manager", "admin"]
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]
ShopPlatform = Literal["tiktok", "shopee", "lazada", "amazon"]
SHOP_PLATFORMS: tuple[str, ...] = ShopPlatform.__args__  # type: ignore[attr-defined]
ChatPlatform = Literal["slack", "feishu", "dingtalk"]
CHAT_PLATFORMS: tuple[str, ...] = ChatPlatform.__args__  # type: ignore[attr-defined]


class ConfigModel(BaseModel):
    """Strict base: unknown keys are errors and instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ChatIds(ConfigModel):
    """One identity per chat platform: a user id for people, a channel/chat id for teams."""

    slack: str | None = None
    feishu: str | None = None
    dingtalk: str | None = None

    def get(self, platform: str) -> str | None:
        """The id on `platform`, if any."""
        value: str | None = getattr(self, platform, None)
        return value


def _check_zone(value: str) -> str:
    if not is_zone(value):
        raise ValueError(f"unknown time zone {value!r}")
    return value


def _check_currency(value: str) -> str:
    if not is_currency(value):
        raise ValueError(f"unknown currency {value!r}")
    return value


class SettlementLags(ConfigModel):
    """Days after a period ends until each source's data for it is final (T+1 … T+3)."""

    orders: int = Field(1, ge=0)
    refunds: int = Field(3, ge=0)
    live_sessions: int = Field(1, ge=0)
    ad_spend: int = Field(2, ge=0)
    metric_values: int = Field(1, ge=0)


class AttributionSettings(ConfigModel):
    """How orders are credited to people (see docs/metrics.md)."""

    live_tail_minutes: int = Field(30, ge=0, le=24 * 60)
    fallback_roles: tuple[Role, ...] = ("operator",)
    # An order (or live session) credited to several people at once — co-hosts, overlapping
    # lives, several operators — counts in full for each (`full`) or in equal parts (`split`).
    cohost_credit: Literal["full", "split"] = "full"


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = Weekday.__args__  # type: ignore[attr-defined]


def _check_clock(value: str) -> str:
    hours, _, minutes = value.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise ValueError(f"a time of day is HH:MM, got {value!r}")
    return f"{int(hours):02d}:{int(minutes):02d}"


class DigestTime(ConfigModel):
    """When one kind of digest goes out, in the team's own time zone."""

    at: str
    days: tuple[Weekday, ...] = WEEKDAYS  # type: ignore[assignment]
    # Spread over a few minutes after `at`: Feishu asks bots not to send on the exact hour.
    jitter_minutes: int = Field(3, ge=0, le=30)

    _at = field_validator("at")(_check_clock)


class ScheduleSettings(ConfigModel):
    """The digests a team gets, and what happens on its holidays."""

    morning: DigestTime | None = DigestTime(at="09:00")
    evening: DigestTime | None = DigestTime(at="22:30")
    weekly: DigestTime | None = DigestTime(at="09:30", days=("mon",))
    # A firing missed while the bot was down is sent late, once, within this; later, skipped.
    misfire_grace_minutes: int = Field(120, ge=1, le=24 * 60)
    on_holiday: Literal["skip", "shift"] = "skip"  # shift: the next day that is no holiday
    personal: bool = True  # the morning round also tells each person their own numbers


class FreshnessSettings(ConfigModel):
    """Hours a source may stay silent (no import) before the admins are told."""

    orders: int = Field(6, ge=1)
    refunds: int = Field(24, ge=1)
    live_sessions: int = Field(24, ge=1)
    ad_spend: int = Field(48, ge=1)
    metric_values: int = Field(48, ge=1)


class AppealSettings(ConfigModel):
    """Who reviews disputed numbers, and how soon."""

    reviewer: Literal["manager", "admin"] = "manager"  # the appellant's manager, or an admin
    sla_hours: int = Field(24, ge=1)  # then a reminder, and the reviewer's manager is told
    # A claim beyond this multiple of the reported figure (or beyond the second limit when
    # nothing was reported) is accepted only when the reviewer confirms it explicitly.
    max_claim_ratio: Decimal = Field(Decimal(10), gt=0)
    max_claim_without_report: Decimal = Field(Decimal(1_000_000), gt=0)


class OrganisationSettings(ConfigModel):
    """Organisation-wide defaults."""

    name: str
    default_language: Language = "zh"
    week_start: Literal["monday", "sunday"] = "monday"
    currency: str | None = None  # company-wide figures; the first team's currency when unset
    timezone: str | None = None  # company-wide figures' days; the first team's zone when unset
    settlement_lag_days: SettlementLags = SettlementLags()
    attribution: AttributionSettings = AttributionSettings()
    # A live session counts for effective live duration (有效直播时长) from this length on.
    effective_live_minutes: int = Field(30, ge=0, le=24 * 60)
    # What members see of other people in rankings: places and names, their values too, or
    # only their own line. Managers and admins always see values.
    ranking_for_members: Literal["names", "values", "own"] = "names"
    schedules: ScheduleSettings = ScheduleSettings()
    holidays: tuple[date, ...] = ()  # days without digests (or shifted), for every team
    freshness_hours: FreshnessSettings = FreshnessSettings()
    # A posted figure that later moves by more than this gets a "revised" notice.
    restatement_percent: Decimal = Field(Decimal(1), ge=0)
    appeals: AppealSettings = AppealSettings()
    # Who answers for a metric company-wide: company alerts go to them, not to the admins.
    owners: dict[str, str] = Field(default_factory=dict)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return None if value is None else _check_currency(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)


class TeamConfig(ConfigModel):
    """A team: its clock, its money, its language and where it talks."""

    id: str
    name: str
    timezone: str
    currency: str
    language: Language
    manager: str | None = None
    channels: ChatIds = ChatIds()
    schedules: ScheduleSettings | None = None  # replaces the organisation's, when given
    holidays: tuple[date, ...] = ()  # the team's own, besides the organisation's
    # Who answers for a metric of the team: its alerts go to them, not to the manager.
    owners: dict[str, str] = Field(default_factory=dict)

    _zone = field_validator("timezone")(_check_zone)
    _currency = field_validator("currency")(_check_currency)


class PersonConfig(ConfigModel):
    """A member of staff and their chat identities."""

    id: str
    name: str
    role: Role
    team: str
    manager: str | None = None
    language: Language | None = None
    email: str | None = None
    hired: date | None = None  # starts their ramp (plans' ramp_percent) of role-wide targets
    chat: ChatIds = ChatIds()


class ShopConfig(ConfigModel):
    """A marketplace shop; `id` is the shop id used in imported data."""

    id: str
    name: str
    platform: ShopPlatform
    region: str
    timezone: str
    currency: str
    team: str | None = None
    # The day the shop opened, in its own time zone: imported rows dated earlier are refused.
    opened: date | None = None

    _zone = field_validator("timezone")(_check_zone)
    _currency = field_validator("currency")(_check_currency)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value not in _regions():
            raise ValueError(f"unknown region {value!r} (expected an ISO 3166 code such as US)")
        return value


class AssignmentConfig(ConfigModel):
    """A person working on a shop from one date (inclusive) until another (inclusive, optional)."""

    person: str
    shop: str
    valid_from: date = Field(alias="from")
    valid_to: date | None = Field(None, alias="to")


class MetricName(ConfigModel):
    """A metric's name in each chat language."""

    en: str
    zh: str
    ja: str | None = None  # Japanese readers read `en` without it


class ImportedConfig(ConfigModel):
    """How an imported daily metric adds up over days and people (docs/metrics.md)."""

    aggregate: Aggregate
    weight: str | None = None  # the companion metric `weighted` weighs each row by
    lag_days: int | None = Field(None, ge=0)  # else settlement_lag_days.metric_values


class MetricConfig(ConfigModel):
    """A custom metric: a formula over other metrics, or a metric imported as daily
    `metric_values` rows (see docs/metrics.md)."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: MetricName
    unit: Unit
    direction: Direction
    formula: str | None = None
    imported: ImportedConfig | None = None
    words: tuple[str, ...] = ()  # what people call it in chat


WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class LiveScheduleConfig(ConfigModel):
    """Which weekdays each host goes live; their other days weigh `off_day_weight`."""

    off_day_weight: Decimal = Field(Decimal(0), ge=0)
    hosts: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("hosts")
    @classmethod
    def _days(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for person, days in value.items():
            for day in days:
                if day not in WEEKDAY_NAMES:
                    hint = _closest(day, list(WEEKDAY_NAMES)) or ", ".join(WEEKDAY_NAMES)
                    raise ValueError(f"{person}: {day!r} is not a weekday ({hint})")
            if not days:
                raise ValueError(f"{person}: needs at least one live weekday")
        return value


class PlanConfig(ConfigModel):
    """A KPI plan: how its targets spread over days, from a date on (docs/metrics.md)."""

    id: str
    effective_from: date
    pilot: bool = False
    weekday_weights: tuple[Decimal, ...] = (Decimal(1),) * 7
    promo_days: dict[str, Decimal] = Field(default_factory=dict)  # older form of `calendar`
    hourly_profile: tuple[Decimal, ...] = (Decimal(1),) * 24
    live_schedule: LiveScheduleConfig | None = None
    # A new hire's role-wide targets, in percent, by month of service from their `hired` date.
    ramp_percent: tuple[Decimal, ...] = ()

    @field_validator("ramp_percent")
    @classmethod
    def _ramp(cls, value: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
        if any(not 0 <= step <= 100 for step in value):
            raise ValueError("ramp steps are percentages from 0 to 100 (first month, second …)")
        return value

    @field_validator("weekday_weights", "hourly_profile")
    @classmethod
    def _weights(cls, value: tuple[Decimal, ...], info: ValidationInfo) -> tuple[Decimal, ...]:
        count, span = (
            (7, "Monday … Sunday")
            if info.field_name == "weekday_weights"
            else (24, "00:00 … 23:00")
        )
        if len(value) != count or any(w < 0 for w in value) or not any(value):
            raise ValueError(f"needs {count} weights ≥ 0 ({span}), not all 0")
        return value

    @field_validator("promo_days")
    @classmethod
    def _promos(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for day, multiplier in value.items():
            try:
                date.fromisoformat(f"2024-{day}")  # a leap year accepts 02-29
            except ValueError:
                raise ValueError(f"{day!r} is not a day of the year (MM-DD)") from None
            if multiplier < 0:
                raise ValueError(f"the multiplier of {day} is negative")
        return value


class CalendarEventConfig(ConfigModel):
    """A named, dated event: its days weigh `weight` and may change alerts (docs/metrics.md)."""

    name: str
    # 2026-11-27, 2026-11-27..2026-11-30, or every year: 11-11, 01-28..02-05
    dates: date | str
    scope: str = "company"  # company, team:<id> or shop:<id>
    kind: Literal["promo", "holiday", "campaign"] = "promo"
    weight: Decimal = Field(Decimal(1), ge=0)
    alerts: Literal["normal", "stricter", "suspend"] = "normal"
    rules: tuple[str, ...] | None = None  # the alert rules it affects (default: all)
    stricter_factor: Decimal = Field(Decimal("0.5"), gt=0, le=1)


class TargetConfig(ConfigModel):
    """A target: a metric's value for an entity over a period, or recurring, under a plan."""

    plan: str
    metric: str
    entity: str
    team: str | None = None  # with entity role:<role>: that role in this team only
    period: str | None = None  # a fixed period: 2026-11, 2026-W47, 2026-11-20, A..B
    every: Literal["day", "week", "month"] | None = None  # or recurring
    starts: date | str | None = Field(None, alias="from")  # default: the plan's start
    until: date | str | None = None  # inclusive; default: as long as the plan
    step: Decimal | str | None = None  # "+5%" compounding, or an amount added each time
    value: Decimal

    @model_validator(mode="after")
    def _one_period(self) -> TargetConfig:
        if (self.period is None) == (self.every is None):
            raise ValueError("give either period (a fixed period) or every (day, week, month)")
        if self.every is None and (self.starts, self.until, self.step) != (None, None, None):
            raise ValueError("from, until and step go with every (a recurring target)")
        if self.step is not None:
            _parse_step(self.step)
        return self


def _parse_step(value: Decimal | str) -> Step:
    """`+5%` (compounding percent per occurrence) or `+50000` (added per occurrence)."""
    text = str(value).strip().replace(" ", "")
    percent = text.endswith("%")
    try:
        number = Decimal(text.removesuffix("%"))
    except ArithmeticError:
        raise ValueError(f"step {value!r} is not +5% or an amount such as +50000") from None
    if not number.is_finite() or number == 0:
        raise ValueError(f"step {value!r} is not +5% or an amount such as +50000")
    if percent and number <= -100:
        raise ValueError(f"a step of {value} would take the target to 0 or below")
    return Step(percent=number) if percent else Step(amount=number)


class ScoreItemConfig(ConfigModel):
    """One weighted metric of a scorecard."""

    metric: str
    weight: Decimal = Field(gt=0)
    cap: Decimal = Field(Decimal("1.2"), gt=0)
    floor: Decimal = Field(Decimal(0), ge=0)


class TierConfig(ConfigModel):
    """A bonus amount for reaching a score."""

    min_score: Decimal = Field(ge=0)
    amount: Decimal = Field(ge=0)


class CommissionConfig(ConfigModel):
    """A commission: percent of a money metric above a threshold."""

    metric: str
    above: Decimal = Field(Decimal(0), ge=0)
    percent: Decimal = Field(gt=0, le=100)


class GateConfig(ConfigModel):
    """A condition for any bonus: the metric within [min, max]."""

    metric: str
    min: Decimal | None = None
    max: Decimal | None = None


class TeamBonusConfig(ConfigModel):
    """A team's own bonus on a role's scorecard; what it leaves out is the scorecard's."""

    currency: str | None = None
    tiers: tuple[TierConfig, ...] | None = None
    commission: CommissionConfig | None = None
    gates: tuple[GateConfig, ...] | None = None

    _currency = field_validator("currency")(
        lambda value: _check_currency(value) if value else value
    )


class BonusConfig(ConfigModel):
    """A scorecard's bonus rules, in `currency` (required when the role's teams report in
    different currencies), with per-team overrides."""

    currency: str | None = None
    tiers: tuple[TierConfig, ...] = ()
    commission: CommissionConfig | None = None
    gates: tuple[GateConfig, ...] = ()
    teams: dict[str, TeamBonusConfig] = {}

    _currency = field_validator("currency")(
        lambda value: _check_currency(value) if value else value
    )


class ScorecardConfig(ConfigModel):
    """A role's scorecard (docs/metrics.md, "Scorecards and bonus")."""

    role: Role
    team: str | None = None  # only for this team (default: every team)
    plan: str | None = None  # only while this plan is in force (default: under any plan)
    items: tuple[ScoreItemConfig, ...]
    bonus: BonusConfig = BonusConfig()


class AlertCondition(ConfigModel):
    """When a rule is breached: exactly one of these."""

    below_pace_percent: Decimal | None = Field(None, gt=0, le=100)  # behind expected-by-now
    below: Decimal | None = None  # the figure under an absolute value
    above: Decimal | None = None  # the figure over an absolute value
    change_percent: Decimal | None = None  # against the previous period: -30 = a 30 % drop
    stale_hours: int | None = Field(None, gt=0)  # no new data from `source` for this long
    source: Literal["orders", "refunds", "live_sessions", "ad_spend", "metric_values"] = "orders"

    @model_validator(mode="after")
    def _one(self) -> AlertCondition:
        given = [
            name
            for name in ("below_pace_percent", "below", "above", "change_percent", "stale_hours")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of below_pace_percent, below, above, change_percent, stale_hours"
            )
        return self

    @property
    def kind(self) -> str:
        """below_pace, below, above, change or stale."""
        if self.below_pace_percent is not None:
            return "below_pace"
        if self.stale_hours is not None:
            return "stale"
        if self.change_percent is not None:
            return "change"
        return "below" if self.below is not None else "above"


class MinSample(ConfigModel):
    """Evaluate only when another metric (e.g. views) reached a minimum in the period."""

    metric: str
    at_least: Decimal


class AlertRuleConfig(ConfigModel):
    """An alert rule (docs in README "Alerts and appeals")."""

    id: str
    plan: str | None = None  # active while this KPI plan is in force (unset: always)
    metric: str = "gmv"
    scope: str  # person:<id>, team:<id>, shop:<id>, role:<role> (each person of it), company
    period: Literal["today", "this_week", "this_month"] = "today"
    condition: AlertCondition
    min_sample: MinSample | None = None
    hold: int = Field(1, ge=1)  # consecutive evaluations the condition must hold
    settled_only: bool = False  # else a provisional breach fires, labelled provisional
    quiet_hours: tuple[str, str] | None = None  # ("23:00", "08:00") in the team's time zone
    repeat_minutes: int = Field(120, ge=1)
    max_repeats: int = Field(2, ge=0)
    escalate_after_minutes: int | None = Field(60, ge=1)  # unset: never escalate
    notify: tuple[Literal["owner", "channel"], ...] = ("owner", "channel")

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: tuple[str, str] | None) -> tuple[str, str] | None:
        if value is not None:
            for clock in value:
                _check_clock(clock)
        return value


_LIST_SECTIONS: dict[str, type[ConfigModel] | None] = {
    "teams": TeamConfig,
    "people": PersonConfig,
    "shops": ShopConfig,
    "assignments": AssignmentConfig,
    "metrics": MetricConfig,
    "plans": PlanConfig,
    "targets": TargetConfig,
    "scorecards": ScorecardConfig,
    "alerts": AlertRuleConfig,
    "calendar": CalendarEventConfig,
}
_MAPPING_SECTIONS = {"organisation": OrganisationSettings}
SECTIONS = (*_MAPPING_SECTIONS, *_LIST_SECTIONS)


@cache
def _regions() -> frozenset[str]:
    return frozenset(
        code for code in Locale("en").territories if isinstance(code, str) and len(code) == 2
    )


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or suspicious) in the configuration, with where and how to fix it."""

    severity: Literal["error", "warning"]
    file: str
    line: int | None
    path: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.severity}: {self.path + ': ' if self.path else ''}{self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConfigError(ValueError):
    """The configuration has errors; `problems` lists all of them."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Organisation:
    """A validated organisation, with lookups by id and by chat identity."""

    settings: OrganisationSettings
    teams: Mapping[str, TeamConfig]
    people: Mapping[str, PersonConfig]
    shops: Mapping[str, ShopConfig]
    assignments: tuple[AssignmentConfig, ...]
    catalogue: Catalogue = field(default_factory=build_catalogue)
    plans: tuple[Plan, ...] = ()
    targets: tuple[Target, ...] = ()
    scorecards: tuple[ScorecardRule, ...] = ()
    alerts: tuple[AlertRuleConfig, ...] = ()
    calendar: tuple[CalendarEvent, ...] = ()
    _by_chat: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def person_by_chat_id(self, platform: str, user_id: str) -> PersonConfig | None:
        """The person whose identity on `platform` is `user_id`, if registered."""
        person_id = self._by_chat.get((platform, user_id))
        return self.people[person_id] if person_id else None

    def currency_of(self, scope: Scope) -> str:
        """The reporting currency of a company, team, shop or person."""
        return entity_currency(scope, self.teams, self.shops, self.people, self.settings.currency)

    def language_of(self, person: PersonConfig) -> Language:
        """A person's language: their own, else their team's."""
        return person.language or self.teams[person.team].language


@dataclass
class _Item:
    section: str
    doc: YamlDocument
    path: KeyPath
    data: Any


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(
        self,
        severity: Literal["error", "warning"],
        doc: YamlDocument | Path,
        path: KeyPath,
        message: str,
        hint: str | None = None,
    ) -> None:
        if isinstance(doc, YamlDocument):
            file, line = doc.file, doc.line_of(path)
        else:
            file, line = doc, None
        self.problems.append(Problem(severity, str(file), line, _format_path(path), message, hint))


def _format_path(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


# An unknown metric is often one imported as metric_values but not declared yet.
_UNKNOWN_METRIC_HINT = (
    "see docs/metrics.md; a metric imported as metric_values is declared under metrics: "
    "with an imported: block"
)


def _closest(word: str, options: Iterable[str]) -> str | None:
    candidates = list(options)
    # Swapped letters (GPB for GBP) first: difflib ranks them below unrelated codes.
    swapped = [c for c in candidates if len(c) == len(word) and sorted(c) == sorted(word)]
    match = swapped or difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"did you mean {match[0]!r}?" if match else None


def config_files(config_dir: Path) -> list[Path]:
    """The files an organisation is read from: every *.yaml (*.yml), then targets*.csv."""
    return [
        *sorted([*config_dir.glob("*.yaml"), *config_dir.glob("*.yml")]),
        *sorted(config_dir.glob("targets*.csv")),
    ]


def check_organisation(config_dir: Path) -> tuple[Organisation | None, list[Problem]]:
    """Load and validate every *.yaml file in `config_dir`; the organisation is None on errors."""
    checker = _Checker()
    every_file = config_files(config_dir)
    files = [f for f in every_file if f.suffix != ".csv"]
    if not config_dir.is_dir():
        checker.add(
            "error",
            config_dir,
            (),
            "configuration directory not found",
            "set KPIBOT_CONFIG_DIR or pass the directory; config/example is a template",
        )
        return None, checker.problems
    if not files:
        checker.add(
            "error",
            config_dir,
            (),
            "no *.yaml files in the configuration directory",
            "copy config/example/*.yaml here to start",
        )
        return None, checker.problems

    items: list[_Item] = []
    org_settings: OrganisationSettings | None = None
    org_doc: YamlDocument | None = None  # where the organisation section was found
    unreadable = False
    for file in files:
        try:
            doc = load_yaml(file)
        except YamlSourceError as exc:
            checker.problems.append(Problem("error", str(exc.file), exc.line, "", exc.message))
            unreadable = True
            continue
        for key_path, _line in doc.duplicate_keys:
            checker.add(
                "error",
                doc,
                key_path,
                "key given twice in the same mapping",
                "YAML keeps only the last one; remove the other",
            )
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            checker.add(
                "error",
                doc,
                (),
                "a config file must be a mapping of sections",
                f"top-level keys are: {', '.join(SECTIONS)}",
            )
            continue
        for section, value in doc.data.items():
            path: KeyPath = (str(section),)
            if section in _MAPPING_SECTIONS:
                if org_settings is not None:
                    checker.add("error", doc, path, f"section {section!r} is given more than once")
                    continue
                parsed = _validate(checker, doc, path, OrganisationSettings, value)
                if isinstance(parsed, OrganisationSettings):
                    org_settings, org_doc = parsed, doc
            elif section in _LIST_SECTIONS:
                if not isinstance(value, list):
                    checker.add(
                        "error",
                        doc,
                        path,
                        f"section {section!r} must be a list",
                        "start each entry with '- '",
                    )
                    continue
                items.extend(_Item(str(section), doc, (*path, i), v) for i, v in enumerate(value))
            else:
                checker.add(
                    "error",
                    doc,
                    path,
                    f"unknown section {section!r}",
                    _closest(str(section), SECTIONS) or f"sections are: {', '.join(SECTIONS)}",
                )

    if unreadable:
        # What a file that cannot be read defines is unknown: checking references against the
        # rest would bury its one error under every "unknown team" it causes.
        return None, checker.problems

    for file in every_file:
        if file.suffix == ".csv":
            items.extend(_csv_targets(checker, file))

    parsed_items: dict[str, list[tuple[_Item, Any]]] = {name: [] for name in _LIST_SECTIONS}
    invalid_ids: set[str] = set()  # entries already reported; references to them are not
    for item in items:
        model = _LIST_SECTIONS[item.section]
        if model is None:
            if isinstance(item.data, dict):
                parsed_items[item.section].append((item, item.data))
            else:
                checker.add("error", item.doc, item.path, "each entry must be a mapping")
            continue
        result = _validate(checker, item.doc, item.path, model, item.data)
        if result is not None:
            parsed_items[item.section].append((item, result))
        elif isinstance(item.data, dict) and isinstance(item.data.get("id"), str):
            invalid_ids.add(item.data["id"])

    teams = _unique(checker, parsed_items["teams"], "team")
    people = _unique(checker, parsed_items["people"], "person")
    shops = _unique(checker, parsed_items["shops"], "shop")
    _check_references(checker, teams, people, shops, parsed_items["assignments"], invalid_ids)
    by_chat = _check_chat_ids(checker, people)
    catalogue = _check_metrics(checker, parsed_items["metrics"])
    _check_owners(checker, teams, people, catalogue)
    if org_settings is not None and org_doc is not None:
        _check_company_owners(checker, org_doc, org_settings, people, catalogue)
    rule_ids = {c.id for _, c in parsed_items["alerts"]}
    calendar = _check_calendar(checker, parsed_items["calendar"], teams, shops, people, rule_ids)
    plans = _check_plans(checker, parsed_items["plans"], people, calendar)
    # A rule naming a plan that is given but broken is not reported again.
    plan_ids = {c.id for _, c in parsed_items["plans"]} | invalid_ids
    scorecards = _check_scorecards(
        checker, parsed_items["scorecards"], catalogue, teams, people, plan_ids
    )
    alerts = _check_alerts(
        checker, parsed_items["alerts"], catalogue, plan_ids, teams, shops, people
    )
    targets = _check_targets(
        checker,
        parsed_items["targets"],
        plans,
        catalogue,
        teams,
        shops,
        people,
        org_settings,
        invalid_ids,
    )
    if org_settings is None:
        checker.add(
            "warning",
            config_dir,
            ("organisation",),
            "no 'organisation' section",
            "defaults apply: default_language zh, week_start monday",
        )
        org_settings = OrganisationSettings(name=config_dir.resolve().name)

    if any(p.severity == "error" for p in checker.problems):
        return None, checker.problems
    organisation = Organisation(
        settings=org_settings,
        teams={k: v for k, (_, v) in teams.items()},
        people={k: v for k, (_, v) in people.items()},
        shops={k: v for k, (_, v) in shops.items()},
        assignments=tuple(a for _, a in parsed_items["assignments"]),
        catalogue=catalogue,
        plans=plans,
        targets=targets,
        scorecards=scorecards,
        alerts=alerts,
        calendar=calendar,
        _by_chat=by_chat,
    )
    return organisation, checker.problems


def load_organisation(config_dir: Path, cache_dir: Path | None = None) -> Organisation:
    """The validated organisation in `config_dir`; raises ConfigError listing every error.

    With `cache_dir`, a checked organisation is kept there, keyed by the bytes of every file
    (kpi_engine/config_cache.py): loading unchanged files again skips parsing and checking.
    """
    from kpi_engine import config_cache

    key: bytes | None = None
    if cache_dir is not None and config_dir.is_dir():
        try:
            key = config_cache.cache_key(config_dir, config_files(config_dir))
        except OSError:
            key = None
        if key is not None:
            cached = config_cache.read_cached(config_cache.cache_file(cache_dir, config_dir), key)
            if cached is not None:
                return cached
    organisation, problems = check_organisation(config_dir)
    if organisation is None:
        raise ConfigError([p for p in problems if p.severity == "error"])
    if key is not None and cache_dir is not None:
        # Stored only if no file changed while it was checked: the key names what was read.
        try:
            unchanged = config_cache.cache_key(config_dir, config_files(config_dir)) == key
        except OSError:
            unchanged = False
        if unchanged:
            file = config_cache.cache_file(cache_dir, config_dir)
            config_cache.write_cached(file, key, organisation)
    return organisation


def _validate(
    checker: _Checker, doc: YamlDocument, path: KeyPath, model: type[ConfigModel], data: Any
) -> ConfigModel | None:
    if not isinstance(data, dict):
        checker.add("error", doc, path, "each entry must be a mapping of keys to values")
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        allowed = [f.alias or name for name, f in model.model_fields.items()]
        for error in exc.errors():
            loc = tuple(error["loc"])
            where = (*path, *loc)
            kind = error["type"]
            if kind == "extra_forbidden":
                key = str(loc[-1])
                options = allowed if len(loc) == 1 else list(CHAT_PLATFORMS)
                checker.add(
                    "error",
                    doc,
                    where,
                    f"unknown key {key!r}",
                    _closest(key, options) or f"allowed keys: {', '.join(options)}",
                )
            elif kind == "missing":
                checker.add("error", doc, where, f"missing required key {loc[-1]!r}")
            else:
                message = str(error["msg"]).removeprefix("Value error, ")
                hint = _hint_for(str(loc[-1]), error["input"]) if loc else None
                checker.add("error", doc, where, message, hint)
        return None


def _hint_for(key: str, value: Any) -> str | None:
    if key == "timezone" and isinstance(value, str):
        return _closest(value, zone_names()) or "use an IANA name such as Asia/Shanghai"
    if key == "currency" and isinstance(value, str):
        return _closest(value.upper(), currency_codes()) or "use an ISO 4217 code such as USD"
    if key == "role" and isinstance(value, str):
        return _closest(value, ROLES) or f"roles: {', '.join(ROLES)}"
    return None


def _unique(
    checker: _Checker, entries: list[tuple[_Item, Any]], noun: str
) -> dict[str, tuple[_Item, Any]]:
    seen: dict[str, tuple[_Item, Any]] = {}
    for item, value in entries:
        if value.id in seen:
            first = seen[value.id][0]
            checker.add(
                "error",
                item.doc,
                (*item.path, "id"),
                f"duplicate {noun} id {value.id!r}",
                f"first defined at {first.doc.file}:{first.doc.line_of(first.path)}",
            )
        else:
            seen[value.id] = (item, value)
    return seen


def _check_references(
    checker: _Checker,
    teams: dict[str, tuple[_Item, TeamConfig]],
    people: dict[str, tuple[_Item, PersonConfig]],
    shops: dict[str, tuple[_Item, ShopConfig]],
    assignments: list[tuple[_Item, AssignmentConfig]],
    invalid_ids: set[str],
) -> None:
    def ref(item: _Item, key: str, value: str | None, known: Mapping[str, Any], noun: str) -> bool:
        if value is None or value in known:
            return True
        if value in invalid_ids:
            return False
        checker.add(
            "error",
            item.doc,
            (*item.path, key),
            f"unknown {noun} {value!r}",
            _closest(value, [*known, *invalid_ids]) or f"define the {noun} first",
        )
        return False

    for item, team in teams.values():
        known = ref(item, "manager", team.manager, people, "person")
        if known and team.manager and people[team.manager][1].role not in ("manager", "admin"):
            checker.add(
                "warning",
                item.doc,
                (*item.path, "manager"),
                f"team manager {team.manager!r} has role "
                f"{people[team.manager][1].role!r}, not manager or admin",
            )
    for item, person in people.values():
        ref(item, "team", person.team, teams, "team")
        ref(item, "manager", person.manager, people, "person")
        if person.manager == person.id:
            checker.add(
                "error", item.doc, (*item.path, "manager"), "a person cannot manage themself"
            )
    for item, shop in shops.values():
        ref(item, "team", shop.team, teams, "team")
    for item, assignment in assignments:
        ref(item, "person", assignment.person, people, "person")
        ref(item, "shop", assignment.shop, shops, "shop")
        if assignment.valid_to is not None and assignment.valid_to < assignment.valid_from:
            checker.add("error", item.doc, (*item.path, "to"), "assignment ends before it starts")
    _check_manager_cycles(checker, people)
    roles = Counter(p.role for _, p in people.values())
    if people and not (roles["admin"]):
        checker.add(
            "warning",
            next(iter(people.values()))[0].doc,
            ("people",),
            "nobody has the admin role",
            "give at least one person role: admin",
        )


def _check_owners(
    checker: _Checker,
    teams: dict[str, tuple[_Item, TeamConfig]],
    people: dict[str, tuple[_Item, PersonConfig]],
    catalogue: Catalogue,
) -> None:
    """A team's metric owners: known metrics, and people of that team."""
    for item, team in teams.values():
        for metric, person in team.owners.items():
            at = (*item.path, "owners", metric)
            if catalogue.get(metric) is None:
                checker.add(
                    "error",
                    item.doc,
                    at,
                    f"unknown metric {metric!r}",
                    _closest(metric, catalogue.metrics) or _UNKNOWN_METRIC_HINT,
                )
            elif person not in people:
                checker.add(
                    "error",
                    item.doc,
                    at,
                    f"unknown person {person!r}",
                    _closest(person, people) or "define the person first",
                )
            elif people[person][1].team != team.id:
                checker.add(
                    "error",
                    item.doc,
                    at,
                    f"{person!r} is not in team {team.id!r}",
                    "a metric's owner is one of the team's people",
                )


def _check_company_owners(
    checker: _Checker,
    doc: YamlDocument,
    settings: OrganisationSettings,
    people: dict[str, tuple[_Item, PersonConfig]],
    catalogue: Catalogue,
) -> None:
    """The company's metric owners: known metrics and people (of any team)."""
    for metric, person in settings.owners.items():
        at = ("organisation", "owners", metric)
        if catalogue.get(metric) is None:
            checker.add(
                "error",
                doc,
                at,
                f"unknown metric {metric!r}",
                _closest(metric, catalogue.metrics) or _UNKNOWN_METRIC_HINT,
            )
        elif person not in people:
            checker.add(
                "error",
                doc,
                at,
                f"unknown person {person!r}",
                _closest(person, people) or "define the person first",
            )


def _check_manager_cycles(checker: _Checker, people: dict[str, tuple[_Item, PersonConfig]]) -> None:
    reported: set[str] = set()
    for start in people:
        chain: list[str] = []
        current: str | None = start
        while current is not None and current in people and current not in chain:
            chain.append(current)
            current = people[current][1].manager
        if current is not None and current in chain and current not in reported:
            cycle = chain[chain.index(current) :]
            reported.update(cycle)
            item = people[current][0]
            checker.add(
                "error",
                item.doc,
                (*item.path, "manager"),
                f"managers form a cycle: {' -> '.join([*cycle, current])}",
            )


def _check_chat_ids(
    checker: _Checker, people: dict[str, tuple[_Item, PersonConfig]]
) -> dict[tuple[str, str], str]:
    by_chat: dict[tuple[str, str], str] = {}
    for item, person in people.values():
        for platform in CHAT_PLATFORMS:
            user_id = person.chat.get(platform)
            if user_id is None:
                continue
            if (platform, user_id) in by_chat:
                checker.add(
                    "error",
                    item.doc,
                    (*item.path, "chat", platform),
                    f"{platform} id {user_id!r} already belongs to "
                    f"{by_chat[(platform, user_id)]!r}",
                )
            else:
                by_chat[(platform, user_id)] = person.id
    return by_chat


def _check_metrics(checker: _Checker, entries: list[tuple[_Item, Any]]) -> Catalogue:
    """Custom metrics: each formula parses, uses known metrics, and no cycle forms."""
    builtin = build_catalogue()
    taken = {*builtin.metrics, *builtin.aliases}
    customs: dict[str, tuple[_Item, Metric]] = {}
    for item, config in entries:
        assert isinstance(config, MetricConfig)
        if config.key in taken or config.key in customs:
            what = "a built-in metric" if config.key in taken else "defined twice"
            checker.add(
                "error",
                item.doc,
                (*item.path, "key"),
                f"metric {config.key!r} is {what}",
                "choose another key",
            )
            continue
        if (config.formula is None) == (config.imported is None):
            checker.add(
                "error",
                item.doc,
                item.path,
                "a metric has either a formula or an imported block",
                "formula: for a formula over other metrics, imported: for metric_values rows",
            )
            continue
        if config.imported is not None:
            imported = _imported_spec(checker, item, config, entries)
            if imported is not None:
                customs[config.key] = (
                    item,
                    imported_metric(
                        config.key,
                        config.name.en,
                        config.name.zh,
                        config.unit,
                        config.direction,
                        imported,
                        config.words,
                        name_ja=config.name.ja,
                    ),
                )
            continue
        assert config.formula is not None
        try:
            metric = custom_metric(
                config.key,
                config.name.en,
                config.name.zh,
                config.unit,
                config.direction,
                config.formula,
                config.words,
                name_ja=config.name.ja,
            )
        except MetricError as exc:
            checker.add(
                "error",
                item.doc,
                (*item.path, "formula"),
                f"{exc} (column {(exc.column or 0) + 1})",
                "use + - * / ( ), numbers and metric keys",
            )
            continue
        customs[config.key] = (item, metric)
    known = {*builtin.metrics, *customs}  # formulas name metrics by key, not by alias
    for key, (item, metric) in list(customs.items()):
        if metric.formula is None:
            continue  # imported
        unknown = sorted(metric.formula.references - known)
        for name in unknown:
            checker.add(
                "error",
                item.doc,
                (*item.path, "formula"),
                f"unknown metric {name!r}",
                _closest(name, known) or "see docs/metrics.md for the metric keys",
            )
        if unknown:
            del customs[key]
    while True:
        try:
            return build_catalogue(metric for _, metric in customs.values())
        except MetricError as exc:
            # Only custom metrics can be at fault here: report on each, drop them, try again.
            for member in dict.fromkeys(exc.cycle[:-1] or (exc.metric,)):
                item = customs.pop(member)[0]
                checker.add("error", item.doc, (*item.path, "formula"), str(exc))


def _imported_spec(
    checker: _Checker, item: _Item, config: MetricConfig, entries: list[tuple[_Item, Any]]
) -> Imported | None:
    """An imported metric's aggregation: `weighted` names another imported metric as its
    weight, and money is never imported (values carry no currency)."""
    spec = config.imported
    assert spec is not None
    at = (*item.path, "imported")
    if config.unit == "money":
        checker.add(
            "error",
            item.doc,
            (*item.path, "unit"),
            "an imported metric cannot be money: metric_values rows carry no currency",
            "import money as orders or ad_spend, or use count or decimal",
        )
        return None
    weights = {
        other.key
        for _, other in entries
        if isinstance(other, MetricConfig) and other.imported is not None and other is not config
    }
    if spec.aggregate == "weighted" and spec.weight not in weights:
        checker.add(
            "error",
            item.doc,
            (*at, "weight"),
            f"weighted needs the key of another imported metric, not {spec.weight!r}",
            _closest(spec.weight or "", weights) or "declare the companion count as a metric",
        )
        return None
    if spec.aggregate != "weighted" and spec.weight is not None:
        checker.add(
            "error",
            item.doc,
            (*at, "weight"),
            "only aggregate: weighted takes a weight",
            "aggregate: weighted",
        )
        return None
    return Imported(spec.aggregate, spec.weight, spec.lag_days)


def _check_calendar(
    checker: _Checker,
    entries: list[tuple[_Item, Any]],
    teams: Mapping[str, tuple[_Item, TeamConfig]],
    shops: Mapping[str, tuple[_Item, ShopConfig]],
    people: Mapping[str, tuple[_Item, PersonConfig]],
    rule_ids: set[str],
) -> tuple[CalendarEvent, ...]:
    """Events with readable dates, a known scope and known alert rules."""
    events = []
    for item, config in entries:
        assert isinstance(config, CalendarEventConfig)
        first = last = None
        yearly = None
        text = config.dates if isinstance(config.dates, str) else config.dates.isoformat()
        start, _, end = text.strip().partition("..")
        end = end or start
        try:
            if len(start) == 5 and len(end) == 5:  # MM-DD: every year
                for day in (start, end):
                    date.fromisoformat(f"2024-{day}")  # a leap year accepts 02-29
                yearly = (start, end)
            else:
                first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError:
            checker.add(
                "error",
                item.doc,
                (*item.path, "dates"),
                f"{text!r} is not a date, a range or a day of the year",
                "use 2026-11-27, 2026-11-27..2026-11-30, 11-11 or 01-28..02-05 (every year)",
            )
            continue
        if first is not None and last is not None and last < first:
            checker.add("error", item.doc, (*item.path, "dates"), "the event ends before it starts")
            continue
        kind, _, ident = config.scope.partition(":")
        scopes: frozenset[Scope] | None = None
        if kind == "team" and ident in teams:
            scopes = frozenset(
                [
                    Scope("team", ident),
                    *(Scope("person", p) for p, (_, c) in people.items() if c.team == ident),
                    *(Scope("shop", s) for s, (_, c) in shops.items() if c.team == ident),
                ]
            )
        elif kind == "shop" and ident in shops:
            scopes = frozenset([Scope("shop", ident)])
        elif config.scope != "company":
            known = [*(f"team:{t}" for t in teams), *(f"shop:{s}" for s in shops)]
            checker.add(
                "error",
                item.doc,
                (*item.path, "scope"),
                f"unknown scope {config.scope!r}",
                _closest(config.scope, known) or "use company, team:<id> or shop:<id>",
            )
            continue
        unknown = [rule for rule in config.rules or () if rule not in rule_ids]
        if unknown:
            checker.add(
                "error",
                item.doc,
                (*item.path, "rules"),
                f"unknown alert rule {unknown[0]!r}",
                _closest(unknown[0], rule_ids) or "see the alerts section",
            )
            continue
        events.append(
            CalendarEvent(
                config.name,
                first,
                last,
                yearly,
                scopes,
                config.scope,
                config.kind,
                config.weight,
                config.alerts,
                config.rules,
                config.stricter_factor,
            )
        )
    return tuple(events)


def _check_plans(
    checker: _Checker,
    entries: list[tuple[_Item, Any]],
    people: Mapping[str, tuple[_Item, PersonConfig]],
    calendar: tuple[CalendarEvent, ...],
) -> tuple[Plan, ...]:
    """Plans with unique ids and start dates, and live schedules of known people."""
    plans: dict[str, Plan] = {}
    starts: dict[date, str] = {}
    for item, config in entries:
        assert isinstance(config, PlanConfig)
        schedule = config.live_schedule
        live_days: dict[str, frozenset[int]] = {}
        for person, days in (schedule.hosts if schedule else {}).items():
            if person not in people:
                checker.add(
                    "error",
                    item.doc,
                    (*item.path, "live_schedule", "hosts", person),
                    f"unknown person {person!r}",
                    _closest(person, list(people)) or "define the person first",
                )
                continue
            live_days[person] = frozenset(WEEKDAY_NAMES.index(d) for d in days)
        if config.id in plans:
            checker.add("error", item.doc, (*item.path, "id"), f"duplicate plan id {config.id!r}")
            continue
        if config.effective_from in starts:
            checker.add(
                "error",
                item.doc,
                (*item.path, "effective_from"),
                f"plan {starts[config.effective_from]!r} starts on the same day",
                "one plan is in force on any day: give each its own start date",
            )
            continue
        starts[config.effective_from] = config.id
        plans[config.id] = Plan(
            config.id,
            config.effective_from,
            config.pilot,
            config.weekday_weights,
            dict(config.promo_days),
            config.hourly_profile,
            live_days,
            schedule.off_day_weight if schedule else Decimal(0),
            calendar,
            config.ramp_percent,
        )
    return tuple(plans.values())


_RELATIVE = (
    "today",
    "yesterday",
    "this_week",
    "week",
    "last_week",
    "this_month",
    "month",
    "last_month",
    "last_",
)


def _check_targets(
    checker: _Checker,
    entries: list[tuple[_Item, Any]],
    plans: tuple[Plan, ...],
    catalogue: Catalogue,
    teams: dict[str, tuple[_Item, TeamConfig]],
    shops: dict[str, tuple[_Item, ShopConfig]],
    people: dict[str, tuple[_Item, PersonConfig]],
    settings: OrganisationSettings | None,
    invalid_ids: set[str],
) -> tuple[Target, ...]:
    """Targets that name a plan, a metric, an entity and an absolute period; roll-ups checked.

    A role-wide target (`entity: role:streamer`, optionally with `team:`) becomes a default
    target for each person of that role (in that team), below their own targets.
    """
    by_id = {plan.id: plan for plan in plans}
    plan_ids = set(by_id)
    targets: list[tuple[_Item, Target]] = []
    week_start = settings.week_start if settings else "monday"
    plain_teams = {k: v for k, (_, v) in teams.items()}
    plain_shops = {k: v for k, (_, v) in shops.items()}
    plain_people = {k: v for k, (_, v) in people.items()}
    for item, config in entries:
        assert isinstance(config, TargetConfig)
        ok = config.plan not in invalid_ids  # a plan with errors is reported once, not per target
        if ok and config.plan not in plan_ids:
            checker.add(
                "error",
                item.doc,
                (*item.path, "plan"),
                f"unknown plan {config.plan!r}",
                _closest(config.plan, plan_ids) or "define it in the plans section",
            )
            ok = False
        metric = catalogue.get(config.metric)
        if metric is None:
            checker.add(
                "error",
                item.doc,
                (*item.path, "metric"),
                f"unknown metric {config.metric!r}",
                _closest(config.metric, catalogue.metrics) or _UNKNOWN_METRIC_HINT,
            )
            ok = False
        subjects = _target_subjects(checker, item, config, teams, shops, people)
        if subjects is None:
            continue
        if not subjects:
            checker.add(
                "warning",
                item.doc,
                (*item.path, "entity"),
                f"nobody has the role {config.entity.partition(':')[2]!r}"
                + (f" in team {config.team!r}" if config.team else ""),
            )
            continue
        parsed: dict[str, tuple[Period, Recurrence | None] | None] = {}  # by zone
        for scope, default, hired in subjects:
            timezone = _entity_zone(scope, teams, shops, people)
            currency = entity_currency(
                scope,
                plain_teams,
                plain_shops,
                plain_people,
                settings.currency if settings else None,
            )
            key = f"{timezone} {currency}"
            if key not in parsed:  # errors are reported once, for the first person
                parsed[key] = _target_period(
                    checker, item, config, by_id, metric, timezone, currency, week_start
                )
            found = parsed[key]
            if found is None:
                break
            if ok and metric is not None:
                period, recurrence = found
                targets.append(
                    (
                        item,
                        Target(
                            config.plan,
                            metric.key,
                            scope,
                            period,
                            config.value,
                            recurrence,
                            default,
                            hired,
                        ),
                    )
                )
    targets = _check_overlaps(checker, targets, plans)
    _check_rollups(checker, targets, people)
    return tuple(target for _, target in targets)


def _target_subjects(
    checker: _Checker,
    item: _Item,
    config: TargetConfig,
    teams: dict[str, tuple[_Item, TeamConfig]],
    shops: dict[str, tuple[_Item, ShopConfig]],
    people: dict[str, tuple[_Item, PersonConfig]],
) -> list[tuple[Scope, str | None, date | None]] | None:
    """Whose target it is: (scope, role-default label, hire date) for each; None on errors."""
    kind, _, role = config.entity.strip().partition(":")
    if kind == "role":
        if role not in ROLES:
            checker.add(
                "error",
                item.doc,
                (*item.path, "entity"),
                f"unknown role {role!r}",
                _closest(role, ROLES) or f"roles: {', '.join(ROLES)}",
            )
            return None
        if config.team is not None and config.team not in teams:
            checker.add(
                "error",
                item.doc,
                (*item.path, "team"),
                f"unknown team {config.team!r}",
                _closest(config.team, teams) or "define the team first",
            )
            return None
        label = f"role:{role}" + (f" in team:{config.team}" if config.team else "")
        return [
            (Scope("person", pid), label, person.hired)
            for pid, (_, person) in people.items()
            if person.role == role and config.team in (None, person.team)
        ]
    if config.team is not None:
        checker.add(
            "error",
            item.doc,
            (*item.path, "team"),
            "team goes with a role-wide target (entity: role:<role>)",
        )
        return None
    try:
        scope = parse_scope(config.entity, teams=teams, shops=shops, people=people)
    except ScopeError as exc:
        checker.add("error", item.doc, (*item.path, "entity"), str(exc))
        return None
    return [(scope, None, None)]


def _target_period(
    checker: _Checker,
    item: _Item,
    config: TargetConfig,
    by_id: Mapping[str, Plan],
    metric: Metric | None,
    timezone: str,
    currency: str,
    week_start: Literal["monday", "sunday"],
) -> tuple[Period, Recurrence | None] | None:
    """A target's fixed period, or its first occurrence and recurrence, in an entity's zone."""
    if config.every is None:
        assert config.period is not None  # the model requires period or every
        period = _fixed_period(checker, item, "period", config.period, timezone, week_start)
        return None if period is None else (period, None)
    starts = config.starts
    if starts is None:
        plan = by_id.get(config.plan)
        if plan is None:  # an unknown plan, reported above
            return None
        starts = plan.effective_from
    first = _fixed_period(checker, item, "from", starts, timezone, week_start)
    last = (
        None
        if config.until is None
        else _fixed_period(checker, item, "until", config.until, timezone, week_start)
    )
    if first is None or (config.until is not None and last is None):
        return None
    if last is not None and last.last < first.first:
        checker.add("error", item.doc, (*item.path, "until"), "the target ends before it starts")
        return None
    recurrence = Recurrence(
        config.every,
        first.first,
        None if last is None else last.last,
        None if config.step is None else _parse_step(config.step),
        _quantum(metric.unit if metric is not None else "money", currency),
        week_start,
    )
    return recurrence.period_of(first.first, timezone), recurrence


def _check_overlaps(
    checker: _Checker, targets: list[tuple[_Item, Target]], plans: tuple[Plan, ...]
) -> list[tuple[_Item, Target]]:
    """Two targets for one metric, entity and period under one plan are an error (never
    summed); a target its plan is never in force for is a warning."""
    kept: list[tuple[_Item, Target]] = []
    seen: dict[tuple[str, str, Scope, str | None], list[tuple[_Item, Target]]] = {}
    reported: set[int] = set()  # a role-wide target's item is reported once, not per person
    for item, target in targets:
        key = (target.plan, target.metric, target.scope, target.default)
        others = seen.setdefault(key, [])
        clash = next(
            (first for first, other in others if _same_days(target, other)),
            None,
        )
        if clash is not None:
            if id(item) in reported:
                continue
            reported.add(id(item))
            entity = f"{target.scope.kind}:{target.scope.id}" if target.scope.id else "company"
            checker.add(
                "error",
                item.doc,
                item.path,
                f"a second {target.metric} target for {entity} in {target.label()} under plan "
                f"{target.plan!r}",
                f"first given at {clash.doc.file}:{clash.doc.line_of(clash.path)}; keep one "
                "(targets are never added up)",
            )
            continue
        others.append((item, target))
        kept.append((item, target))
        first, last = _plan_days(target.plan, plans)
        start = target.recurrence.start if target.recurrence else target.period.first
        end = target.recurrence.until if target.recurrence else target.period.last
        if (
            first is not None
            and ((last is not None and start > last) or (end is not None and end < first))
            and id(item) not in reported
        ):
            reported.add(id(item))
            span = f"{first}…{last or ''}"
            checker.add(
                "warning",
                item.doc,
                item.path,
                f"never applies: plan {target.plan!r} is in force {span}, outside the target's "
                "days",
                "a target counts only on the days its own plan is in force",
            )
    return kept


def _same_days(one: Target, other: Target) -> bool:
    """Duplicates: the same fixed period, or two recurring targets whose dates overlap."""
    if one.recurrence is None or other.recurrence is None:
        return one.recurrence is None and other.recurrence is None and one.period == other.period
    a, b = one.recurrence, other.recurrence
    return (a.until is None or b.start <= a.until) and (b.until is None or a.start <= b.until)


def _plan_days(plan_id: str, plans: tuple[Plan, ...]) -> tuple[date | None, date | None]:
    """The first and last day a plan is in force (last None: until further notice)."""
    ordered = sorted(plans, key=lambda p: p.effective_from)
    for index, plan in enumerate(ordered):
        if plan.id == plan_id:
            following = ordered[index + 1].effective_from if index + 1 < len(ordered) else None
            return plan.effective_from, following and following - timedelta(days=1)
    return None, None


def _fixed_period(
    checker: _Checker,
    item: _Item,
    key: str,
    text: date | str,
    timezone: str,
    week_start: Literal["monday", "sunday"],
) -> Period | None:
    """A target's fixed period (or a recurring one's `from`/`until`), located when wrong."""
    if isinstance(text, date):
        return day_of(text, timezone)
    if text.strip().lower().startswith(_RELATIVE):
        checker.add(
            "error",
            item.doc,
            (*item.path, key),
            f"{text!r} moves with time; a target needs a fixed period",
            "use 2026-11, 2026-W47, 2026-11-20 or 2026-11-01..2026-11-15",
        )
        return None
    try:
        return parse_period(text, now=0, timezone=timezone, week_start=week_start)
    except PeriodError as exc:
        checker.add("error", item.doc, (*item.path, key), str(exc))
        return None


def _quantum(unit: str, currency: str) -> Decimal:
    """What a stepped target is rounded to: the currency's minor unit, whole counts and
    seconds, a millionth of a ratio."""
    if unit == "money":
        return Decimal(1).scaleb(-minor_exponent(currency))
    if unit in ("count", "seconds"):
        return Decimal(1)
    return Decimal("0.000001")


def entity_currency(
    scope: Scope,
    teams: Mapping[str, TeamConfig],
    shops: Mapping[str, ShopConfig],
    people: Mapping[str, PersonConfig],
    company: str | None,
) -> str:
    """The reporting currency of an entity: a shop's own, a person's team's, a team's, the
    company's (`organisation.currency`, else the first team's)."""
    if scope.kind == "shop":
        return shops[scope.id].currency
    team = people[scope.id].team if scope.kind == "person" else scope.id
    if scope.kind != "company" and team in teams:
        return teams[team].currency
    return company or (next(iter(teams.values())).currency if teams else "CNY")


def _entity_zone(
    scope: Scope,
    teams: dict[str, tuple[_Item, TeamConfig]],
    shops: dict[str, tuple[_Item, ShopConfig]],
    people: dict[str, tuple[_Item, PersonConfig]],
) -> str:
    if scope.kind == "shop":
        return shops[scope.id][1].timezone
    if scope.kind == "person":
        team = people[scope.id][1].team
        return teams[team][1].timezone if team in teams else "UTC"
    if scope.kind == "team":
        return teams[scope.id][1].timezone
    return next(iter(teams.values()))[1].timezone if teams else "UTC"


def _check_rollups(
    checker: _Checker,
    targets: list[tuple[_Item, Target]],
    people: dict[str, tuple[_Item, PersonConfig]],
) -> None:
    """Warn where a team's target differs from the sum of its members' for the same period."""
    members: dict[tuple[str, str, str, object, object], Decimal] = {}
    for _, target in targets:
        if target.scope.kind == "person" and target.default is None:
            team = people[target.scope.id][1].team
            key = (target.plan, target.metric, team, target.period, target.recurrence)
            members[key] = members.get(key, Decimal(0)) + target.value
    for item, target in targets:
        if target.scope.kind != "team":
            continue
        key = (target.plan, target.metric, target.scope.id, target.period, target.recurrence)
        total = members.get(key)
        if total is not None and total != target.value:
            checker.add(
                "warning",
                item.doc,
                (*item.path, "value"),
                f"team target {target.value} differs from the sum of its members' targets, {total}",
                "fine if intended (e.g. a stretch above the members' sum)",
            )


def _check_scorecards(
    checker: _Checker,
    entries: list[tuple[_Item, Any]],
    catalogue: Catalogue,
    teams: dict[str, tuple[_Item, TeamConfig]],
    people: dict[str, tuple[_Item, PersonConfig]],
    plan_ids: set[str],
) -> tuple[ScorecardRule, ...]:
    """One scorecard per role, team and plan; known metrics, teams and plans; weights
    summing to 100; not too many items; bonus money with an explicit currency wherever the
    role's teams report in different ones."""
    rules: dict[tuple[str, str | None, str | None], ScorecardRule] = {}
    keys: set[tuple[str, str | None, str | None]] = set()  # also those with errors
    for item, config in entries:
        assert isinstance(config, ScorecardConfig)
        key = (config.role, config.team, config.plan)
        if key in keys:
            where = "".join(
                f" {name} {value!r}"
                for name, value in (("team", key[1]), ("plan", key[2]))
                if value
            )
            checker.add(
                "error",
                item.doc,
                (*item.path, "role"),
                f"a scorecard for {config.role!r}{where} is already defined",
            )
            continue
        keys.add(key)
        ok = True
        for name, value, known in (("team", config.team, teams), ("plan", config.plan, plan_ids)):
            if value is not None and value not in known:
                checker.add(
                    "error",
                    item.doc,
                    (*item.path, name),
                    f"unknown {name} {value!r}",
                    _closest(value, known) or f"define the {name} first",
                )
                ok = False
        metrics: list[tuple[KeyPath, str]] = [
            (("items", i, "metric"), entry.metric) for i, entry in enumerate(config.items)
        ]
        metrics += [
            (("bonus", "gates", i, "metric"), g.metric) for i, g in enumerate(config.bonus.gates)
        ]
        if config.bonus.commission is not None:
            metrics.append((("bonus", "commission", "metric"), config.bonus.commission.metric))
        for team_id, own in config.bonus.teams.items():
            if team_id not in teams:
                checker.add(
                    "error",
                    item.doc,
                    (*item.path, "bonus", "teams", team_id),
                    f"unknown team {team_id!r}",
                    _closest(team_id, teams) or "use a team id from the teams section",
                )
                ok = False
            metrics += [
                (("bonus", "teams", team_id, "gates", i, "metric"), g.metric)
                for i, g in enumerate(own.gates or ())
            ]
            if own.commission is not None:
                at: KeyPath = ("bonus", "teams", team_id, "commission", "metric")
                metrics.append((at, own.commission.metric))
        if not _bonus_currency_ok(config, teams, people):
            found = sorted(
                {
                    teams[p.team][1].currency
                    for _, p in people.values()
                    if p.role == config.role and p.team in teams
                }
            )
            checker.add(
                "error",
                item.doc,
                (*item.path, "bonus", "currency"),
                f"bonus amounts without a currency, but the {config.role!r} people's teams "
                f"report in {' and '.join(found)}",
                "add bonus.currency (e.g. currency: CNY), or a currency per team under bonus.teams",
            )
            ok = False
        for path, name in metrics:
            if catalogue.get(name) is None:
                checker.add(
                    "error",
                    item.doc,
                    (*item.path, *path),
                    f"unknown metric {name!r}",
                    _closest(name, catalogue.metrics) or _UNKNOWN_METRIC_HINT,
                )
                ok = False
        total = sum((entry.weight for entry in config.items), Decimal(0))
        if total != 100:
            checker.add(
                "error", item.doc, (*item.path, "items"), f"weights add up to {total}, not 100"
            )
            ok = False
        if len(config.items) > MAX_ITEMS_BEFORE_WARNING:
            checker.add(
                "warning",
                item.doc,
                (*item.path, "items"),
                f"{len(config.items)} KPIs for one role",
                f"more than {MAX_ITEMS_BEFORE_WARNING} dilutes attention; keep the few that matter",
            )
        if not ok:
            continue
        commission = config.bonus.commission
        overrides = {
            team_id: _team_bonus(config.bonus, own, catalogue)
            for team_id, own in config.bonus.teams.items()
        }
        rules[key] = ScorecardRule(
            role=config.role,
            items=tuple(
                ScoreItem(_key(catalogue, e.metric), e.weight, e.cap, e.floor) for e in config.items
            ),
            tiers=tuple(Tier(t.min_score, t.amount) for t in config.bonus.tiers),
            commission=None
            if commission is None
            else Commission(
                _key(catalogue, commission.metric), commission.above, commission.percent
            ),
            gates=tuple(Gate(_key(catalogue, g.metric), g.min, g.max) for g in config.bonus.gates),
            team=config.team,
            plan=config.plan,
            currency=config.bonus.currency,
            teams=overrides or None,
        )
    return tuple(rules.values())


def _bonus_currency_ok(
    config: ScorecardConfig,
    teams: dict[str, tuple[_Item, TeamConfig]],
    people: dict[str, tuple[_Item, PersonConfig]],
) -> bool:
    """True unless bonus money (tiers or a commission) has no currency for people whose teams
    report in different currencies: the same "4000" must not pay 4,000 USD in one team and
    4,000 CNY in another."""
    bonus = config.bonus
    currencies = set()
    for _, person in people.values():
        if person.role != config.role or person.team not in teams:
            continue
        own = bonus.teams.get(person.team)
        money = bool(bonus.tiers or bonus.commission)
        currency = bonus.currency
        if own is not None:
            money = bool(
                (own.tiers if own.tiers is not None else bonus.tiers)
                or (own.commission or bonus.commission)
            )
            currency = own.currency or currency
        if money:
            currencies.add(currency or f"team:{teams[person.team][1].currency}")
    implicit = {c for c in currencies if c.startswith("team:")}
    return not implicit or len(currencies) == 1


def _team_bonus(bonus: BonusConfig, own: TeamBonusConfig, catalogue: Catalogue) -> TeamBonus:
    """A team's bonus: its own fields, the scorecard's where it gives none."""
    tiers = own.tiers if own.tiers is not None else bonus.tiers
    commission = own.commission or bonus.commission
    gates = own.gates if own.gates is not None else bonus.gates
    return TeamBonus(
        currency=own.currency or bonus.currency,
        tiers=tuple(Tier(t.min_score, t.amount) for t in tiers),
        commission=None
        if commission is None
        else Commission(_key(catalogue, commission.metric), commission.above, commission.percent),
        gates=tuple(Gate(_key(catalogue, g.metric), g.min, g.max) for g in gates),
    )


def _check_alerts(
    checker: _Checker,
    entries: list[tuple[_Item, Any]],
    catalogue: Catalogue,
    plan_ids: set[str],
    teams: Mapping[str, Any],
    shops: Mapping[str, Any],
    people: Mapping[str, Any],
) -> tuple[AlertRuleConfig, ...]:
    """Unique ids, known metrics, plans and scopes."""
    rules: dict[str, AlertRuleConfig] = {}
    roles = {p.role for _, p in people.values()}
    for item, rule in entries:
        assert isinstance(rule, AlertRuleConfig)
        if rule.id in rules:
            checker.add(
                "error", item.doc, (*item.path, "id"), f"alert rule {rule.id!r} is defined twice"
            )
            continue
        ok = True
        for path, metric in (
            (("metric",), rule.metric),
            (("min_sample", "metric"), rule.min_sample.metric if rule.min_sample else None),
        ):
            if metric is not None and metric not in catalogue.metrics:
                hint = _closest(metric, catalogue.metrics) or _UNKNOWN_METRIC_HINT
                checker.add(
                    "error", item.doc, (*item.path, *path), f"unknown metric {metric!r}", hint
                )
                ok = False
        if rule.plan is not None and rule.plan not in plan_ids:
            checker.add("error", item.doc, (*item.path, "plan"), f"unknown plan {rule.plan!r}")
            ok = False
        kind, _, ident = rule.scope.partition(":")
        known = {"person": people, "team": teams, "shop": shops, "role": roles}
        if not (rule.scope == "company" or (kind in known and ident in known[kind])):
            checker.add(
                "error",
                item.doc,
                (*item.path, "scope"),
                f"unknown scope {rule.scope!r}",
                "use company, person:<id>, team:<id>, shop:<id> or role:<role>",
            )
            ok = False
        if ok:
            rules[rule.id] = rule
    return tuple(rules.values())


def _key(catalogue: Catalogue, name: str) -> str:
    metric = catalogue.get(name)
    assert metric is not None  # checked above
    return metric.key


def _csv_targets(checker: _Checker, file: Path) -> list[_Item]:
    """Targets kept in a spreadsheet: `targets*.csv` with plan, metric, entity, period, value.

    Each row is checked like a YAML target and located by its line in the file.
    """
    items: list[_Item] = []
    with file.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        line = 2
        for index, row in enumerate(reader):
            path: KeyPath = ("targets", index)
            doc = YamlDocument(file, None, {path: line})
            if None in row:  # more cells than header columns
                checker.add("error", doc, path, "the row has more cells than the header")
            else:
                data = {
                    key.strip(): value.strip()
                    for key, value in row.items()
                    if key and value and value.strip()
                }
                items.append(_Item("targets", doc, path, data))
            line = reader.line_num + 1
    if not items and not any(p.file == str(file) for p in checker.problems):
        checker.add("warning", file, (), "no targets in this file")
    return items
