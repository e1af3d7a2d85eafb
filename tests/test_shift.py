"""When the current shift began (DESIGN.md §18): the tenant's `shift_starts` on the plant's
clock. Pure functions, no database. Expected instants are worked out by hand in the comments;
the sweep at the end checks every 10 minutes of two weeks against a brute-force walk back
along the plant's clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from webapp.logbook.shift import current_shift_start, parse_shift_starts

RIYADH = "Asia/Riyadh"  # UTC+3 all year
BERLIN = "Europe/Berlin"  # CET +1, CEST +2: 29 Mar 2026 02:00 → 03:00, 25 Oct 2026 03:00 → 02:00


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --- the default day/night shifts in a zone without DST ------------------------------------


@pytest.mark.parametrize(
    ("now", "began"),
    [
        # 13:00 in Riyadh: the day shift, since 06:00 (03:00 UTC).
        (utc(2026, 3, 10, 10, 0), utc(2026, 3, 10, 3, 0)),
        # 21:00: the night shift, since 18:00 (15:00 UTC).
        (utc(2026, 3, 10, 18, 0), utc(2026, 3, 10, 15, 0)),
        # 01:30 on the 10th (22:30 UTC on the 9th): across midnight, still since 18:00 on the 9th.
        (utc(2026, 3, 9, 22, 30), utc(2026, 3, 9, 15, 0)),
        # 05:59:59: the night shift's last second.
        (utc(2026, 3, 10, 2, 59, 59), utc(2026, 3, 9, 15, 0)),
        # 06:00 exactly: a start at now is the current shift's ("at or before now").
        (utc(2026, 3, 10, 3, 0), utc(2026, 3, 10, 3, 0)),
        # New Year's night: the shift began in the old year.
        (utc(2026, 12, 31, 22, 0), utc(2026, 12, 31, 15, 0)),
    ],
)
def test_default_shifts_in_riyadh(now: datetime, began: datetime) -> None:
    assert current_shift_start(now, "06:00,18:00", RIYADH) == began
    assert current_shift_start(now, None, RIYADH) == began  # NULL: the default


def test_the_start_is_aware_utc_and_a_naive_now_means_utc() -> None:
    began = current_shift_start(datetime(2026, 3, 10, 10, 0), "06:00,18:00", RIYADH)
    assert began == utc(2026, 3, 10, 3, 0)
    assert began.utcoffset() == timedelta(0)


def test_an_aware_now_in_another_zone_is_the_same_instant() -> None:
    now = datetime(2026, 3, 10, 13, 0, tzinfo=ZoneInfo(RIYADH))  # 10:00 UTC
    assert current_shift_start(now, "06:00,18:00", RIYADH) == utc(2026, 3, 10, 3, 0)


# --- other patterns: three shifts across midnight, a single start ---------------------------


@pytest.mark.parametrize(
    ("local_now", "began_local"),
    [
        ((2026, 5, 4, 23, 0), (2026, 5, 4, 22, 0)),
        ((2026, 5, 5, 3, 0), (2026, 5, 4, 22, 0)),  # after midnight: yesterday's 22:00
        ((2026, 5, 5, 5, 59), (2026, 5, 4, 22, 0)),
        ((2026, 5, 5, 6, 0), (2026, 5, 5, 6, 0)),
        ((2026, 5, 5, 13, 59), (2026, 5, 5, 6, 0)),
        ((2026, 5, 5, 14, 0), (2026, 5, 5, 14, 0)),
    ],
)
def test_three_shifts_given_in_any_order(local_now: tuple, began_local: tuple) -> None:
    zone = ZoneInfo(RIYADH)
    now = datetime(*local_now, tzinfo=zone)
    expected = datetime(*began_local, tzinfo=zone).astimezone(UTC)
    assert current_shift_start(now, "22:00,06:00,14:00", RIYADH) == expected


def test_a_single_start_is_one_shift_a_day() -> None:
    # 07:00 in Riyadh is 04:00 UTC.
    assert current_shift_start(utc(2026, 5, 5, 3, 59), "07:00", RIYADH) == utc(2026, 5, 4, 4, 0)
    assert current_shift_start(utc(2026, 5, 5, 4, 0), "07:00", RIYADH) == utc(2026, 5, 5, 4, 0)
    assert current_shift_start(utc(2026, 5, 5, 23, 0), "07:00", RIYADH) == utc(2026, 5, 5, 4, 0)


def test_midnight_as_a_start() -> None:
    # 00:00 in Riyadh is 21:00 UTC the day before.
    assert current_shift_start(utc(2026, 5, 5, 20, 59), "00:00,12:00", RIYADH) == utc(
        2026, 5, 5, 9, 0
    )
    assert current_shift_start(utc(2026, 5, 5, 21, 0), "00:00,12:00", RIYADH) == utc(
        2026, 5, 5, 21, 0
    )


# --- a zone with DST -----------------------------------------------------------------------


def test_across_the_spring_change_the_night_shift_is_an_hour_shorter() -> None:
    # 28 Mar 18:00 CET = 17:00 UTC; 29 Mar 06:00 CEST = 04:00 UTC (11 hours later).
    assert current_shift_start(utc(2026, 3, 29, 3, 59), None, BERLIN) == utc(2026, 3, 28, 17, 0)
    assert current_shift_start(utc(2026, 3, 29, 4, 0), None, BERLIN) == utc(2026, 3, 29, 4, 0)
    # 29 Mar 18:00 CEST = 16:00 UTC.
    assert current_shift_start(utc(2026, 3, 29, 16, 30), None, BERLIN) == utc(2026, 3, 29, 16, 0)


def test_across_the_autumn_change_the_night_shift_is_an_hour_longer() -> None:
    # 24 Oct 18:00 CEST = 16:00 UTC; 25 Oct 06:00 CET = 05:00 UTC (13 hours later).
    assert current_shift_start(utc(2026, 10, 25, 4, 59), None, BERLIN) == utc(2026, 10, 24, 16, 0)
    assert current_shift_start(utc(2026, 10, 25, 5, 0), None, BERLIN) == utc(2026, 10, 25, 5, 0)


def test_a_start_the_clock_skips_begins_after_the_gap() -> None:
    # 29 Mar has no 02:30 in Berlin (02:00 CET → 03:00 CEST): the shift begins when the clock
    # would have shown it, 02:30 CET = 01:30 UTC (03:30 CEST).
    assert current_shift_start(utc(2026, 3, 29, 12, 0), "02:30", BERLIN) == utc(2026, 3, 29, 1, 30)
    assert current_shift_start(utc(2026, 3, 29, 1, 29), "02:30", BERLIN) == utc(2026, 3, 28, 1, 30)


def test_a_start_the_clock_shows_twice_begins_the_first_time() -> None:
    # 25 Oct shows 02:30 twice in Berlin: 00:30 UTC (CEST) and 01:30 UTC (CET).
    first, second = utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30)
    assert current_shift_start(utc(2026, 10, 25, 0, 29), "02:30", BERLIN) == first
    assert current_shift_start(utc(2026, 10, 25, 1, 0), "02:30", BERLIN) == second
    assert current_shift_start(utc(2026, 10, 25, 12, 0), "02:30", BERLIN) == second


# --- configuration ---------------------------------------------------------------------------


def test_starts_are_parsed_sorted_and_without_repeats() -> None:
    assert parse_shift_starts(" 18:00 , 06:00,06:00 ") == (time(6, 0), time(18, 0))
    assert parse_shift_starts("23:59,00:00") == (time(0, 0), time(23, 59))


@pytest.mark.parametrize(
    "config",
    ["", None, "6:00,18:00", "06:00;18:00", "06:00,", "24:00", "06:60", "06h00", "day", "06:00,xx"],
)
def test_malformed_config_means_the_default_shifts(config: str | None) -> None:
    assert parse_shift_starts(config) == (time(6, 0), time(18, 0))
    # 13:00 in Riyadh: the default day shift, since 06:00 (03:00 UTC).
    assert current_shift_start(utc(2026, 3, 10, 10, 0), config, RIYADH) == utc(2026, 3, 10, 3, 0)


def test_an_unknown_timezone_is_read_as_utc() -> None:
    assert current_shift_start(utc(2026, 3, 10, 10, 0), None, "Mars/Olympus") == utc(
        2026, 3, 10, 6, 0
    )
    assert current_shift_start(utc(2026, 3, 10, 10, 0), None, None) == utc(2026, 3, 10, 6, 0)


# --- exhaustively, against a brute-force walk back along the plant's clock -----------------


def walk_back(now: datetime, starts: set[tuple[int, int]], zone: ZoneInfo) -> datetime:
    """The latest whole minute at or before `now` whose local wall time is a start. Valid for
    starts outside a DST change hour (the clock shows each of them once a day) in zones whose
    offsets are whole hours (local minutes are UTC minutes, so an hour at a time skips none)."""
    found = []
    for start_minute in {minute for _hour, minute in starts}:
        moment = now.replace(second=0, microsecond=0)
        moment -= timedelta(minutes=(moment.minute - start_minute) % 60)
        while (moment.astimezone(zone).hour, start_minute) not in starts:
            moment -= timedelta(hours=1)
        found.append(moment)
    return max(found)


@pytest.mark.parametrize("timezone", [RIYADH, BERLIN, "America/New_York", "Australia/Sydney"])
@pytest.mark.parametrize(
    ("config", "starts"),
    [
        ("06:00,18:00", {(6, 0), (18, 0)}),
        ("22:00,06:00,14:00", {(22, 0), (6, 0), (14, 0)}),
        ("07:15", {(7, 15)}),
        ("05:45,17:30", {(5, 45), (17, 30)}),
        ("00:00,12:00", {(0, 0), (12, 0)}),
    ],
)
def test_every_ten_minutes_across_dst_changes(
    timezone: str, config: str, starts: set[tuple[int, int]]
) -> None:
    zone = ZoneInfo(timezone)
    # The weeks around the northern spring change (the southern autumn one: Sydney, 5 Apr).
    first = utc(2026, 3, 25, 0, 7)
    for step in range(0, 14 * 24 * 6):
        now = first + timedelta(minutes=10 * step)
        assert current_shift_start(now, config, timezone) == walk_back(now, starts, zone), now
