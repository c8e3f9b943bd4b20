"""The organisation as code: teams, people, shops and assignments loaded from YAML and checked."""

from __future__ import annotations

import csv
import difflib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
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

from kpi_engine.instants import is_zone, zone_names
from kpi_engine.metrics import (
    Catalogue,
    Direction,
    Metric,
    MetricError,
    Unit,
    build_catalogue,
    custom_metric,
)
from kpi_engine.money import currency_codes, is_currency
from kpi_engine.periods import PeriodError, parse_period
from kpi_engine.plans import Plan, Target
from kpi_engine.scopes import Scope, ScopeError, parse_scope
from kpi_engine.scorecards import (
    MAX_ITEMS_BEFORE_WARNING,
    Commission,
    Gate,
    ScorecardRule,
    ScoreItem,
    Tier,
)
from kpi_engine.yaml_source import KeyPath, YamlDocument, YamlSourceError, load_yaml

Role = Literal["streamer", "operator", "ad_buyer", "editor", "cs", "manager", "admin"]
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]
Language = Literal["zh", "en"]
ShopPlatform = Literal["tiktok", "shopee", "lazada", "amazon"]
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


class OrganisationSettings(ConfigModel):
    """Organisation-wide defaults."""

    name: str
    default_language: Language = "zh"
    week_start: Literal["monday", "sunday"] = "monday"
    currency: str | None = None  # company-wide figures; the first team's currency when unset
    settlement_lag_days: SettlementLags = SettlementLags()
    attribution: AttributionSettings = AttributionSettings()
    # What members see of other people in rankings: places and names, their values too, or
    # only their own line. Managers and admins always see values.
    ranking_for_members: Literal["names", "values", "own"] = "names"
    schedules: ScheduleSettings = ScheduleSettings()
    holidays: tuple[date, ...] = ()  # days without digests (or shifted), for every team
    freshness_hours: FreshnessSettings = FreshnessSettings()
    # A posted figure that later moves by more than this gets a "revised" notice.
    restatement_percent: Decimal = Field(Decimal(1), ge=0)
    appeals: AppealSettings = AppealSettings()

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return None if value is None else _check_currency(value)


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


class MetricConfig(ConfigModel):
    """A custom metric: a formula over other metrics (see docs/metrics.md)."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: MetricName
    unit: Unit
    direction: Direction
    formula: str


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
    """A KPI plan: how its targets spread over days, from a date on (docs/targets.md)."""

    id: str
    effective_from: date
    pilot: bool = False
    weekday_weights: tuple[Decimal, ...] = (Decimal(1),) * 7
    promo_days: dict[str, Decimal] = Field(default_factory=dict)
    hourly_profile: tuple[Decimal, ...] = (Decimal(1),) * 24
    live_schedule: LiveScheduleConfig | None = None

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


class TargetConfig(ConfigModel):
    """A target: a metric's value for an entity over a period, under a plan."""

    plan: str
    metric: str
    entity: str
    period: str
    value: Decimal


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


class BonusConfig(ConfigModel):
    """A scorecard's bonus rules, in the team's currency."""

    tiers: tuple[TierConfig, ...] = ()
    commission: CommissionConfig | None = None
    gates: tuple[GateConfig, ...] = ()


class ScorecardConfig(ConfigModel):
    """A role's scorecard (docs/metrics.md, "Scorecards and bonus")."""

    role: Role
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
    _by_chat: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def person_by_chat_id(self, platform: str, user_id: str) -> PersonConfig | None:
        """The person whose identity on `platform` is `user_id`, if registered."""
        person_id = self._by_chat.get((platform, user_id))
        return self.people[person_id] if person_id else None

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


def _closest(word: str, options: Iterable[str]) -> str | None:
    candidates = list(options)
    # Swapped letters (GPB for GBP) first: difflib ranks them below unrelated codes.
    swapped = [c for c in candidates if len(c) == len(word) and sorted(c) == sorted(word)]
    match = swapped or difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"did you mean {match[0]!r}?" if match else None


def check_organisation(config_dir: Path) -> tuple[Organisation | None, list[Problem]]:
    """Load and validate every *.yaml file in `config_dir`; the organisation is None on errors."""
    checker = _Checker()
    files = sorted([*config_dir.glob("*.yaml"), *config_dir.glob("*.yml")])
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
    for file in files:
        try:
            doc = load_yaml(file)
        except YamlSourceError as exc:
            checker.problems.append(Problem("error", str(exc.file), exc.line, "", exc.message))
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
                    org_settings = parsed
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

    for file in sorted(config_dir.glob("targets*.csv")):
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
    plans = _check_plans(checker, parsed_items["plans"], people)
    scorecards = _check_scorecards(checker, parsed_items["scorecards"], catalogue)
    # A rule naming a plan that is given but broken is not reported again.
    plan_ids = {c.id for _, c in parsed_items["plans"]} | invalid_ids
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
        _by_chat=by_chat,
    )
    return organisation, checker.problems


def load_organisation(config_dir: Path) -> Organisation:
    """The validated organisation in `config_dir`; raises ConfigError listing every error."""
    organisation, problems = check_organisation(config_dir)
    if organisation is None:
        raise ConfigError([p for p in problems if p.severity == "error"])
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
                checker.add("error", doc, where, message, _hint_for(str(loc[-1]), error["input"]))
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
        try:
            metric = custom_metric(
                config.key,
                config.name.en,
                config.name.zh,
                config.unit,
                config.direction,
                config.formula,
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
        assert metric.formula is not None
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


def _check_plans(
    checker: _Checker,
    entries: list[tuple[_Item, Any]],
    people: Mapping[str, tuple[_Item, PersonConfig]],
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
    """Targets that name a plan, a metric, an entity and an absolute period; roll-ups checked."""
    plan_ids = {plan.id for plan in plans}
    targets: list[tuple[_Item, Target]] = []
    week_start = settings.week_start if settings else "monday"
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
                _closest(config.metric, catalogue.metrics) or "see docs/metrics.md",
            )
            ok = False
        try:
            scope = parse_scope(config.entity, teams=teams, shops=shops, people=people)
        except ScopeError as exc:
            checker.add("error", item.doc, (*item.path, "entity"), str(exc))
            continue
        if config.period.strip().lower().startswith(_RELATIVE):
            checker.add(
                "error",
                item.doc,
                (*item.path, "period"),
                f"{config.period!r} moves with time; a target needs a fixed period",
                "use 2026-11, 2026-W47, 2026-11-20 or 2026-11-01..2026-11-15",
            )
            continue
        timezone = _entity_zone(scope, teams, shops, people)
        try:
            period = parse_period(config.period, now=0, timezone=timezone, week_start=week_start)
        except PeriodError as exc:
            checker.add("error", item.doc, (*item.path, "period"), str(exc))
            continue
        if ok and metric is not None:
            targets.append((item, Target(config.plan, metric.key, scope, period, config.value)))
    _check_rollups(checker, targets, people)
    return tuple(target for _, target in targets)


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
    members: dict[tuple[str, str, str, object], Decimal] = {}
    for _, target in targets:
        if target.scope.kind == "person":
            team = people[target.scope.id][1].team
            key = (target.plan, target.metric, team, target.period)
            members[key] = members.get(key, Decimal(0)) + target.value
    for item, target in targets:
        if target.scope.kind != "team":
            continue
        total = members.get((target.plan, target.metric, target.scope.id, target.period))
        if total is not None and total != target.value:
            checker.add(
                "warning",
                item.doc,
                (*item.path, "value"),
                f"team target {target.value} differs from the sum of its members' targets, {total}",
                "fine if intended (e.g. a stretch above the members' sum)",
            )


def _check_scorecards(
    checker: _Checker, entries: list[tuple[_Item, Any]], catalogue: Catalogue
) -> tuple[ScorecardRule, ...]:
    """One scorecard per role, known metrics, weights summing to 100, not too many items."""
    rules: dict[str, ScorecardRule] = {}
    roles: set[str] = set()  # also those whose scorecard has errors
    for item, config in entries:
        assert isinstance(config, ScorecardConfig)
        if config.role in roles:
            checker.add(
                "error",
                item.doc,
                (*item.path, "role"),
                f"a scorecard for {config.role!r} is already defined",
            )
            continue
        roles.add(config.role)
        ok = True
        metrics: list[tuple[KeyPath, str]] = [
            (("items", i, "metric"), entry.metric) for i, entry in enumerate(config.items)
        ]
        metrics += [
            (("bonus", "gates", i, "metric"), g.metric) for i, g in enumerate(config.bonus.gates)
        ]
        if config.bonus.commission is not None:
            metrics.append((("bonus", "commission", "metric"), config.bonus.commission.metric))
        for path, name in metrics:
            if catalogue.get(name) is None:
                checker.add(
                    "error",
                    item.doc,
                    (*item.path, *path),
                    f"unknown metric {name!r}",
                    _closest(name, catalogue.metrics) or "see docs/metrics.md",
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
        rules[config.role] = ScorecardRule(
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
        )
    return tuple(rules.values())


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
                hint = _closest(metric, catalogue.metrics) or "see docs/metrics.md"
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
