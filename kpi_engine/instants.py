"""Instants and local dates: every stored instant is integer Unix seconds (UTC)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

UTC = ZoneInfo("UTC")

# Epoch seconds past this are almost certainly milliseconds sent by mistake (year 2286).
_MAX_EPOCH_SECONDS = 9_999_999_999
_MIN_EPOCH_SECONDS = 946_684_800  # 2000-01-01T00:00:00Z: nothing sold online before counts here
EPOCH_SECONDS = (_MIN_EPOCH_SECONDS, _MAX_EPOCH_SECONDS)  # the epoch seconds parse_instant takes


class InstantError(ValueError):
    """A time value that cannot be turned into one unambiguous instant."""


@cache
def zone(name: str) -> ZoneInfo:
    """The IANA time zone called `name` (cached); raises InstantError when unknown."""
    if name not in zone_names():
        raise InstantError(
            f"unknown time zone {name!r} (expected an IANA name such as Asia/Shanghai)"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InstantError(f"unknown time zone {name!r}") from None


@cache
def zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def is_zone(name: str) -> bool:
    """True for a known IANA time zone name."""
    return name in zone_names()


def parse_instant(text: str, tz: ZoneInfo) -> int:
    """Parse epoch seconds, ISO 8601 with an offset, or a naive local time in `tz`.

    A naive time that falls in a daylight-saving gap does not exist and is refused; one that
    falls in the repeated hour is taken as its first occurrence.
    """
    raw = text.strip()
    if not raw:
        raise InstantError("is empty")
    if raw.isascii() and raw.isdigit():
        seconds = int(raw)
        if seconds > _MAX_EPOCH_SECONDS:
            raise InstantError("is too large for epoch seconds (milliseconds?)")
        if seconds < _MIN_EPOCH_SECONDS:
            raise InstantError("is before 2000 as epoch seconds (an Excel date serial number?)")
        return seconds
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise InstantError(
            "is not a time (use ISO 8601 such as 2026-11-20T20:15:00+08:00, "
            "a local time such as 2026-11-20 20:15:00, or epoch seconds)"
        ) from None
    if len(raw) <= 10:
        raise InstantError("is a date, not a time of day")
    if parsed.year < 2000:
        raise InstantError("is before 2000: not a time in this shop's data")
    if parsed.tzinfo is None:
        local = parsed.replace(tzinfo=tz, fold=0)
        # Round-tripping through UTC moves a time inside a DST gap: such a time never existed.
        if local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != parsed:
            raise InstantError(f"does not exist in {tz.key} (daylight-saving gap)")
        parsed = local
    return int(parsed.timestamp() // 1)


def parse_date(text: str) -> date:
    """Parse a calendar date written YYYY-MM-DD."""
    raw = text.strip()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InstantError("is not a date (expected YYYY-MM-DD)") from None


def local_date(epoch: int, tz: ZoneInfo) -> date:
    """The calendar date of an instant in `tz`."""
    return datetime.fromtimestamp(epoch, tz).date()


def day_bounds(day: date, tz: ZoneInfo) -> tuple[int, int]:
    """[start, end) of a local calendar day in epoch seconds (23 or 25 hours on DST days)."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return int(start.timestamp()), int(end.timestamp())


def to_iso(epoch: int, tz: ZoneInfo | None = None) -> str:
    """An instant as ISO 8601 text with its offset, in `tz` (UTC when omitted)."""
    return datetime.fromtimestamp(epoch, tz or UTC).isoformat()
