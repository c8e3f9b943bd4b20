"""Small helpers shared by the tests: waiting for something another thread does, and loading
the demo workspace's data."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from sqlalchemy import Engine

from kpi_engine.clock import parse_now
from kpi_engine.demo_data import FILE_KINDS, generate
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.organisation import Organisation
from tests.conftest import EXAMPLE_CONFIG

# The end-to-end tests live at this moment, a Tuesday morning in Shanghai: their data ends on
# that day and the app's clock starts there (KPIBOT_NOW), so they pass on any day they run.
PINNED_AT = "2026-11-24T10:30:00+08:00"
PINNED = parse_now(PINNED_AT, "UTC")
PINNED_DAY = date(2026, 11, 24)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait until `condition()` holds (a server thread, a sender loop); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def load_demo(
    engine: Engine, organisation: Organisation, directory: Path, *, days: int, end: date, seed: int
) -> Engine:
    """Generate the example organisation's demo data and import it."""
    data = generate(organisation, EXAMPLE_CONFIG, directory, days=days, end=end, seed=seed)
    for label, path in data.files.items():
        assert import_file(engine, organisation, KINDS[FILE_KINDS.get(label, label)], path).ok
    return engine
