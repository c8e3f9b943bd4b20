"""Time for the connectors: read and waited on through one injected object."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from kpi_engine.clock import system_clock


class Clock(Protocol):
    """Where a connector reads the time and waits (tests pass a virtual one)."""

    def now(self) -> float:
        """Epoch seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait this long."""
        ...


class SystemClock:
    """The application's clock (`kpi_engine.clock`: the system's, or a pinned one) with real
    waits: only the composition root (bot/, bench/) builds one."""

    def __init__(self, clock: Callable[[], float] = system_clock) -> None:
        self._clock = clock

    def now(self) -> float:
        """Epoch seconds from the application's clock."""
        return self._clock()

    def sleep(self, seconds: float) -> None:
        """Block for `seconds`."""
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """A clock that only moves when slept on or advanced: sleeps cost no real time."""

    def __init__(self, start: float) -> None:
        self.at = float(start)
        self.slept = 0.0

    def now(self) -> float:
        """The virtual time."""
        return self.at

    def sleep(self, seconds: float) -> None:
        """Move the virtual time on."""
        if seconds > 0:
            self.at += seconds
            self.slept += seconds

    def advance(self, seconds: float) -> None:
        """Let time pass without sleeping (the world goes on)."""
        self.at += seconds
