"""Imports never block chat: a big import publishes in bounded steps (SQLite) or in a
transaction that blocks no other writer (PostgreSQL), and a delivery is recorded while it
runs; a file that fails, or an import killed, while publishing leaves nothing behind."""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bot.chat.inbox import Inbox
from bot.chat.messages import InboundMessage
from kpi_engine.db import make_engine
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_rows
from kpi_engine.ingest.readers import read_path
from kpi_engine.organisation import Organisation
from tests.test_import import ORDER_HEADER, snapshot, write

ROWS = 20_000
STEP = 1_000  # the chunk size: on SQLite each published step holds at most this many rows


def order_lines(count: int, prefix: str = "K", update_time: int = 1795500100) -> list[str]:
    return [
        f"{prefix}{i},tiktok,tts-us-01,UNPAID,USD,1795500000,,{update_time},{i}.00,{i}.00,,,"
        for i in range(count)
    ]


def deliver(engine: Engine, number: int) -> int | None:
    """Record a chat delivery the way the web process does."""
    message = InboundMessage(
        "slack", "T1", "C1", "U1", "今天GMV", f"Ev{number}", received_at=1795500000
    )
    return Inbox(engine).record(message, event_id=message.event_id, claim=True)


def test_a_delivery_is_recorded_between_two_steps_of_a_big_import(
    db_url: str, engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    file = write(tmp_path / "orders.csv", ORDER_HEADER, *order_lines(ROWS))
    log: list[str] = []  # what happened, in order
    published: list[int] = []
    mid_import, delivered = threading.Event(), threading.Event()

    def step(rows: int) -> None:
        published.append(rows)
        log.append(f"step {len(published)}")
        if len(published) == 3:
            mid_import.set()
            # The import waits here, between its third and fourth step, for the delivery: were
            # it still holding the write lock, the delivery could not be recorded.
            delivered.wait(timeout=60)

    def record() -> None:
        mid_import.wait(timeout=60)
        web = make_engine(db_url)  # as the web process would: connections of its own
        try:
            if deliver(web, 1) is not None:
                log.append("delivered")
        finally:
            web.dispose()
            delivered.set()

    recorder = threading.Thread(target=record)
    recorder.start()
    report = import_rows(
        engine, organisation, KINDS["orders"], read_path(file), chunk_size=STEP, progress=step
    )
    log.append("import finished")
    recorder.join(timeout=90)
    assert report.ok and report.inserted == ROWS, report.render()
    assert "delivered" in log, "the delivery could not be recorded while the import ran"
    assert log.index("step 3") < log.index("delivered") < log.index("step 4")
    sizes = [b - a for a, b in zip([0, *published], published, strict=False)]
    assert len(sizes) == ROWS // STEP and max(sizes) <= STEP
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM orders")).scalar_one() == ROWS


def test_deliveries_keep_being_recorded_while_a_big_import_runs(
    db_url: str, engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    """No pause this time: deliveries are recorded one after another while the import runs
    flat out, and the first of them gets in before the import's last step."""
    file = write(tmp_path / "orders.csv", ORDER_HEADER, *order_lines(ROWS))
    log: list[str] = []
    started, finished = threading.Event(), threading.Event()

    def step(rows: int) -> None:
        log.append("step")
        started.set()

    def record() -> None:
        started.wait(timeout=60)
        web = make_engine(db_url)
        try:
            number = 0
            while not finished.is_set():
                number += 1
                if deliver(web, number) is not None:
                    log.append("delivered")
        finally:
            web.dispose()

    recorder = threading.Thread(target=record)
    recorder.start()
    try:
        report = import_rows(
            engine, organisation, KINDS["orders"], read_path(file), chunk_size=STEP, progress=step
        )
    finally:
        finished.set()
        recorder.join(timeout=90)
    assert report.ok and report.inserted == ROWS, report.render()
    last_step = len(log) - 1 - log[::-1].index("step")
    assert "delivered" in log[:last_step], "every delivery waited for the import to end"


def test_a_conflict_found_while_publishing_takes_the_published_steps_back_out(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    first = write(tmp_path / "first.csv", ORDER_HEADER, *order_lines(10))
    assert import_rows(engine, organisation, KINDS["orders"], read_path(first)).ok
    before = snapshot(engine)
    # Revisions of the stored orders (newer update_time) and new orders, published two rows a
    # step; near the end a row that differs from a stored one with the same update_time.
    rows = [
        *order_lines(10, update_time=1795500200)[:6],
        *order_lines(8, prefix="N"),
        "K9,tiktok,tts-us-01,CANCELLED,USD,1795500000,,1795500100,9.00,9.00,,,",
    ]
    second = write(tmp_path / "second.csv", ORDER_HEADER, *rows)
    published: list[int] = []
    report = import_rows(
        engine,
        organisation,
        KINDS["orders"],
        read_path(second),
        chunk_size=2,
        progress=published.append,
    )
    assert [str(e) for e in report.errors] == [
        "second.csv: line 16, column update_time: differs from the stored row with the same "
        "update_time; give the change a newer update_time"
    ]
    assert report.batch_id is None
    if engine.dialect.name == "sqlite":
        assert len(published) == 7  # steps were published before the conflict was found
    assert snapshot(engine) == before


@pytest.mark.backends("sqlite")
def test_an_import_killed_while_publishing_is_taken_back_out_by_the_next(
    db_url: str, engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    first = write(tmp_path / "first.csv", ORDER_HEADER, *order_lines(10))
    assert import_rows(engine, organisation, KINDS["orders"], read_path(first)).ok
    before = snapshot(engine)
    rows = [*order_lines(10, update_time=1795500200), *order_lines(10, prefix="N")]
    second = write(tmp_path / "second.csv", ORDER_HEADER, *rows)

    def killed_after_two_steps() -> None:
        def step(rows: int) -> None:
            if rows >= 8:
                os._exit(9)  # no clean-up runs: as if killed

        import_rows(
            make_engine(db_url),
            organisation,
            KINDS["orders"],
            read_path(second),
            chunk_size=4,
            progress=step,
        )

    child = multiprocessing.get_context("fork").Process(target=killed_after_two_steps)
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 9
    with engine.connect() as conn:
        unfinished = conn.execute(text("SELECT id FROM import_batches WHERE rows = 0")).all()
        assert len(unfinished) == 1
        assert conn.execute(text("SELECT count(*) FROM record_history")).scalar_one() == 8
    # The next import on the database takes the unfinished one back out before its own.
    rates = write(tmp_path / "fx.csv", "date,currency,quote,rate", "2026-11-20,USD,CNY,7.12")
    report = import_rows(engine, organisation, KINDS["fx_rates"], read_path(rates))
    assert report.ok, report.render()
    after = snapshot(engine)
    assert len(after.pop("fx_rates")) == 1
    batches = after.pop("import_batches")
    assert batches[:-1] == before.pop("import_batches") and batches[-1][1] == "fx_rates"
    before.pop("fx_rates")
    assert after == before


def test_an_import_still_publishing_is_not_yet_fresh_data(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    from kpi_engine.figures import Figures
    from kpi_engine.freshness import last_imports

    file = write(tmp_path / "orders.csv", ORDER_HEADER, *order_lines(10))
    done = import_rows(engine, organisation, KINDS["orders"], read_path(file), now=1795500200)
    assert done.ok
    # What a SQLite import leaves while it publishes its steps (or after it was killed): its
    # batch row at rows = 0, until the last step writes the counts.
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO import_batches (kind, source, columns, imported_at, rows, inserted,"
                " revised, unchanged, stale) VALUES ('orders', 'big.csv', '[]', 1795509999,"
                " 0, 0, 0, 0, 0)"
            )
        )
    assert last_imports(engine)["orders"] == 1795500200
    with engine.connect() as conn:
        assert Figures._freshness(conn)["orders"] == 1795500200
