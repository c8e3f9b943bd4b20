"""The one parser: a message's text becomes a complete, typed `Request`.

It finds, in this order, and removes what it found from the text: links and order ids given
as evidence, explicit dates and periods (ISO dates, weeks and ranges, 11月20日, 2025年11月,
去年11月, 11/29, Nov 20, Q3, 最近7天…), a verb with a number at the start ("确认 42"), a
claimed amount ("应该是12000"), @mentions, the words of the synonym files (metrics, periods,
subjects, breakdowns, roles, comparisons, intents), people, teams and shops by name, "前三" /
"top 3". What is left, less filler words, is the free text (a note, a reason) and tells the
parser about names and metrics it does not know: then the request carries an `Unknown` with
the closest known ones, so the bot asks back instead of answering another question.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from bot.chat.request import Request, Subject, Unknown
from bot.chat.vocabulary import Names, Vocabulary, Word, is_cjk, normalise
from kpi_engine.languages import Language
from kpi_engine.organisation import SHOP_PLATFORMS
from kpi_engine.periods import WeekStart, week_of

_PREFIX = re.compile(r"^\s*/?(?:kpi|kpibot)\b[\s:：,，]*", re.IGNORECASE)
_LINK = re.compile(r"https?://[^\s<>\"'，。]+")
_SPACE = re.compile(r"\s+")
# Dates and periods written out.
_RANGE = re.compile(
    r"(\d{4}-\d{1,2}-\d{1,2})\s*(?:\.\.|~|～|到|至|to|until|-{1,2}|—)\s*(\d{4}-\d{1,2}-\d{1,2})"
)
_ISO_WEEK = re.compile(r"(?<!\d)(\d{4})-?w(\d{1,2})(?!\d)")
_ISO_DAY = re.compile(r"(?<![\d-])(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?![\d-])")
_CJK_DAY = re.compile(r"(?:(\d{4})年|(去年|今年|前年))?(\d{1,2})月(\d{1,2})[日号]?")
_CJK_MONTH = re.compile(r"(?:(\d{4})年|(去年|今年|前年))?(\d{1,2})月份?(?!\d)")
_CJK_YEAR = re.compile(r"(\d{4})年(?!\d)")
_SLASH_DAY = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?![\d/])")
_ISO_MONTH = re.compile(r"(?<![\d-])(\d{4})-(\d{1,2})(?![\d-])")
_QUARTER = re.compile(r"(?:(\d{4})\s*)?(?:q([1-4])|第([一二三四1-4])季度?)(?:\s*(\d{4}))?")
_LAST_N = re.compile(
    r"(?:最近|近|过去|直近|過去|last|past)\s*(-?\d+)\s*(?:天|日|days?)", re.IGNORECASE
)
# A rolling window of hours ("最近24小时", "last 24 hours", "24小时内"): figures are kept by
# whole local days, so such a window is asked back, never read as today.
_LAST_HOURS = re.compile(
    r"(?:最近|近|过去|直近|過去|last|past)\s*(\d+)\s*个?\s*(?:小时|小時|時間|(?:hours?|hrs?)(?![a-z]))"
    r"|(\d+)\s*个?\s*(?:小时|小時)内",
    re.IGNORECASE,
)
_MONTHS_EN = (
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
)  # fmt: skip
_EN_DATE = re.compile(
    r"(?<![a-z])(?:(\d{1,2})(?:st|nd|rd|th)?\s+)?"
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
    r"(?:\s+(\d{1,2})(?:st|nd|rd|th)?(?!\d))?(?:,?\s+(\d{4}))?(?![a-z])"
)
_TOP = re.compile(r"(?:前|top\s*|best\s*|上位)(\d+|[一二两三四五六七八九十]+)(?:名|位|个)?")
_BOTTOM_N = re.compile(r"(?:倒数(?:前)?|bottom\s*|worst\s*|下位)(\d+|[一二两三四五六七八九十]+)")
_NUMBER = re.compile(r"(?<![\w.])[¥$€£￥]?\s*(\d[\d,]*(?:\.\d+)?)(?![\w.])")
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8}
_CN_DIGITS |= {"九": 9, "十": 10}
_METRIC_SUFFIX = re.compile(r"(率|额|量|数|价|时长|天数|周期|比|费|成本|时间|人数|次数|占比|周转)$")
# A comparison with an earlier period said in so many words, and the period it is compared from.
_VERSUS = re.compile(
    r"(?<![a-z])(?:vs\.?|versus|compared?\s+(?:to|with)|against)(?![a-z])"
    r"|[跟和与].{0,8}比|比(?:上|昨|去|前)|对比|相比|比べ|比較"
)
_CURRENT_OF = {"last_week": "this_week", "last_month": "this_month", "yesterday": "today"}
_LATIN_TOKEN = re.compile(r"[a-z][a-z0-9'._\-]*")
# English words that name a measure (as 率, 额, 天数 do in Chinese): with no known metric in the
# text, what they name is an unknown metric.
_METRIC_WORDS_EN = frozenset(
    ("rate", "ratio", "days", "turnover", "time", "duration", "count", "amount", "growth",
     "share", "margin", "cost", "value", "index")
)  # fmt: skip
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]+")
# Two or three Chinese characters that start what is left of the text, right before a word
# that was understood (a metric, a period: taken, so blank) or a possessive ("的", not "的话";
# "の"): where a name stands in "张三今天GMV", "李哪的GMV", "马库斯本月GMV".
_LEAD = re.compile(r"\s*((?:(?!的)[\u3400-\u9fff]){2,3})(?=\s|的(?!话)|の)")
# The most a claim or amount may be written with: beyond it the number is not a figure.
MAX_DIGITS = 15


@dataclass(frozen=True)
class Context:
    """What the parser needs besides the text."""

    vocabulary: Vocabulary
    names: Names
    today: date  # in the asker's zone
    fallback: Language  # the asker's language, for language-neutral text
    week_start: WeekStart = "monday"
    platform: str = ""
    # Which intent wins when a message has the words of several (the registry's order).
    precedence: Mapping[str, int] = field(default_factory=dict)


class _Text:
    """The text being parsed (lower case), with what was found blanked out (keeping
    positions), beside the same text as written, for the free text."""

    def __init__(self, text: str, written: str) -> None:
        self.text = text
        self.written = written if len(written) == len(text) else text

    def take(self, start: int, end: int) -> str:
        found = self.text[start:end]
        blank = " " * (end - start)
        self.text = self.text[:start] + blank + self.text[end:]
        self.written = self.written[:start] + blank + self.written[end:]
        return found

    def take_all(self, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        found = list(pattern.finditer(self.text))
        for match in reversed(found):
            self.take(match.start(), match.end())
        return found

    def rest(self) -> str:
        """What is left, as written."""
        return _SPACE.sub(" ", self.written).strip()


def detect_language(text: str, vocabulary: Vocabulary, fallback: Language) -> Language:
    """Japanese when the text has kana or Japanese words, Chinese when it has Chinese
    characters, English when it has English words or names a month in English; else the asker's
    own language (a bare "GMV", "ROAS" or "2026-11-20 GMV" is said in no language)."""
    normal = normalise(text)
    if re.search(r"[\u3040-\u30ff]", normal):
        return "ja"
    if re.search(r"[\u3400-\u9fff]", normal):
        found = {w.text for _, _, w in vocabulary.matches(normal) if is_cjk(w.text)}
        said = [vocabulary.languages.get(text, frozenset()) for text in found]
        ja = sum(1 for languages in said if languages == {"ja"})
        zh = sum(1 for languages in said if languages == {"zh"})
        # Kanji both languages use ("撤回 7"): the asker's own language if it is Japanese.
        return "ja" if ja > zh or (ja == zh and fallback == "ja") else "zh"
    english = [
        w
        for _, _, w in vocabulary.matches(normal)
        if w.language == "en" and w.category != "metrics"
    ]
    tokens = set(_LATIN_TOKEN.findall(normal))
    if english or (tokens & vocabulary.fillers["en"] - {"kpi", "kpis", "data"}):
        return "en"
    if _EN_DATE.search(normal):  # a month named in English: "Nov 20 GMV"
        return "en"
    return fallback


def _count(text: str) -> int | None:
    if text.isdigit():
        return int(text) if len(text) < 4 else None
    if text in _CN_DIGITS:
        return _CN_DIGITS[text]
    if len(text) == 2 and text[0] == "十" and text[1] in _CN_DIGITS:
        return 10 + _CN_DIGITS[text[1]]
    return None


def _day(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


@dataclass
class _Found:
    period: str | None = None
    said: str | None = None
    problem: str | None = None  # "future", "impossible", "hours"
    # What to offer instead of a day still to come: the same day a year earlier.
    instead: tuple[tuple[str, str], ...] = ()

    def set(
        self,
        spec: str | None,
        said: str,
        today: date,
        first: date | None = None,
        *,
        instead: date | None = None,
        problem: str | None = None,
    ) -> None:
        """Keep the first period found: `spec` (None: no such day), starting on `first`; a
        day still to come is offered as `instead` when that one has begun."""
        if self.period is not None or self.problem is not None:
            return
        self.said = said.strip()
        if problem is not None:
            self.problem = problem
        elif spec is None:
            self.problem = "impossible"
        elif first is not None and first > today:
            self.problem = "future"
            if instead is not None and instead <= today:
                self.instead = ((instead.isoformat(), instead.isoformat()),)
        else:
            self.period = spec


def _year_word(word: str | None, today: date) -> int | None:
    return {"去年": today.year - 1, "今年": today.year, "前年": today.year - 2}.get(word or "")


def _periods(text: _Text, today: date, week_start: WeekStart) -> _Found:
    """Dates and periods written out, taken from the text."""
    found = _Found()
    for match in text.take_all(_RANGE):
        first = _day(*map(int, match.group(1).split("-")))
        last = _day(*map(int, match.group(2).split("-")))
        if first is None or last is None or last < first:
            found.set(None, match.group(), today)
        else:
            found.set(f"{first.isoformat()}..{last.isoformat()}", match.group(), today, first)
    for match in text.take_all(_ISO_WEEK):
        year, week = int(match.group(1)), int(match.group(2))
        try:
            monday = date.fromisocalendar(year, week, 1)
        except ValueError:
            found.set(None, match.group(), today)
            continue
        found.set(f"{year:04d}-W{week:02d}", match.group(), today, monday)
    for match in text.take_all(_ISO_DAY):
        day = _day(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        found.set(day.isoformat() if day else None, match.group(), today, day)
    for match in text.take_all(_CJK_DAY):
        month, number = int(match.group(3)), int(match.group(4))
        named = int(match.group(1)) if match.group(1) else _year_word(match.group(2), today)
        _month_day(found, match.group(), today, named, month, number)
    for match in text.take_all(_SLASH_DAY):
        _month_day(found, match.group(), today, None, int(match.group(1)), int(match.group(2)))
    for match in text.take_all(_EN_DATE):
        _english_date(match, found, today)
    for match in text.take_all(_CJK_MONTH):
        month = int(match.group(3))
        named = int(match.group(1)) if match.group(1) else _year_word(match.group(2), today)
        year = named if named is not None else today.year - (month > today.month)
        first = _day(year, month, 1)
        found.set(f"{year:04d}-{month:02d}" if first else None, match.group(), today, first)
    for match in text.take_all(_ISO_MONTH):
        year, month = int(match.group(1)), int(match.group(2))
        first = _day(year, month, 1)
        found.set(f"{year:04d}-{month:02d}" if first else None, match.group(), today, first)
    for match in text.take_all(_QUARTER):
        number = _count(match.group(2) or match.group(3) or "") or 0
        year_text = match.group(1) or match.group(4)
        year = int(year_text) if year_text else today.year
        first = date(year, 3 * number - 2, 1)
        if not year_text and first > today:
            year, first = year - 1, date(year - 1, 3 * number - 2, 1)
        last = (date(year + (number == 4), (3 * number) % 12 + 1, 1)) - timedelta(days=1)
        found.set(
            f"{first.isoformat()}..{min(last, today).isoformat()}", match.group(), today, first
        )
    for match in text.take_all(_CJK_YEAR):
        year = int(match.group(1))
        first = date(year, 1, 1)
        last = min(date(year, 12, 31), today)
        found.set(f"{first.isoformat()}..{last.isoformat()}", match.group(), today, first)
    for match in text.take_all(_LAST_N):
        count = int(match.group(1))
        if count < 1 or count > 3660:
            found.set(None, match.group(), today)
        else:
            found.set(f"last_{count}_days", match.group(), today)
    for match in text.take_all(_LAST_HOURS):
        found.set(None, match.group(), today, problem="hours")
    del week_start  # relative weeks are read with the words, below
    return found


def _month_day(
    found: _Found, said: str, today: date, year: int | None, month: int, number: int
) -> None:
    """A day and month ("11月20日", "11/20", "Nov 20"), in `year` or else this year: a day
    still to come this year is asked back (offering last year's), never read as last year's
    without a word."""
    day = _day(today.year if year is None else year, month, number)
    earlier = _day(today.year - 1, month, number) if year is None else None
    found.set(day.isoformat() if day else None, said, today, day, instead=earlier)


def _english_date(match: re.Match[str], found: _Found, today: date) -> None:
    """ "Nov 20", "20 November", "November 20, 2025", "November 2025"."""
    day_text = match.group(1) or match.group(3)
    month = _MONTHS_EN.index(match.group(2)[:3]) + 1
    year_text = match.group(4)
    if day_text is None:
        year = (
            int(year_text)
            if year_text
            else (today.year if month <= today.month else today.year - 1)
        )
        found.set(f"{year:04d}-{month:02d}", match.group(), today, date(year, month, 1))
        return
    named = int(year_text) if year_text else None
    _month_day(found, match.group(), today, named, month, int(day_text))


def _weekend(today: date, which: str) -> tuple[date, date] | None:
    """Saturday and Sunday (up to today) of the weekend `which` names: "weekend" the one
    under way, else the last one; "this_weekend" the one under way (None on a weekday: it
    is still to come); "last_weekend" the one before the weekend under way, else the last."""
    saturday = today - timedelta(days=(today.weekday() - 5) % 7)  # the latest Saturday
    under_way = today.weekday() >= 5
    if which == "this_weekend" and not under_way:
        return None
    if which == "last_weekend" and under_way:
        saturday -= timedelta(days=7)
    return saturday, min(saturday + timedelta(days=1), today)


def _relative(value: str, today: date, week_start: WeekStart) -> tuple[str | None, str | None]:
    """A period word's spec, or the problem with it ("future")."""
    if value in ("tomorrow", "next_week", "next_month"):
        return None, "future"
    if value in ("weekend", "this_weekend", "last_weekend"):
        days = _weekend(today, value)
        if days is None:
            return None, "future"
        return f"{days[0].isoformat()}..{days[1].isoformat()}", None
    if value == "day_before_yesterday":
        return (today - timedelta(days=2)).isoformat(), None
    if value == "week_before_last":
        monday = week_of(today, "UTC", week_start).first - timedelta(days=14)
        if week_start == "monday":
            year, week, _ = monday.isocalendar()
            return f"{year:04d}-W{week:02d}", None
        return f"{monday.isoformat()}..{(monday + timedelta(days=6)).isoformat()}", None
    if value == "this_year":
        return f"{today.year:04d}-01-01..{today.isoformat()}", None
    if value == "last_year":
        return f"{today.year - 1:04d}-01-01..{today.year - 1:04d}-12-31", None
    return value, None


def _instead(value: str, today: date) -> tuple[tuple[str, str], ...]:
    """What a period word still to come may have meant that has begun: the last weekend for
    "this weekend" said on a weekday."""
    if value != "this_weekend":
        return ()
    days = _weekend(today, "weekend")
    if days is None:
        return ()
    spec = f"{days[0].isoformat()}..{days[1].isoformat()}"
    return ((spec, spec),)


def _verb(body: str, vocabulary: Vocabulary) -> tuple[str, str, int, str] | None:
    """(intent, verb, number, the rest) when the text starts with a verb and a number, as in
    "确认 42 在跟进" or "snooze #42 2h"."""
    verbs = [w for w in (*vocabulary.cjk, *vocabulary.latin) if w.category == "verbs"]
    for word in verbs:
        if not body.startswith(word.text):
            continue
        rest = body[len(word.text) :]
        if not is_cjk(word.text) and rest[:1].isalnum():
            continue  # "acknowledged…" is not "ack"
        found = re.match(r"\s*#?(\d{1,40})(?!\d)\s*(.*)$", rest, re.S)
        if found:
            intent = "appeal_action" if word.value in _APPEAL_VERBS else "alert_action"
            return intent, word.value, int(found.group(1)), found.group(2).strip()
    return None


_APPEAL_VERBS = frozenset({"review", "accept", "reject", "withdraw"})
_KANA_FIRST = re.compile(r"[\u3040-\u309f]")
# The number right before such a claim word: "12000のはず", "¥12,000.50 であるべき", "12000円の".
_NUMBER_BEFORE = re.compile(r"(?<![\d.,\-/])[¥$€£￥]?\s*(\d[\d,]*(?:\.\d+)?)\s*[円元]?\s*$")


def _claim(text: _Text, vocabulary: Vocabulary) -> Decimal | str | None:
    """A claimed amount after "应该是" / "should be", or before a claim word that starts with
    kana, as a Japanese particle follows what it marks ("12000のはず") — taken from the text;
    "absurd" when it has more digits than any figure."""
    for word in vocabulary.claims:
        position = text.text.find(word)
        if position < 0:
            continue
        if _KANA_FIRST.match(word):
            before = _NUMBER_BEFORE.search(text.text, 0, position)
            if before is None:
                continue
            text.take(before.start(), position + len(word))
            return _amount(before.group(1))
        match = _NUMBER.match(text.text, position + len(word)) or re.match(
            r"\s*[:：]?\s*[¥$€£￥]?\s*(\d[\d,]*(?:\.\d+)?)", text.text[position + len(word) :]
        )
        if match is None:
            continue
        if match.re is _NUMBER:
            start, end = match.start(), match.end()
        else:
            start, end = position + len(word), position + len(word) + match.end()
        text.take(position, end if end > start else position + len(word))
        return _amount(match.group(1))
    return None


def _amount(digits: str) -> Decimal | str | None:
    plain = digits.replace(",", "")
    if len(plain.split(".")[0]) > MAX_DIGITS:
        return "absurd"
    try:
        return Decimal(plain)
    except InvalidOperation:
        return None


def _evidence(text: _Text, vocabulary: Vocabulary) -> list[str]:
    """Links and order ids ("订单 5791234,5791240", "orders 57912, 57913")."""
    found = [m.group() for m in text.take_all(_LINK)]
    words = "|".join(re.escape(w) for w in vocabulary.order_words)
    pattern = re.compile(
        rf"(?:{words})\s*[:：#]?\s*((?:\d[\w-]*)(?:\s*[,，、/]\s*\d[\w-]*)*)", re.IGNORECASE
    )
    for match in text.take_all(pattern):
        found += [f"order {o.strip()}" for o in re.split(r"[,，、/]", match.group(1)) if o.strip()]
    return found


def _names(text: _Text, names: Names) -> list[Subject]:
    """People, teams and shops named in the text (taken from it), in the order found."""
    return [subject for _, _, subject in _named(text, names)]


def _named(text: _Text, names: Names) -> list[tuple[int, int, Subject]]:
    """People, teams and shops named in the text (taken from it), where each was said."""
    found: list[tuple[int, int, Subject]] = []
    tables = (("person", names.people), ("team", names.teams), ("shop", names.shops))
    # Latin names and ids: runs of up to four tokens ("jessica lee", "tts-us-01", "la ops").
    tokens = list(re.finditer(r"[a-z0-9][a-z0-9._\-]*[a-z0-9]|[a-z0-9]", text.text))
    for size in (4, 3, 2, 1):
        for i in range(len(tokens) - size + 1):
            run = tokens[i : i + size]
            if any(t.group() == "" for t in run):
                continue
            start, end = run[0].start(), run[-1].end()
            if text.text[start:end].strip() != text.text[start:end]:
                continue
            key = " ".join(t.group() for t in run)
            for kind, table in tables:
                entity = table.get(key) or table.get(key.replace(" ", ""))
                if entity and text.text[start:end].strip():
                    found.append((start, end, Subject(kind, entity)))  # type: ignore[arg-type]
                    text.take(start, end)
                    break
        tokens = list(re.finditer(r"[a-z0-9][a-z0-9._\-]*[a-z0-9]|[a-z0-9]", text.text))
    # Chinese and Japanese names: the longest piece of a run of such characters that is one.
    for kind, table in tables:
        cjk = sorted((k for k in table if is_cjk(k)), key=len, reverse=True)
        for key in cjk:
            position = text.text.find(key)
            if position >= 0:
                subject = Subject(kind, table[key])  # type: ignore[arg-type]
                found.append((position, position + len(key), subject))
                text.take(position, position + len(key))
    # A shop by its platform ("shopee today"), when the platform has exactly one shop.
    for platform, shops in names.platforms.items():
        match = re.search(rf"(?<![a-z]){re.escape(platform)}(?![a-z])", text.text)
        if match and len(shops) == 1:
            found.append((match.start(), match.end(), Subject("shop", shops[0])))
            text.take(match.start(), match.end())
    return sorted(found, key=lambda f: f[0])


def _team_of(
    text: _Text, end: int, subject: Subject, names: Names, vocabulary: Vocabulary
) -> Subject:
    """The team a person's name stands for when the words right after it say so ("Emily的团队",
    "emily's team", "王芳组", "Emilyのチーム"): the team they manage, else their own (those
    words taken from the text); otherwise the person."""
    if subject.kind != "person" or subject.id not in names.team_of:
        return subject
    after = text.text[end:]
    gap = len(after) - len(after.lstrip())
    for word in vocabulary.team_of:
        if after[gap:].startswith(word):
            text.take(end + gap, end + gap + len(word))
            return Subject("team", names.team_of[subject.id])
    return subject


def parse(text: str, context: Context) -> Request:
    """The request in `text` (intent "unknown" when nothing in it is understood)."""
    vocabulary, names = context.vocabulary, context.names
    raw = _PREFIX.sub("", text, count=1)
    language = detect_language(raw, vocabulary, context.fallback)
    body = normalise(raw)
    words = body
    written = " ".join(unicodedata.normalize("NFKC", raw).split())
    mentioned = [
        person
        for user, person in names.mentions.get(context.platform, {}).items()
        if normalise(user) in body
    ]
    work = _Text(body, written)
    for user in names.mentions.get(context.platform, {}):
        for match in list(re.finditer(re.escape(normalise(user)), work.text)):
            work.take(match.start(), match.end())
    work.take_all(re.compile(r"<@[^>]*>|@\S+"))
    verb = _verb(work.text.strip(), vocabulary)
    number = None
    verb_intent = verb_value = None
    if verb is not None and verb[0] in vocabulary.known_intents:
        # "确认 42 在跟进", "snooze 42 tomorrow", "驳回 7 两单已退款": the rest, as written, is
        # the verb's own (a note, a length, a reason), not a question.
        verb_intent, verb_value, number, _ = verb
        start = work.text.find(str(number))
        work.take(0, start + len(str(number)))
        return Request(
            intent=verb_intent,
            language=language,
            verb=verb_value,
            number=number,
            text=work.rest(),
            words=words,
            mentions=tuple(mentioned),
        )
    note = _note(work, context)
    if note is not None:
        return replace(note, language=language, words=words, mentions=tuple(mentioned))
    evidence = _evidence(work, vocabulary)
    claimed = _claim(work, vocabulary)
    periods = _periods(work, context.today, context.week_start)
    top: int | None = None
    bottom = False
    for match in work.take_all(_BOTTOM_N):
        top, bottom = _count(match.group(1)), True
    for match in work.take_all(_TOP):
        top = top or _count(match.group(1))
    named = [_team_of(work, e, found, names, vocabulary) for _, e, found in _named(work, names)]

    chosen = _choose(vocabulary.matches(work.text))
    values: dict[str, list[str]] = {}
    for _, _, word in chosen:
        values.setdefault(word.category, []).append(word.value)
    intent = _intent(values, verb_intent, vocabulary, context.precedence)
    if intent == "unknown" and top:
        intent = "ranking"  # "top 3", "前三": the words that said so were taken with the count
    # The words that were understood are taken out of the free text: every command word,
    # subject, breakdown and comparison, and the first metric, period and role named. A note
    # or an appeal's reason keeps all else as it was written.
    free = intent in ("annotate", "appeal")
    seen: set[str] = set()
    for start, end, word in chosen:
        if free and word.category not in ("intents", "metrics", "periods"):
            continue
        single = word.category in ("metrics", "periods", "roles")
        if single and word.category in seen:
            continue
        seen.add(word.category)
        work.take(start, end)
    for phrase in vocabulary.bottom:
        position = work.text.find(phrase)
        if position >= 0 and not free:
            bottom = True
            work.take(position, position + len(phrase))

    if periods.period is None and periods.problem is None and "periods" in values:
        spec, problem = _relative(values["periods"][0], context.today, context.week_start)
        periods.period, periods.problem = spec, problem
        periods.said = next(
            (body[s:e] for s, e, w in chosen if w.category == "periods"), periods.said
        )
        if problem == "future":  # "this weekend" on a Thursday: the last one is offered
            periods.instead = _instead(values["periods"][0], context.today)

    # "GMV跟上周比", "gmv vs last week", "本周vs上周": the current period against the earlier one
    # named, not the earlier one alone.
    earlier = [p for p in values.get("periods", []) if p in _CURRENT_OF]
    if values.get("compare") and intent in ("progress", "unknown") and _VERSUS.search(words):
        intent = "compare"  # "gmv last month vs previous period": that period, compared
    versus = earlier and not values.get("compare") and _VERSUS.search(words)
    if versus and intent in ("progress", "unknown", "compare"):
        intent = "compare"
        periods.period, periods.problem = _CURRENT_OF[earlier[0]], None
        for start, end, word in chosen:  # every period said, and the comparison, understood
            if word.category == "periods":
                work.take(start, end)
        marker = _VERSUS.search(work.text)
        if marker is not None:
            work.take(marker.start(), marker.end())
    subject = _subject(mentioned, named, values.get("subjects", []))
    by = _first(values, "breakdowns")
    if by == "team" and subject is None:
        subject = Subject("company")  # "各团队排名", "本月各团队GMV": every team
    metric = _first(values, "metrics")
    # What may be a name nobody knows, before the words understood ("张三今天GMV").
    lead = _LEAD.match(work.text)
    rest = _rest(work.rest(), vocabulary)
    amount: Decimal | None = claimed if isinstance(claimed, Decimal) else None
    unknown: Unknown | None = None
    if claimed == "absurd":
        unknown = Unknown("period", "", reason="absurd_amount")
    if intent == "appeal" and claimed is None:
        # A long run of digits is an order id pasted without "订单"/"orders": evidence, not
        # the claim; the claim is the last number that can be an amount.
        numbers = []
        for match in _NUMBER.finditer(rest):
            digits = match.group(1).replace(",", "")
            if "." not in digits and len(digits) > MAX_DIGITS:
                evidence.append(f"order {digits}")
            else:
                numbers.append(match)
        for digits in [f[6:] for f in evidence if f.startswith("order ")]:
            rest = _rest(rest.replace(digits, " "), vocabulary)
        numbers = list(_NUMBER.finditer(rest))
        if numbers:
            value = _amount(numbers[-1].group(1))
            if value == "absurd":
                unknown = Unknown("period", "", reason="absurd_amount")
            elif isinstance(value, Decimal):
                amount = value
                rest = _rest(rest[: numbers[-1].start()] + rest[numbers[-1].end() :], vocabulary)
    if periods.problem is not None:
        unknown = Unknown("period", periods.said or "", periods.instead, reason=periods.problem)
    elif unknown is None:
        understood = intent != "unknown" or metric is not None or periods.period is not None
        said = lead.group(1) if lead is not None and understood else None
        unknown = _unknown(intent, rest.lower(), metric, subject, names, vocabulary, said)
    if intent == "unknown" and unknown is None and (metric or periods.period or subject):
        intent = "breakdown" if values.get("breakdowns") else "progress"
    if intent == "progress" and values.get("breakdowns"):
        intent = "breakdown"
    if (intent in ("annotate", "appeal") or verb is not None) and (
        unknown is not None and unknown.kind != "period"
    ):
        unknown = None  # a note or a reason may say anything
    compare = _first(values, "compare")
    return Request(
        intent=intent,
        language=language,
        metric=metric,
        subject=subject,
        period=periods.period,
        period_said=periods.said,
        by=by if by in ("shop", "person", "day", "channel", "team") else None,  # type: ignore[arg-type]
        compare="year_ago" if compare == "year_ago" else "previous" if compare else None,
        top=top,
        bottom=bottom,
        role=_first(values, "roles"),
        verb=verb_value,
        number=number,
        amount=amount,
        evidence=tuple(evidence),
        text=rest,
        unknown=unknown,
        words=words,
        mentions=tuple(mentioned),
    )


def _note(work: _Text, context: Context) -> Request | None:
    """A note to add ("加备注 TikTok算法调整 昨天"): everything after the command word, as
    written, less the period it is for; None when the message is not a note. Links, names
    and markup in a note are its text, not evidence or mentions."""
    plain = _LINK.sub(lambda m: " " * len(m.group()), work.text)
    chosen = _choose(context.vocabulary.matches(plain))
    values: dict[str, list[str]] = {}
    for _, _, word in chosen:
        values.setdefault(word.category, []).append(word.value)
    intent = _intent(values, None, context.vocabulary, context.precedence)
    if intent != "annotate":
        return None
    keyword = next((s, e) for s, e, w in chosen if w.category == "intents" and w.value == intent)
    text = _Text(work.text, work.written)
    text.take(*keyword)
    found = _periods(_Text(text.text, text.written), context.today, context.week_start)
    if found.said:
        position = text.text.find(found.said.lower())
        if position >= 0:
            text.take(position, position + len(found.said))
    if found.period is None and found.problem is None:
        for start, end, word in chosen:
            if word.category == "periods":
                found.period, found.problem = _relative(
                    word.value, context.today, context.week_start
                )
                found.said = work.text[start:end]
                text.take(start, end)
                break
    named = _names(_Text(text.text, text.written), context.names)
    problem = Unknown("period", found.said or "", reason=found.problem) if found.problem else None
    return Request(
        intent="annotate",
        language="en",
        subject=_subject([], named, values.get("subjects", [])),
        period=found.period,
        period_said=found.said,
        text=text.rest(),
        unknown=problem,
    )


def _first(values: Mapping[str, list[str]], category: str) -> str | None:
    found = values.get(category)
    return found[0] if found else None


def _choose(matches: list[tuple[int, int, Word]]) -> list[tuple[int, int, Word]]:
    """Non-overlapping matches, longer ones first (a word may mean two things at once:
    "环比" asks to compare, and with the previous period)."""
    taken: list[tuple[int, int, Word]] = []
    for start, end, word in sorted(matches, key=lambda m: (-(m[1] - m[0]), m[0])):
        if all(end <= s or start >= e or (start, end) == (s, e) for s, e, _ in taken):
            taken.append((start, end, word))
    return sorted(taken, key=lambda m: m[0])


def _intent(
    values: Mapping[str, list[str]],
    verb_intent: str | None,
    vocabulary: Vocabulary,
    precedence: Mapping[str, int],
) -> str:
    if verb_intent is not None and verb_intent in vocabulary.known_intents:
        return verb_intent
    found = values.get("intents", [])
    if not found:
        return "unknown"
    return min(found, key=lambda intent: precedence.get(intent, 1000))


def _subject(mentioned: list[str], named: list[Subject], words: list[str]) -> Subject | None:
    if mentioned:
        return Subject("person", mentioned[0])
    if named:
        return named[0]
    if "company" in words:
        return Subject("company")
    if "team" in words:
        return Subject("team")
    if "me" in words:
        return Subject("me")
    return None


def _rest(text: str, vocabulary: Vocabulary) -> str:
    """The free text: what is left without filler words at its ends."""
    fillers = vocabulary.fillers
    tokens = text.split()
    every = fillers["zh"] | fillers["en"] | fillers["ja"]
    while tokens and tokens[0].strip(",.，。:：!！?？").lower() in every:
        tokens.pop(0)
    while tokens and tokens[-1].strip(",.，。:：!！?？").lower() in every:
        tokens.pop()
    return " ".join(tokens).strip(" ,，:：。.!！?？")


def _content(text: str, vocabulary: Vocabulary) -> list[str]:
    """The words of `text` that are not filler: Latin words, and runs of Chinese or Japanese
    characters with filler characters cut out."""
    every = vocabulary.fillers["zh"] | vocabulary.fillers["en"] | vocabulary.fillers["ja"]
    found = [w for w in _LATIN_TOKEN.findall(text) if w.strip("'") not in every and len(w) > 1]
    cjk_fillers = sorted((f for f in every if is_cjk(f)), key=len, reverse=True)
    for run in _CJK_RUN.findall(text):
        for filler in cjk_fillers:
            run = run.replace(filler, " ")
        found += [piece for piece in run.split() if len(piece) >= 2]
    return found


def _unknown(
    intent: str,
    rest: str,
    metric: str | None,
    subject: Subject | None,
    names: Names,
    vocabulary: Vocabulary,
    lead: str | None = None,
) -> Unknown | None:
    """A name or metric the text uses that kpibot does not know, with the closest known
    (`lead`: the characters before the words understood, where a name stands)."""
    if intent not in ("progress", "ranking", "compare", "breakdown", "why", "score", "unknown"):
        return None
    content = _content(rest, vocabulary)
    if not content:
        return None
    from rapidfuzz import fuzz, process

    for piece in content:
        if is_cjk(piece) and _METRIC_SUFFIX.search(piece) and metric is None:
            said = _as_written(piece, rest, vocabulary)
            return Unknown("metric", said, _closest_metrics(said, vocabulary))
    latin = [piece for piece in content if not is_cjk(piece)]
    if metric is None and any(piece in _METRIC_WORDS_EN for piece in latin):
        # "inventory turnover days", "on-time shipping rate": a measure kpibot does not have,
        # never answered with another one.
        said = " ".join(latin)
        return Unknown("metric", said, _closest_metrics(said, vocabulary))
    if subject is None:
        # A marketplace named with none or several of our shops on it ("shopee today", "tiktok
        # today" with two TikTok shops): which shop is meant, never the whole company instead.
        for piece in content:
            if piece in SHOP_PLATFORMS:
                shops = names.platforms.get(piece, [])
                offered = shops or [
                    sid for _, ids in sorted(names.platforms.items()) for sid in ids
                ]
                closest = tuple((sid, names.display[("shop", sid)]) for sid in offered[:5])
                return Unknown("shop", piece, closest, reason="platform" if shops else "")
    if subject is None and lead is not None and _may_name(lead, names, vocabulary):
        # "张三今天GMV", "李哪今天GMV", "马库斯本月GMV": someone kpibot does not know (or not by
        # that spelling), never the asker's or the team's numbers instead.
        return Unknown("person", lead, _closest_people(lead, names, by_sound=True))
    if subject is None:
        people = [
            (display, pid) for (kind, pid), display in names.display.items() if kind == "person"
        ]
        for piece in content:
            best = process.extractOne(
                piece,
                {pid: name for name, pid in names.people.items()},
                scorer=fuzz.WRatio,
                score_cutoff=60,
            )
            # A Latin word is a name in a question, or beside a metric when it is close to
            # someone's ("jess gmv today"), not in small talk.
            latin_name = intent != "unknown" or (metric is not None and best is not None)
            looks_like_name = (
                is_cjk(piece) and 2 <= len(piece) <= 4 and not _METRIC_SUFFIX.search(piece)
            ) or (not is_cjk(piece) and piece.isalpha() and latin_name)
            named = is_cjk(piece) and _names_a_person(piece, vocabulary)
            asks = best is not None or intent in ("progress", "score", "compare") or named
            if looks_like_name and asks:
                closest = _closest_people(piece, names)
                if closest or not is_cjk(piece) or named:
                    return Unknown("person", piece, closest)
        del people
    if metric is None and intent != "unknown":
        for piece in content:
            if not is_cjk(piece) and len(piece) >= 4:
                return Unknown("metric", piece, _closest_metrics(piece, vocabulary))
    return None


def _names_a_person(piece: str, vocabulary: Vocabulary) -> bool:
    """True when Chinese or Japanese characters read as someone's name: a familiar prefix
    before a family name ("小王", "老李"), or a familiar suffix after a name ("娜姐", "王总").
    A family name alone proves nothing ("周末", "方便" begin with one)."""
    prefixed = len(piece) == 2 and piece[0] in vocabulary.name_prefixes
    return (prefixed and piece[1] in vocabulary.family_names) or any(
        piece.endswith(mark) and 0 < len(piece) - len(mark) <= 2 for mark in vocabulary.name_ends
    )


def _may_name(piece: str, names: Names, vocabulary: Vocabulary) -> bool:
    """True when Chinese characters standing where a name stands may be one: they begin with a
    family name or sound like someone's name ("李哪" for 李娜), and are no word that begins
    like a name ("方便", "周一") nor a place ("江苏店")."""
    if _METRIC_SUFFIX.search(piece) or piece[-1] in vocabulary.not_name_ends:
        return False
    if any(piece.startswith(word) for word in vocabulary.not_names):
        return False
    return piece[0] in vocabulary.family_names or bool(_sounding(piece, names, near=True))


def _sounding(said: str, names: Names, *, near: bool = False) -> list[str]:
    """The names (as `names.people` keys) that `said`, in Chinese characters, sounds like
    written in Latin letters ("makusi" and "marcus"), closest first (`near`: only those a
    typo away, "lina" and "lina")."""
    if not is_cjk(said):
        return []
    from rapidfuzz import fuzz, process

    from bot.chat.pinyin import syllables

    spoken = "".join(syllables(said)).replace(" ", "")
    latin = {key: re.sub(r"[ ._-]", "", key) for key in names.people if not is_cjk(key)}
    found = process.extract(
        spoken, latin, scorer=fuzz.ratio, limit=10, score_cutoff=85 if near else 65
    )
    return [str(key) for _, _, key in found]


def _as_written(piece: str, rest: str, vocabulary: Vocabulary) -> str:
    """The name as the asker wrote it: the run of characters `piece` was cut from, without
    the filler words it begins with ("发货及时率", not "时率" with "及" taken for "and")."""
    every = vocabulary.fillers["zh"] | vocabulary.fillers["ja"]
    run = next((r for r in _CJK_RUN.findall(rest) if piece in r), piece)
    run = run[: run.index(piece) + len(piece)]
    while True:
        lead = next((f for f in every if is_cjk(f) and run.startswith(f) and f != run), None)
        if lead is None or len(run) - len(lead) < len(piece):
            return run
        run = run[len(lead) :]


def _closest_metrics(said: str, vocabulary: Vocabulary) -> tuple[tuple[str, str], ...]:
    from rapidfuzz import fuzz, process

    choices = {
        f"{key}\0{name}": name for key, names in vocabulary.metric_names.items() for name in names
    }
    found = process.extract(said, choices, scorer=fuzz.partial_ratio, limit=12)
    keys: list[tuple[str, str]] = []
    for _, _, choice in found:
        key = choice.split("\0", 1)[0]
        if key not in [k for k, _ in keys]:
            keys.append((key, key))
    return tuple(keys[:3])


def _closest_people(
    said: str, names: Names, *, by_sound: bool = False
) -> tuple[tuple[str, str], ...]:
    """The people whose names are closest to `said` (`by_sound`: Chinese characters that stand
    for a name are also compared with names in pinyin, "马库斯" with Marcus)."""
    from rapidfuzz import fuzz, process

    found = process.extract(said, list(names.people), scorer=fuzz.WRatio, limit=10, score_cutoff=55)
    # Chinese characters are also compared by their sound: "李哪" is 李娜 mistyped.
    keys = [*_sounding(said, names, near=True), *(key for key, _, _ in found)]
    if by_sound:  # then the same family name ("张三": 张伟), then names that sound alike
        keys += [key for key in names.people if is_cjk(key) and key[0] == said[0]]
        keys += _sounding(said, names)
    ids: list[str] = []
    for key in keys:
        person = names.people[key]
        if person not in ids:
            ids.append(person)
    return tuple((pid, names.display[("person", pid)]) for pid in ids[:3])
