"""Series and the shared conversion helpers every connector relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pytest

from webapp.connectors.base import (
    make_series,
    parse_iso_timestamps,
    qualities_from_labels,
    to_float_array,
)
from webapp.series import (
    QUALITY_BAD,
    QUALITY_GOOD,
    QUALITY_UNCERTAIN,
    Series,
    datetime_to_ns,
    datetimes_to_ns,
    ns_to_datetime,
    ns_to_iso,
)


def sample() -> Series:
    return make_series([10, 20, 30, 40], [1.0, 2.0, 3.0, 4.0])


def test_tail_window_concat() -> None:
    s = sample()
    assert s.tail(2).timestamps.tolist() == [30, 40]
    assert len(s.tail(0)) == 0 and len(s.tail(99)) == 4
    assert s.window(20, 30).timestamps.tolist() == [20, 30]  # both ends inclusive
    assert s.window(None, 25).timestamps.tolist() == [10, 20]
    assert len(s.window(35, 31)) == 0
    joined = Series.concat([s.window(None, 20), Series.empty(), s.window(30, 40)])
    assert joined.values.tolist() == s.values.tolist()
    assert len(Series.concat([])) == 0


def test_make_series_enforces_invariants() -> None:
    s = make_series([30, 10, 20], [3.0, np.nan, 2.0], [QUALITY_GOOD, QUALITY_GOOD, QUALITY_BAD])
    assert s.timestamps.tolist() == [10, 20, 30]  # sorted
    assert s.quality.tolist() == [QUALITY_BAD, QUALITY_BAD, QUALITY_GOOD]  # NaN → bad
    assert np.isnan(s.values[:2]).all()  # bad → NaN
    assert (s.timestamps.dtype, s.values.dtype, s.quality.dtype) == (
        np.int64,
        np.float64,
        np.uint8,
    )


def test_time_conversions_are_exact() -> None:
    dt = datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC)
    ns = datetime_to_ns(dt)
    assert ns == 1_795_773_600_123_456_000
    assert ns_to_datetime(ns) == dt
    assert datetime_to_ns(dt.replace(tzinfo=None)) == ns  # naive means UTC
    riyadh = dt.astimezone(timezone(timedelta(hours=3)))
    assert datetimes_to_ns([riyadh]).tolist() == [ns]
    assert ns_to_iso(ns + 700, digits=7) == "2026-11-27T10:00:00.1234567Z"
    assert ns_to_iso(ns) == "2026-11-27T10:00:00.123456Z"


def test_parse_iso_timestamps() -> None:
    parsed = parse_iso_timestamps(
        ["2026-11-27T10:00:00Z", "2026-11-27T10:00:00.1234567Z", "2026-11-27T10:00:00.5z"]
    )
    base = 1_795_773_600_000_000_000
    assert parsed.tolist() == [base, base + 123_456_700, base + 500_000_000]
    assert parse_iso_timestamps(["2026-11-27T13:00:00+03:00"]).tolist() == [base]


@pytest.mark.parametrize(
    ("label", "code"),
    [
        (None, QUALITY_GOOD),
        ("good", QUALITY_GOOD),
        (" Uncertain ", QUALITY_UNCERTAIN),
        ("BAD", QUALITY_BAD),
        ("weird", QUALITY_BAD),
        (192, QUALITY_GOOD),
        (216, QUALITY_GOOD),
        (191, QUALITY_UNCERTAIN),
        (64, QUALITY_UNCERTAIN),
        (63, QUALITY_BAD),
        (0, QUALITY_BAD),
        ("192", QUALITY_GOOD),
    ],
)
def test_quality_labels(label: object, code: int) -> None:
    assert qualities_from_labels([label]).tolist() == [code]


def test_to_float_array_keeps_numbers_exact_and_rejects_the_rest() -> None:
    exact = [0.1 + 0.2, 1 / 3, 2**53 + 1]
    assert to_float_array(exact).tolist() == [float(v) for v in exact]
    mixed = to_float_array([1, Decimal("2.5"), None, "3.0", {"Name": "Shutdown"}, True])
    assert mixed[:2].tolist() == [1.0, 2.5]
    assert np.isnan(mixed[2:5]).all() and mixed[5] == 1.0
