"""The words the parser knows, read once from the synonym files (`bot/i18n/synonyms/*.yaml`),
the metric catalogue and the organisation (people, teams, shops by name, id, first name,
pinyin and alias).

Chinese and Japanese words are matched as substrings, Latin ones as whole words; every table
holds all languages, since a Chinese speaker may type "GMV today" and an English one "今天".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bot.i18n import LANGUAGES
from kpi_engine.languages import Language
from kpi_engine.metrics import Catalogue
from kpi_engine.organisation import Organisation

SYNONYMS_DIR = Path(__file__).resolve().parent.parent / "i18n" / "synonyms"
# Categories of words that map to a value.
CATEGORIES = (
    "metrics",
    "periods",
    "subjects",
    "breakdowns",
    "roles",
    "compare",
    "intents",
    "verbs",
)

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")


def normalise(text: str) -> str:
    """Full-width to half-width, compatibility forms folded, lower case, spaces collapsed."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return " ".join(folded.split())


def is_cjk(word: str) -> bool:
    """True when a word has Chinese or Japanese characters (matched as a substring)."""
    return bool(_CJK.search(word))


@dataclass(frozen=True)
class Word:
    """A word or phrase people type, what it means, and the language it belongs to."""

    text: str  # normalised
    category: str
    value: str
    language: Language


@cache
def _synonyms(language: str) -> dict[str, Any]:
    path = SYNONYMS_DIR / f"{language}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping")
    return data


def synonyms(language: str) -> dict[str, Any]:
    """A language's synonym file, as read."""
    return _synonyms(language)


@dataclass(frozen=True)
class Names:
    """What can be recognised as a person, team or shop: normalised names and ids → ids, and
    each platform's user ids → person ids."""

    people: dict[str, str]
    teams: dict[str, str]
    shops: dict[str, str]
    platforms: dict[str, list[str]]  # a shop platform's name ("shopee") → its shops
    display: dict[tuple[str, str], str]  # (kind, id) → the name people know it by
    mentions: dict[str, dict[str, str]] = field(default_factory=dict)
    # A person → the team "their team" is: the one they manage, else their own ("Emily的团队").
    team_of: dict[str, str] = field(default_factory=dict)


def _pinyin(name: str) -> list[str]:
    """ "李娜" → ["li na", "lina", "na li"]; empty for names without Chinese characters."""
    if not is_cjk(name):
        return []
    from bot.chat.pinyin import syllables as read  # pypinyin loads when a name is first read

    syllables = [s for s in read(name) if s.strip()]
    if len(syllables) < 2:
        return []
    given = " ".join(syllables[1:])
    return [" ".join(syllables), "".join(syllables), f"{given} {syllables[0]}"]


def _shop_aliases(name: str, platform: str, region: str) -> list[str]:
    """How people name a shop besides its id and full name: the name's first part ("TikTok
    Shop UK" of "TikTok Shop UK — Glow Beauty"), its platform and country ("tiktok uk",
    "amazon jp"), and its country's shop as each language says it (`shop_forms` in its synonyms)."""
    from babel import Locale  # the country names of CLDR

    codes = {region, "UK"} if region == "GB" else {region}
    found = [name.split(" — ")[0].strip()]
    found += [f"{platform} {code}" for code in codes]
    for language in LANGUAGES:
        country = Locale.parse(language).territories.get(region)
        if country:
            forms = synonyms(language).get("shop_forms") or ()
            found += [str(form).format(country) for form in forms]
    return found


def names_of(organisation: Organisation) -> Names:
    """Every way the organisation's people, teams and shops may be named."""
    people: dict[str, str] = {}
    teams: dict[str, str] = {}
    shops: dict[str, str] = {}
    display: dict[tuple[str, str], str] = {}
    firsts: dict[str, list[str]] = {}
    for person in organisation.people.values():
        display[("person", person.id)] = person.name
        keys = [person.id, person.name, person.id.replace(".", " "), *_pinyin(person.name)]
        keys += list(getattr(person, "aliases", ()) or ())
        for key in keys:
            people.setdefault(normalise(key), person.id)
        parts = normalise(person.name).split()
        if len(parts) > 1:  # "Jessica Lee": "jessica" alone names her while it is unique
            firsts.setdefault(parts[0], []).append(person.id)
    for first, ids in firsts.items():
        if len(ids) == 1:
            people.setdefault(first, ids[0])
    for team in organisation.teams.values():
        display[("team", team.id)] = team.name
        for key in (team.id, team.name, *(getattr(team, "aliases", ()) or ())):
            teams.setdefault(normalise(key), team.id)
    platforms: dict[str, list[str]] = {}
    said: dict[str, set[str]] = {}
    for shop in organisation.shops.values():
        display[("shop", shop.id)] = shop.name
        for key in (shop.id, shop.name):
            shops.setdefault(normalise(key), shop.id)
        platforms.setdefault(shop.platform, []).append(shop.id)
        for alias in _shop_aliases(shop.name, shop.platform, shop.region):
            said.setdefault(normalise(alias), set()).add(shop.id)
    for alias, owners in said.items():
        if len(owners) == 1:  # "英国店" names the UK shop while it is the only one there
            shops.setdefault(alias, next(iter(owners)))
    mentions: dict[str, dict[str, str]] = {}
    for person in organisation.people.values():
        for platform in ("slack", "feishu", "dingtalk"):
            user = person.chat.get(platform)
            if user:
                mentions.setdefault(platform, {})[user] = person.id
    team_of = {person.id: person.team for person in organisation.people.values()}
    for team in sorted(organisation.teams.values(), key=lambda t: t.id, reverse=True):
        if team.manager in team_of:  # the first team (by id) a manager manages
            team_of[team.manager] = team.id
    return Names(people, teams, shops, platforms, display, mentions, team_of)


@dataclass(frozen=True)
class Vocabulary:
    """Every word the parser matches, longest first, and each language's filler words."""

    cjk: tuple[Word, ...]
    latin: tuple[Word, ...]
    latin_index: Mapping[str, tuple[Word, ...]]  # first word of a phrase → its words
    fillers: Mapping[Language, frozenset[str]]
    claims: tuple[str, ...]
    order_words: tuple[str, ...]
    bottom: tuple[str, ...]
    # How a word shows it names a person ("小王", "娜姐"): a familiar prefix before a family
    # name, a familiar suffix at its end.
    family_names: frozenset[str]
    name_prefixes: frozenset[str]
    name_ends: frozenset[str]
    # Words that begin with a family name but are no name ("方便", "周一"), and last characters
    # that make a place of a name ("江苏店").
    not_names: frozenset[str]
    not_name_ends: frozenset[str]
    # What follows a person's name to mean their team ("的团队", "'s team", "のチーム").
    team_of: tuple[str, ...]
    metric_names: Mapping[str, tuple[str, ...]]  # metric key → the names it is known by
    known_intents: frozenset[str]
    languages: Mapping[str, frozenset[Language]]  # a word → the languages that use it

    def matches(self, text: str) -> list[tuple[int, int, Word]]:
        """Every word found in `text` as (start, end, word), longest first at each place."""
        found: list[tuple[int, int, Word]] = []
        for word in self.cjk:
            start = text.find(word.text)
            while start >= 0:
                found.append((start, start + len(word.text), word))
                start = text.find(word.text, start + 1)
        for token in re.finditer(r"[a-z0-9][a-z0-9'._\-]*", text):
            for word in self.latin_index.get(token.group().strip("._-'"), ()):
                end = token.start() + len(word.text)
                if text.startswith(word.text, token.start()) and (
                    end == len(text) or not re.match(r"[a-z0-9]", text[end])
                ):
                    found.append((token.start(), end, word))
        return found


def vocabulary(catalogue: Catalogue, intents: Iterable[str]) -> Vocabulary:
    """The vocabulary for a metric catalogue and the registered intents."""
    words: list[Word] = []
    fillers: dict[Language, frozenset[str]] = {}
    claims: list[str] = []
    orders: list[str] = []
    bottom: list[str] = []
    families: set[str] = set()
    prefixes: set[str] = set()
    ends: set[str] = set()
    not_names: set[str] = set()
    not_name_ends: set[str] = set()
    team_of: set[str] = set()
    known = frozenset(intents)
    for language in LANGUAGES:
        data = synonyms(language)
        for category in CATEGORIES:
            for value, listed in (data.get(category) or {}).items():
                if category == "metrics" and value not in catalogue.metrics:
                    continue  # a metric this organisation does not have
                if category == "intents" and value not in known:
                    continue
                for text in listed or ():
                    words.append(Word(normalise(str(text)), category, str(value), language))
        fillers[language] = frozenset(normalise(str(w)) for w in data.get("fillers") or ())
        claims += [normalise(str(w)) for w in data.get("claim") or ()]
        orders += [normalise(str(w)) for w in data.get("orders_word") or ()]
        bottom += [normalise(str(w)) for w in data.get("bottom") or ()]
        marks = data.get("name_marks") or {}
        families |= {str(w) for w in marks.get("family_names") or ()}
        prefixes |= {str(w) for w in marks.get("prefixes") or ()}
        ends |= {str(w) for w in marks.get("ends") or ()}
        not_names |= {normalise(str(w)) for w in marks.get("not_names") or ()}
        not_name_ends |= {str(w) for w in marks.get("not_ends") or ()}
        team_of |= {normalise(str(w)) for w in data.get("team_of") or ()}
    metric_names: dict[str, list[str]] = {}
    for name, key in catalogue.words():  # the catalogue is where metrics' words live
        text = normalise(name)
        words.append(Word(text, "metrics", key, "zh" if is_cjk(text) else "en"))
        metric_names.setdefault(key, []).append(text)
    unique = {(w.text, w.category, w.value): w for w in words if w.text}
    languages: dict[str, set[Language]] = {}
    for word in words:
        languages.setdefault(word.text, set()).add(word.language)
    ordered = sorted(unique.values(), key=lambda w: -len(w.text))
    latin = tuple(w for w in ordered if not is_cjk(w.text))
    index: dict[str, list[Word]] = {}
    for word in latin:
        first = re.split(r"[\s]", word.text, maxsplit=1)[0].strip("._-'")
        index.setdefault(first, []).append(word)
    return Vocabulary(
        cjk=tuple(w for w in ordered if is_cjk(w.text)),
        latin=latin,
        latin_index={k: tuple(v) for k, v in index.items()},
        fillers=fillers,
        claims=tuple(sorted(set(claims), key=len, reverse=True)),
        order_words=tuple(sorted(set(orders), key=len, reverse=True)),
        bottom=tuple(sorted(set(bottom), key=len, reverse=True)),
        family_names=frozenset(families),
        name_prefixes=frozenset(prefixes),
        name_ends=frozenset(ends),
        not_names=frozenset(not_names),
        not_name_ends=frozenset(not_name_ends),
        team_of=tuple(sorted(team_of, key=len, reverse=True)),
        metric_names={k: tuple(v) for k, v in metric_names.items()},
        known_intents=known,
        languages={k: frozenset(v) for k, v in languages.items()},
    )
