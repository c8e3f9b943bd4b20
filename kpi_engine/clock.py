"""The one clock: the only module that reads the wall clock.

Everything that needs "now" is given a `Clock` (a callable returning epoch seconds) or an
explicit `now`; the composition root builds the clock once from the settings: the system
clock, or — with `KPIBOT_NOW` / `--now` — a pinned instant, so a past moment can be replayed
exactly. A test pins the clock too, so no test depends on the day it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kpi_engine.instants import parse_instant, zone

Clock = Callable[[], float]


def system_clock() -> float:
    """The wall clock, in epoch seconds."""
    return time.time()


def fixed_clock(at: float) -> Clock:
    """A clock that always says `at` (one-shot commands replaying a moment, tests)."""

    def now() -> float:
        return at

    return now


def shifted_clock(start: float, *, ticks: Callable[[], float] = time.monotonic) -> Clock:
    """A clock that starts at `start` and runs at the real pace from there (a long-running
    process replaying the past, or a test server whose timers must still move)."""
    origin = ticks()

    def now() -> float:
        return start + (ticks() - origin)

    return now


def parse_now(text: str, timezone: str) -> int:
    """Epoch seconds of a `--now` value: `2026-11-24T10:30` is a local time in `timezone`;
    `2026-11-24T10:30+08:00` (or `…Z`, or epoch seconds) is absolute. InstantError otherwise."""
    return parse_instant(text, zone(timezone))
