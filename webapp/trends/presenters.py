"""What the trend screen reads: its pens and windows from the query, and the legend.

A pen is `{asset_id}:{metric}`; a trend has 1 to 8 distinct pens (DESIGN.md §18).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

import numpy as np

from webapp.series import Series, datetime_to_ns, ns_to_datetime
from webapp.templating import format_local_time, gettext
from webapp.timeseries.service import SeriesMode, SeriesWindow, resolve_window
from webapp.twin.charts import format_value
from webapp.twin.presenters import (
    N_,
    PLOT_POINTS,
    custom_window,
    metric_label,
    refuse_custom_times,
)
from webapp.twin.ranges import RangeSource
from webapp.types import MAX_DB_ID

MAX_PENS = 8
PEN_PATTERN = re.compile(r"^([0-9]{1,10}):([a-z][a-z0-9_]{0,63})$")


@dataclass(frozen=True, slots=True)
class PenRef:
    asset_id: int
    metric: str

    def __str__(self) -> str:
        return f"{self.asset_id}:{self.metric}"


class PenError(ValueError):
    """The pens asked for cannot make a trend; the message names the problem (→ 422)."""


def parse_pens(values: Sequence[str]) -> list[PenRef]:
    """1 to MAX_PENS distinct `{asset_id}:{metric}` pens, in the order given."""
    if not values:
        raise PenError("at least one pen is required: pen={asset_id}:{metric}")
    if len(values) > MAX_PENS:
        raise PenError(f"at most {MAX_PENS} pens can share a trend; {len(values)} were given")
    pens: list[PenRef] = []
    for value in values:
        match = PEN_PATTERN.match(value.strip())
        asset_id = int(match.group(1)) if match else 0
        if match is None or not 1 <= asset_id <= MAX_DB_ID:
            raise PenError(f"pen {value[:80]!r} is malformed: expected {{asset_id}}:{{metric}}, "
                           "e.g. 12:vibration_rms")
        pen = PenRef(asset_id, match.group(2))
        if pen in pens:
            raise PenError(f"pen {str(pen)!r} is listed twice")
        pens.append(pen)
    return pens


class TrendRange(enum.StrEnum):
    last_100 = "100"
    shift = "8h"
    day = "24h"
    week = "7d"
    custom = "custom"


DEFAULT_RANGE = TrendRange.shift
RANGE_LABELS = {
    TrendRange.last_100: N_("Last 100"),
    TrendRange.shift: N_("8 h"),
    TrendRange.day: N_("24 h"),
    TrendRange.week: N_("7 days"),
    TrendRange.custom: N_("Custom window"),
}
RANGE_SPANS = {
    TrendRange.shift: timedelta(hours=8),
    TrendRange.day: timedelta(hours=24),
    TrendRange.week: timedelta(days=7),
}


class Compare(enum.StrEnum):
    day = "1d"
    week = "7d"


COMPARE_SHIFTS = {Compare.day: timedelta(days=1), Compare.week: timedelta(days=7)}
COMPARE_LABELS = {Compare.day: N_("1 day earlier"), Compare.week: N_("1 week earlier")}


def trend_window(
    trend_range: TrendRange, *, now: datetime, from_time: datetime | None = None,
    to_time: datetime | None = None,
) -> SeriesWindow:
    """`100`: the latest 100 raw points of each pen; `8h`, `24h`, `7d`: mode=plot over that
    span up to now; `custom`: mode=plot over from_time…to_time, validated like the series API
    (WindowError → 422)."""
    if trend_range is TrendRange.custom:
        return custom_window(from_time, to_time, now=now)
    refuse_custom_times(from_time, to_time)
    if trend_range is TrendRange.last_100:
        return resolve_window(from_time=None, to_time=None, limit=100, mode=SeriesMode.raw,
                              now=now)
    return SeriesWindow(now - RANGE_SPANS[trend_range], now, PLOT_POINTS, SeriesMode.plot)


def earlier(window: SeriesWindow, compare: Compare) -> SeriesWindow:
    """The same window one day or one week earlier (for `100`: the latest 100 points then)."""
    shift = COMPARE_SHIFTS[compare]
    return replace(
        window,
        from_time=None if window.from_time is None else window.from_time - shift,
        to_time=window.to_time - shift,
    )


def axis_span(
    window: SeriesWindow, primary: Sequence[Series | None]
) -> tuple[int, int]:
    """The chart's time axis (ns): the window; for `100` (no start), from the oldest first
    point the pens read up to now (an hour when none read anything)."""
    end = datetime_to_ns(window.to_time)
    if window.from_time is not None:
        return datetime_to_ns(window.from_time), end
    firsts = [int(series.timestamps[0]) for series in primary if series is not None and len(series)]
    start = min(firsts) if firsts else end - int(timedelta(hours=1).total_seconds() * 1e9)
    return min(start, end - 1), end


# --- the legend --------------------------------------------------------------------------------

RANGE_SOURCE_LABELS: dict[str, str] = {
    "configured": N_("configured range"),
    "limits": N_("from the alarm limits"),
    "history": N_("from the 7-day history"),
    "default": N_("no limits or history yet"),
}


@dataclass(frozen=True, slots=True)
class ReadOutcome:
    """One read of a pen (or of its compared window): the series, or why there is none."""

    series: Series | None
    error: str | None = None
    source: str = "live"


@dataclass(frozen=True, slots=True)
class LegendEntry:
    slot: int
    number: int
    pen: PenRef
    asset_code: str
    label: str
    unit: str
    low: float
    high: float
    low_text: str
    high_text: str
    range_source: str
    range_source_text: str
    latest_text: str
    latest_time_text: str
    latest_time_iso: str
    point_count: int
    error: str | None
    fallback: bool
    compare: Compare | None
    compare_point_count: int
    compare_error: str | None


def latest_point(series: Series | None) -> tuple[float, int] | None:
    if series is None:
        return None
    finite = np.flatnonzero(np.isfinite(series.values))
    if not finite.size:
        return None
    last = int(finite[-1])
    return float(series.values[last]), int(series.timestamps[last])


def legend_entry(
    *, slot: int, pen: PenRef, asset_code: str, unit: str | None,
    engineering: tuple[float, float, RangeSource], digits: int, read: ReadOutcome,
    compared: ReadOutcome | None, compare: Compare | None, timezone: str, locale: str,
) -> LegendEntry:
    """`digits`: the pen's metric decimals (twin/decimals.py), for its range and value."""
    low, high, source = engineering
    latest = latest_point(read.series)
    moment = ns_to_datetime(latest[1]) if latest else None
    return LegendEntry(
        slot=slot,
        number=slot + 1,
        pen=pen,
        asset_code=asset_code,
        label=metric_label(pen.metric),
        unit=unit or "",
        low=low,
        high=high,
        low_text=format_value(low, digits, locale),
        high_text=format_value(high, digits, locale),
        range_source=source,
        range_source_text=gettext(RANGE_SOURCE_LABELS[source]),
        latest_text=format_value(latest[0], digits, locale) if latest else "—",
        latest_time_text=format_local_time(moment, timezone, "HH:mm:ss", locale) if moment else "",
        latest_time_iso=moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "",
        point_count=len(read.series) if read.series is not None else 0,
        error=read.error,
        fallback=read.source == "fallback",
        compare=compare,
        compare_point_count=(
            len(compared.series) if compared is not None and compared.series is not None else 0
        ),
        compare_error=compared.error if compared is not None else None,
    )


# --- links -------------------------------------------------------------------------------------


def trend_url(
    pens: Sequence[PenRef], *, trend_range: TrendRange, compare: Compare | None,
    from_time: datetime | None = None, to_time: datetime | None = None,
) -> str:
    """/trends with these pens and window; the default range and no comparison stay implicit."""
    query: list[tuple[str, str]] = [("pen", str(pen)) for pen in pens]
    if trend_range is not DEFAULT_RANGE:
        query.append(("range", trend_range.value))
    if trend_range is TrendRange.custom:
        for name, moment in (("from_time", from_time), ("to_time", to_time)):
            if moment is not None:
                query.append((name, moment.strftime("%Y-%m-%dT%H:%M:%SZ")))
    if compare is not None:
        query.append(("compare", compare.value))
    return "/trends" + (f"?{urlencode(query, quote_via=quote, safe=':')}" if query else "")


def range_label(trend_range: TrendRange) -> str:
    return gettext(RANGE_LABELS[trend_range])


def compare_label(compare: Compare) -> str:
    return gettext(COMPARE_LABELS[compare])


def window_text(start_ns: int, end_ns: int, timezone: str, locale: str) -> tuple[str, str]:
    """The chart's window, start and end, as the plant's clock reads them (24-hour)."""
    fmt = "d MMM y HH:mm"
    return (
        format_local_time(ns_to_datetime(start_ns), timezone, fmt, locale),
        format_local_time(ns_to_datetime(end_ns), timezone, fmt, locale),
    )
