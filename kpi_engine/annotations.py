"""Annotations: dated notes on an entity's numbers, kept with who wrote them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, insert, select

from kpi_engine.models import Annotation
from kpi_engine.units import reading, writing

_ANNOTATIONS = Annotation.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Note:
    """One annotation."""

    entity: str
    day: date
    text: str
    author: str
    created_at: int


def add_note(engine: Engine, entity: str, day: date, text: str, author: str, *, now: int) -> Note:
    """Record a note on `entity` for `day`."""
    note = Note(entity, day, text.strip(), author, now)
    with writing(engine) as conn:
        conn.execute(
            insert(_ANNOTATIONS).values(
                entity=entity, day=day, text=note.text, author=author, created_at=now
            )
        )
    return note


def notes(engine: Engine, entities: list[str], first: date, last: date) -> list[Note]:
    """The notes on any of `entities` dated first..last, oldest first."""
    a = _ANNOTATIONS
    query = (
        select(a.c.entity, a.c.day, a.c.text, a.c.author, a.c.created_at)
        .where(a.c.entity.in_(entities), a.c.day >= first, a.c.day <= last)
        .order_by(a.c.day, a.c.created_at, a.c.id)
    )
    with reading(engine) as conn:
        return [Note(*row) for row in conn.execute(query)]
