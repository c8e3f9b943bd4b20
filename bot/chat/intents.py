"""Understanding what people ask, in Chinese or English, without any external service.

A message becomes a `Request`: an intent, a metric, a period, a subject and the language it
was asked in. Commands (`/kpi gmv today`, `kpi progress week`) and free text ("今天GMV多少",
"how am I doing this week") go through the same rules: keywords for intents, synonyms for
metrics, periods and subjects. Chinese is matched by substring (it has no spaces), English by
whole words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from bot.chat.messages import Language
from kpi_engine.metrics import Catalogue

Intent = Literal[
    "progress",
    "breakdown",
    "ranking",
    "compare",
    "why",
    "score",
    "alerts",
    "alert_action",
    "appeal",
    "appeal_action",
    "annotate",
    "annotations",
    "help",
    "ping",
    "unknown",
]
SubjectKind = Literal["me", "team", "person", "shop", "company"]
Breakdown = Literal["shop", "person", "day", "channel"]


@dataclass(frozen=True)
class Subject:
    """Whom a question is about: the asker, their team, a named person or shop, the company."""

    kind: SubjectKind
    id: str = ""


@dataclass(frozen=True)
class Request:
    """A parsed question."""

    intent: Intent
    language: Language
    metric: str | None = None
    period: str | None = None  # a period spec `parse_period` understands
    subject: Subject = Subject("me")
    by: Breakdown | None = None
    note: str | None = None  # the text of an annotation to add
    words: str = ""  # the text as understood, for suggestions


def language_of(text: str, fallback: Language) -> Language:
    """Chinese when the text has Chinese characters, English when it has Latin letters."""
    if re.search(r"[\u3400-\u9fff]", text):
        return "zh"
    if re.search(r"[A-Za-z]{2,}", text):
        return "en"
    return fallback


_BREAKDOWNS: tuple[tuple[Breakdown, tuple[str, ...], tuple[str, ...]], ...] = (
    ("shop", ("按店铺", "每个店", "分店铺", "店铺"), ("by shop", "per shop", "shops")),
    ("person", ("按人", "每个人", "按人员", "个人"), ("by person", "per person", "people")),
    ("channel", ("按渠道", "渠道"), ("by channel", "channel", "channels")),
    ("day", ("按天", "每天", "每日", "逐日"), ("by day", "per day", "daily")),
)
# Metric synonyms beyond each metric's key and names (longest match wins).
_METRIC_WORDS: dict[str, tuple[str, ...]] = {
    "gmv": ("gmv", "成交额", "销售额", "流水", "营业额", "成交", "sales", "revenue"),
    "net_gmv": ("净gmv", "净成交额", "净成交", "net gmv", "net sales"),
    "orders": ("订单", "单量", "订单数", "成交单", "orders", "order count"),
    "aov": ("客单价", "aov", "average order value", "basket"),
    "refund_rate": ("退货率", "退款率", "退单率", "refund rate", "return rate", "refunds"),
    "cancellation_rate": ("取消率", "cancellation rate", "cancel rate"),
    "click_to_order_rate": ("转化率", "cvr", "conversion", "conversion rate"),
    "product_ctr": ("点击率", "ctr", "click-through"),
    "live_gpm": ("gpm", "千次观看成交"),
    "views": ("观看次数", "浏览量", "观看", "views", "traffic", "流量"),
    "viewers": ("观看人数", "viewers", "audience"),
    "avg_watch_seconds": ("观看时长", "停留时长", "停留", "watch time", "avg watch"),
    "ad_spend": ("广告花费", "消耗", "花费", "投放", "ad spend", "spend"),
    "roas": ("roas", "投产比", "投产", "roi"),
    "acos": ("acos",),
    "tacos": ("tacos",),
    "live_gmv": ("直播成交额", "直播gmv", "live gmv", "live sales"),
}
# Relative periods: (period spec, Chinese, English).
_PERIODS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "last_7_days",
        ("最近7天", "近7天", "最近七天", "近七天", "过去7天"),
        ("last 7 days", "past week"),
    ),
    ("last_30_days", ("最近30天", "近30天", "近三十天"), ("last 30 days",)),
    ("today", ("今天", "今日", "当天"), ("today", "so far", "now")),
    ("yesterday", ("昨天", "昨日"), ("yesterday",)),
    ("last_week", ("上周", "上星期", "上个星期"), ("last week", "previous week")),
    ("this_week", ("本周", "这周", "这星期", "这个星期", "本星期"), ("this week", "week")),
    ("last_month", ("上月", "上个月"), ("last month", "previous month")),
    ("this_month", ("本月", "这个月", "这月", "当月"), ("this month", "month", "mtd")),
)
_TEAM = (
    ("我们组", "我们团队", "团队", "全组", "本组", "小组", "我们"),
    ("team", "our", "we", "us"),
)
_COMPANY = (("公司", "全公司", "整体", "总体"), ("company", "overall", "everyone", "org"))
_COMMAND_PREFIX = re.compile(r"^\s*/?(?:kpi|kpibot)\b[\s:：,，]*", re.IGNORECASE)
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_MONTH_DAY_ZH = re.compile(r"(\d{1,2})月(\d{1,2})[日号]")
_MONTH_ZH = re.compile(r"(\d{1,2})月份?")
_YEAR_MONTH = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})(?!\d)")  # also before 的, 月…
_MONTHS_EN = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip


@dataclass(frozen=True)
class Names:
    """What the parser can recognise as a person or shop: names and ids to entity ids."""

    people: dict[str, str]  # lower-cased name or id → person id
    shops: dict[str, str]  # lower-cased name or id → shop id
    mentions: dict[str, str]  # platform user id → person id


# An intent and its keywords: Chinese substrings and English words or phrases.
Aliases = Sequence[tuple[Intent, Sequence[str], Sequence[str]]]


def parse(
    text: str,
    *,
    aliases: Aliases,
    catalogue: Catalogue,
    names: Names,
    today: date,
    fallback: Language,
) -> Request:
    """The request in `text`; intent "unknown" when nothing in it is understood.

    `aliases` are checked in order: the first intent with a keyword in the text wins.
    """
    language = language_of(text, fallback)
    body = _COMMAND_PREFIX.sub("", text, count=1).strip()
    lowered = body.lower()
    words = _words(lowered)
    intent = _intent(lowered, words, aliases)
    metric = _metric(lowered, words, catalogue)
    period = _period(lowered, words, today)
    subject = _subject(body, lowered, words, names)
    by = _first(_BREAKDOWNS, lowered, words)
    note = None
    if intent == "annotate":  # the note is what follows the keyword
        keywords = [k for i, zh, en in aliases if i == "annotate" for k in (*zh, *en)]
        note = _after_keyword(body, tuple(sorted(keywords, key=len, reverse=True)))
    if intent == "unknown":
        if metric is not None or (by is None and period is not None):
            intent = "progress"  # "今天GMV", "gmv today", "本周"
        elif by is not None:
            intent = "breakdown"
    if intent == "progress" and by is not None:
        intent = "breakdown"
    return Request(intent, language, metric, period, subject, by, note, lowered)


def _words(lowered: str) -> set[str]:
    return set(re.findall(r"[a-z0-9_]+(?:-[a-z0-9]+)*", lowered))


def _has(lowered: str, words: set[str], zh: Sequence[str], en: Sequence[str]) -> bool:
    if any(k in lowered for k in zh):
        return True
    for phrase in en:
        if " " in phrase or "-" in phrase:
            if re.search(rf"(?<![a-z]){re.escape(phrase)}(?![a-z])", lowered):
                return True
        elif phrase in words:
            return True
    return False


def _first(
    table: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...],
    lowered: str,
    words: set[str],
) -> Breakdown | None:
    for value, zh, en in table:
        if _has(lowered, words, zh, en):
            return value  # type: ignore[return-value]
    return None


def _intent(lowered: str, words: set[str], aliases: Aliases) -> Intent:
    for intent, zh, en in aliases:
        if _has(lowered, words, zh, en):
            return intent
    return "unknown"


def _metric(lowered: str, words: set[str], catalogue: Catalogue) -> str | None:
    """The metric named in the text: the longest synonym, key or name found in it."""
    candidates: list[tuple[int, str]] = []
    for key, synonyms in _METRIC_WORDS.items():
        for word in synonyms:
            if _has(lowered, words, (word,) if not word.isascii() else (), (word,)):
                candidates.append((len(word), key))
    for key, metric in catalogue.metrics.items():
        for word in (
            key,
            key.replace("_", " "),
            metric.name_en.lower(),
            metric.name_zh,
            *metric.aliases,
        ):
            if word and _has(lowered, words, (word,) if not word.isascii() else (), (word,)):
                candidates.append((len(word), key))
    return max(candidates)[1] if candidates else None


def _period(lowered: str, words: set[str], today: date) -> str | None:
    if match := _DATE.search(lowered):
        year, month, day = (int(g) for g in match.groups())
        return _day_spec(year, month, day)
    if match := _MONTH_DAY_ZH.search(lowered):
        month, day = int(match.group(1)), int(match.group(2))
        year = today.year if (month, day) <= (today.month, today.day) else today.year - 1
        return _day_spec(year, month, day)
    if match := _YEAR_MONTH.search(lowered):
        return f"{int(match.group(1)):04d}-{int(match.group(2)):02d}"
    for spec, zh, en in _PERIODS:
        if _has(lowered, words, zh, en):
            return spec
    named: int | None = None
    if match := _MONTH_ZH.search(lowered):
        named = int(match.group(1))
    else:
        for n, name in enumerate(_MONTHS_EN, start=1):
            if name in words or (name != "may" and name[:3] in words):
                named = n
                break
    if named is not None and 1 <= named <= 12:
        year = today.year if named <= today.month else today.year - 1
        return f"{year:04d}-{named:02d}"
    if match := re.search(r"最近(\d+)天|近(\d+)天|last (\d+) days", lowered):
        count = next(int(g) for g in match.groups() if g)
        return f"last_{count}_days"
    return None


def _day_spec(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _subject(body: str, lowered: str, words: set[str], names: Names) -> Subject:
    for user_id, person in names.mentions.items():
        if user_id in body:
            return Subject("person", person)
    if named_person := _named(lowered, names.people):
        return Subject("person", named_person)
    if named_shop := _named(lowered, names.shops):
        return Subject("shop", named_shop)
    if _has(lowered, words, *_COMPANY):
        return Subject("company")
    if _has(lowered, words, *_TEAM):
        return Subject("team")
    return Subject("me")


def _named(lowered: str, table: dict[str, str]) -> str | None:
    """The entity whose name or id the text contains, longest first, by dictionary lookups.

    Latin names are runs of up to three words ("jessica lee", "li.na", "tts-us-01"); Chinese
    ones are 2–6 character pieces of each run of Chinese characters ("李娜" in "李娜本月业绩").
    """
    tokens = [t.strip(".-") for t in re.findall(r"[a-z0-9_.\-]+", lowered)]
    for size in (3, 2, 1):
        for i in range(len(tokens) - size + 1):
            found = table.get(" ".join(tokens[i : i + size]))
            if found:
                return found
    for run in re.findall(r"[\u3400-\u9fff]+", lowered):
        for size in range(min(len(run), 6), 1, -1):
            for i in range(len(run) - size + 1):
                found = table.get(run[i : i + size])
                if found:
                    return found
    return None


def _after_keyword(body: str, keywords: tuple[str, ...]) -> str | None:
    for keyword in keywords:
        index = body.lower().find(keyword)
        if index >= 0:
            rest = body[index + len(keyword) :].strip(" :：,，")
            return rest or None
    return None
