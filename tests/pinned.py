"""The moment the end-to-end tests live at, a Tuesday morning in Shanghai: their data ends on
that day and the app's clock starts there (KPIBOT_NOW), so they pass on any day they run."""

from __future__ import annotations

from datetime import date

from kpi_engine.clock import parse_now

PINNED_AT = "2026-11-24T10:30:00+08:00"
PINNED = parse_now(PINNED_AT, "UTC")
PINNED_DAY = date(2026, 11, 24)
