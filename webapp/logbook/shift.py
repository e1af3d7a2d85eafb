"""Shifts on the plant's clock (DESIGN.md §18): pure functions, no database, no request.

A tenant's `shift_starts` lists the wall-clock times its shifts begin, e.g. "06:00,18:00", in
the tenant's timezone. The current shift began at the most recent of those times at or before
now. Around a DST change a start is the moment the plant's clock shows it: the first one when
the clock shows it twice (the autumn hour), and — when the clock skips it (the spring hour) —
the same distance after the last time before the gap (02:30 in a skipped 02:00–03:00 hour
is 03:30 new time), which is what Python's zoneinfo does with `fold=0`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from webapp.db import as_utc

DEFAULT_SHIFT_STARTS = (time(6, 0), time(18, 0))
_START = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_shift_starts(config: str | None) -> tuple[time, ...]:
    """ "06:00,18:00" → (06:00, 18:00), sorted and without repeats. Anything malformed — empty,
    not HH:MM on a 24-hour clock, a stray comma — gives the default rather than no shifts."""
    if not config:
        return DEFAULT_SHIFT_STARTS
    starts = set()
    for part in config.split(","):
        match = _START.match(part.strip())
        if match is None:
            return DEFAULT_SHIFT_STARTS
        starts.add(time(int(match.group(1)), int(match.group(2))))
    return tuple(sorted(starts))


def plant_zone(timezone: str | None) -> ZoneInfo:
    """The tenant's timezone; an unknown name falls back to UTC instead of failing a page."""
    try:
        return ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def current_shift_start(now: datetime, shift_starts: str | None, timezone: str | None) -> datetime:
    """When the shift running at `now` (naive means UTC) began, as aware UTC: the most recent
    configured start at or before `now` on the plant's clock."""
    zone = plant_zone(timezone)
    now_utc = as_utc(now)
    today = now_utc.astimezone(zone).date()
    # Today's starts, and yesterday's for the hours before today's first start; two days back
    # covers a DST change that moves a start across midnight.
    candidates = [
        datetime.combine(today - timedelta(days=days_back), start, tzinfo=zone).astimezone(UTC)
        for days_back in (0, 1, 2)
        for start in parse_shift_starts(shift_starts)
    ]
    # Compared in UTC: aware datetimes sharing a tzinfo compare by wall clock, ignoring fold.
    return max(candidate for candidate in candidates if candidate <= now_utc)
