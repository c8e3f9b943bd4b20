"""Scopes: whose numbers a figure or target is for."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

ScopeKind = Literal["company", "team", "shop", "person"]


class ScopeError(ValueError):
    """An entity that is not known."""


@dataclass(frozen=True)
class Scope:
    """Whose numbers: the company, a team (its shops and people), a shop, or a person.

    A person's orders are those credited to them (docs/metrics.md, "Attribution").
    """

    kind: ScopeKind
    id: str = ""

    def text(self) -> str:
        """ "company", "team:sz-live", "person:li.na" — the form `parse_scope` reads."""
        return self.kind if self.kind == "company" else f"{self.kind}:{self.id}"


_ENTITY_HELP = "use company, team:<id>, shop:<id> or person:<id>"


def parse_scope(
    text: str,
    *,
    teams: Collection[str],
    shops: Collection[str],
    people: Collection[str],
) -> Scope:
    """`company`, `team:<id>`, `shop:<id>` or `person:<id>`; a bare id is looked up too."""
    kind, _, ident = text.strip().partition(":")
    known: dict[str, Collection[str]] = {"team": teams, "shop": shops, "person": people}
    if not ident:
        if kind == "company":
            return Scope("company")
        for candidate, entries in known.items():
            if kind in entries:
                return Scope(candidate, kind)  # type: ignore[arg-type]
        raise ScopeError(f"unknown entity {text!r} ({_ENTITY_HELP})")
    if kind not in known:
        raise ScopeError(f"unknown entity kind {kind!r} ({_ENTITY_HELP})")
    if ident not in known[kind]:
        raise ScopeError(f"unknown {kind} {ident!r}")
    return Scope(kind, ident)  # type: ignore[arg-type]
