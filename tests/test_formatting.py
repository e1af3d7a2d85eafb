"""Numbers and times as babel writes them, through the fast paths in webapp/templating.py.

Babel is the oracle: the fast paths must write exactly what babel writes, for every locale we
ship, or fall back to babel."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from babel.dates import format_datetime
from babel.numbers import format_decimal

from webapp.templating import SUPPORTED_LOCALES, number_format, time_format
from webapp.timeseries.schemas import iso_timestamps


def values() -> list[float]:
    chosen = random.Random(20261129)
    found = [0.0, -0.0, 0.5, 1.5, 2.5, -2.5, 2.675, -2.675, 0.005, 0.015, 0.0049999, 999.9995,
             1e15, -1e15, 123456789.125, 1e-7, -1e-7, 5e-324, 1234.5, -0.004]
    for _ in range(5000):
        value = chosen.choice((1, -1)) * 10 ** chosen.uniform(-6, 9)
        found += [value, round(value, chosen.randint(0, 4))]
    return found


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("digits", [0, 1, 2, 3])
def test_numbers_are_written_exactly_as_babel_writes_them(locale: str, digits: int) -> None:
    pattern = "#,##0." + "0" * digits if digits else "#,##0"
    write = number_format(locale, digits)
    wrong = [(value, write(value), format_decimal(value, format=pattern, locale=locale))
             for value in values()
             if write(value) != format_decimal(value, format=pattern, locale=locale)]
    assert wrong == []


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("fmt", ["d MMM HH:mm:ss", "d MMM HH:mm", "HH:mm:ss", "d MMM y HH:mm",
                                 "medium"])
@pytest.mark.parametrize("zone", ["Asia/Riyadh", "UTC", "America/New_York", "Asia/Kolkata"])
def test_times_are_written_exactly_as_babel_writes_them(locale: str, fmt: str, zone: str) -> None:
    write = time_format(zone, fmt, locale)
    start = datetime(2026, 3, 7, 22, 0, 3, tzinfo=UTC)  # across New York's change to DST
    moments = [start + timedelta(minutes=37 * step, seconds=step) for step in range(400)]
    wrong = [(moment, write(moment), format_datetime(moment, fmt, tzinfo=zone, locale=locale))
             for moment in moments
             if write(moment) != format_datetime(moment, fmt, tzinfo=zone, locale=locale)]
    assert wrong == []


def test_api_timestamps_are_written_as_numpy_writes_them() -> None:
    """The series API's ISO timestamps (the SSE ids too) against numpy's own formatter: whole
    seconds without a fraction, anything finer with six digits — even nanoseconds past a whole
    second — from 1677 to 2262, before 1970 included."""
    rng = np.random.default_rng(20261130)
    whole = rng.integers(-9_000_000_000, 9_000_000_000, 2000) * 1_000_000_000
    stamps = np.concatenate([
        rng.integers(-9_000_000_000_000_000_000, 9_000_000_000_000_000_000, 20_000),
        whole,
        whole + rng.integers(1, 1000, 2000),  # nanoseconds past a whole second
        whole + rng.integers(1, 1_000_000, 2000) * 1000,  # microseconds
    ])
    as_micros = stamps.view("datetime64[ns]").astype("datetime64[us]")
    expected = [
        f"{text[:-7]}Z" if is_whole else f"{text}Z"
        for text, is_whole in zip(
            np.datetime_as_string(as_micros, unit="us").tolist(),
            (stamps % 1_000_000_000 == 0).tolist(),
            strict=True,
        )
    ]
    assert iso_timestamps(stamps) == expected
    assert iso_timestamps(np.array([], dtype=np.int64)) == []
