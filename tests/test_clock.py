"""The one clock: moments read the way `--now` takes them, pinned and running clocks, and no
other code that reads the wall clock."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kpi_engine.clock import fixed_clock, parse_now, shifted_clock
from kpi_engine.instants import InstantError
from tests.conftest import ROOT


def test_a_moment_is_a_local_time_in_the_given_zone_unless_it_has_an_offset() -> None:
    shanghai = parse_now("2026-11-24T10:30", "Asia/Shanghai")
    assert shanghai == 1_795_487_400  # 02:30 UTC
    assert parse_now("2026-11-24 10:30", "Asia/Shanghai") == shanghai
    assert parse_now("2026-11-24T10:30+08:00", "America/Los_Angeles") == shanghai
    assert parse_now("2026-11-24T02:30Z", "Asia/Tokyo") == shanghai
    assert parse_now("2026-11-24T10:30", "America/Los_Angeles") == shanghai + 16 * 3600
    assert parse_now(str(shanghai), "Europe/London") == shanghai
    for wrong in ("9am", "2026-11-24", "2026-02-30T10:00", "tomorrow"):
        with pytest.raises(InstantError):
            parse_now(wrong, "Asia/Shanghai")
    with pytest.raises(InstantError, match="daylight-saving gap"):
        parse_now("2027-03-14T02:30", "America/Los_Angeles")


def test_a_pinned_clock_stands_still_and_a_shifted_one_runs_from_its_start() -> None:
    pinned = fixed_clock(1000.0)
    assert pinned() == pinned() == 1000.0
    ticks = iter([50.0, 50.0, 52.5, 60.0])
    running = shifted_clock(1000.0, ticks=lambda: next(ticks))
    assert [running(), running(), running()] == [1000.0, 1002.5, 1010.0]


# Reading the wall clock: only kpi_engine/clock.py may (monotonic timers are not the wall clock).
_WALL_CLOCK = re.compile(
    r"\btime\.time(_ns)?\(|\bdatetime\.(now|utcnow|today)\(|\bdate\.today\(|"
    r"\btime\.(localtime|gmtime|ctime)\(\)|\bdatetime\.datetime\.now\("
)


def test_nothing_but_the_clock_reads_the_wall_clock() -> None:
    found = []
    for folder in ("bot", "adapters", "kpi_engine", "config", "connectors", "bench", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "kpi_engine" / "clock.py" or path == Path(__file__):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if _WALL_CLOCK.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == [], "read the time from kpi_engine.clock (or an injected clock):\n" + "\n".join(
        found
    )
