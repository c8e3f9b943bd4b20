"""Units of work: a command's writes commit together when it answers, or not at all."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from kpi_engine.annotations import add_note, notes
from kpi_engine.models import InboundEvent
from kpi_engine.units import unit_of_work, writing

DAY = date(2026, 11, 10)
NOW = 1_794_000_000


def written(engine: Engine) -> list[str]:
    return [n.text for n in notes(engine, ["team:sz-live"], DAY, DAY)]


def test_what_a_unit_wrote_is_seen_inside_it_and_gone_when_it_fails(engine: Engine) -> None:
    def command() -> None:
        with unit_of_work(engine):
            add_note(engine, "team:sz-live", DAY, "11.11 预热", "wang.fang", now=NOW)
            add_note(engine, "team:sz-live", DAY, "TikTok 算法调整", "wang.fang", now=NOW)
            assert written(engine) == ["11.11 预热", "TikTok 算法调整"]  # read back inside
            raise LookupError("the command fails after its writes")

    with pytest.raises(LookupError):
        command()
    assert written(engine) == []
    with unit_of_work(engine):
        add_note(engine, "team:sz-live", DAY, "11.11 预热", "wang.fang", now=NOW)
        with unit_of_work(engine):  # an inner unit is part of the outer one
            add_note(engine, "team:sz-live", DAY, "TikTok 算法调整", "wang.fang", now=NOW)
    assert written(engine) == ["11.11 预热", "TikTok 算法调整"]


def test_a_store_that_catches_a_taken_key_leaves_the_unit_usable(engine: Engine) -> None:
    event = {
        "platform": "slack",
        "workspace": "T1",
        "event_id": "Ev1",
        "sender": "U1",
        "channel": "C1",
        "received_at": NOW,
    }
    with unit_of_work(engine):
        for _ in range(2):
            try:
                with writing(engine) as conn:
                    conn.execute(insert(InboundEvent.__table__).values(**event))  # type: ignore[attr-defined]
            except IntegrityError:
                pass  # taken already: the store goes on (PostgreSQL needs the savepoint)
        add_note(engine, "team:sz-live", DAY, "11.11 预热", "wang.fang", now=NOW)
    assert written(engine) == ["11.11 预热"]
