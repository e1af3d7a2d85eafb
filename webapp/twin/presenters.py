"""What operators read: human metric labels, chart ranges, the latest-value view."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from webapp.alarms.models import PRIORITIES
from webapp.series import QUALITY_NAMES, Series, ns_to_datetime
from webapp.templating import format_local_time, gettext, iso_utc, templates
from webapp.timeseries.service import (
    SeriesMode,
    SeriesWindow,
    Signal,
    WindowError,
    resolve_window,
)
from webapp.twin.charts import (
    READING_TIME_FORMAT,
    ChartLimit,
    build_chart,
    format_value,
)
from webapp.twin.decimals import metric_decimals
from webapp.twin.ranges import engineering_range


def N_(message: str) -> str:
    """Marks a string for extraction; translated where it is shown."""
    return message


METRIC_LABELS = {
    "vibration_rms": N_("Vibration RMS"),
    "temperature": N_("Temperature"),
    "pressure": N_("Pressure"),
    "flow_rate": N_("Flow rate"),
    "power": N_("Power"),
    "shaft_speed": N_("Shaft speed"),
    "differential_pressure": N_("Differential pressure"),
    "liquid_level": N_("Liquid level"),
}


def metric_label(metric: str) -> str:
    label = METRIC_LABELS.get(metric)
    return gettext(label) if label else metric.replace("_", " ").capitalize()


class ChartRange(enum.StrEnum):
    last_100 = "100"
    day = "24h"
    week = "7d"
    custom = "custom"  # from_time…to_time, not live


RANGE_LABELS = {
    ChartRange.last_100: N_("Last 100"),
    ChartRange.day: N_("24 h"),
    ChartRange.week: N_("7 days"),
    ChartRange.custom: N_("Custom window"),
}
LIVE_RANGES = (ChartRange.last_100, ChartRange.day, ChartRange.week)
PLOT_POINTS = 300
RANGE_SPANS: dict[ChartRange, timedelta | None] = {
    ChartRange.last_100: None,
    ChartRange.day: timedelta(hours=24),
    ChartRange.week: timedelta(days=7),
}


def range_label(chart_range: ChartRange) -> str:
    return gettext(RANGE_LABELS[chart_range])


def custom_window(
    from_time: datetime | None, to_time: datetime | None, *, now: datetime | None = None
) -> SeriesWindow:
    """`range=custom` (metric view and /trends): mode=plot over from_time…to_time, both
    required, validated like the series API (WindowError → 422)."""
    if from_time is None or to_time is None:
        missing = "from_time" if from_time is None else "to_time"
        raise WindowError(missing, f"{missing} is required with range=custom")
    return resolve_window(
        from_time=from_time, to_time=to_time, limit=PLOT_POINTS, mode=SeriesMode.plot, now=now
    )


def refuse_custom_times(from_time: datetime | None, to_time: datetime | None) -> None:
    """A window's ends belong to `range=custom` only (WindowError → 422)."""
    if from_time is not None or to_time is not None:
        name = "from_time" if from_time is not None else "to_time"
        raise WindowError(name, f"{name} applies only with range=custom")


def chart_window(
    chart_range: ChartRange, *, from_time: datetime | None = None,
    to_time: datetime | None = None,
) -> SeriesWindow:
    """`100`: the latest 100 raw points; `24h` and `7d`: mode=plot over that span; `custom`:
    mode=plot over from_time…to_time, both required and validated like the series API
    (WindowError → 422), which apply to nothing else."""
    if chart_range is ChartRange.custom:
        return custom_window(from_time, to_time)
    refuse_custom_times(from_time, to_time)
    span = RANGE_SPANS[chart_range]
    if span is None:
        return resolve_window(from_time=None, to_time=None, limit=100, mode=SeriesMode.raw)
    window = resolve_window(from_time=None, to_time=None, limit=PLOT_POINTS, mode=SeriesMode.plot)
    return SeriesWindow(window.to_time - span, window.to_time, PLOT_POINTS, SeriesMode.plot)


@dataclass(frozen=True, slots=True)
class LatestView:
    value_text: str
    unit: str
    time_text: str
    time_iso: str
    quality: str
    source: str


def signal_decimals(signal: Signal) -> int:
    """The decimals of this metric on every screen (twin/decimals.py)."""
    return metric_decimals(signal.unit, signal.range_low, signal.range_high)


def latest_view(
    series: Series, *, unit: str | None, timezone: str, source: str, locale: str, digits: int,
) -> LatestView:
    """The newest point of a series, formatted for the viewer's language and the plant's clock,
    with the metric's decimals."""
    if not len(series):
        return LatestView("—", unit or "", "", "", "bad", source)
    ns = int(series.timestamps[-1])
    value = float(series.values[-1])
    moment = ns_to_datetime(ns)
    return LatestView(
        value_text=format_value(value, digits, locale),
        unit=unit or "",
        time_text=format_local_time(moment, timezone, READING_TIME_FORMAT, locale),
        time_iso=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        quality=QUALITY_NAMES[int(series.quality[-1])],
        source=source,
    )


def chart_range_of(
    signal: Signal, limits: tuple[ChartLimit, ...], series: Series
) -> tuple[float, float]:
    """The metric chart's value axis: the mapping's engineering range, else its limits, else
    the charted samples rounded to nice numbers (twin/ranges.py). The chart only changes with
    a new sample, so the axis moves at most that often, and only past a nice boundary."""
    low, high, _source = engineering_range(
        signal.range_low, signal.range_high, {limit.level: limit.threshold for limit in limits},
        series.values,
    )
    return low, high


CARD_TIME_FORMAT = "HH:mm:ss"
STALE_AFTER_AT_LEAST = timedelta(minutes=2)


def stale_after(interval_seconds: float) -> timedelta:
    """§18: a card's reading is stale past 3 stream intervals or 2 minutes, the longer."""
    return max(timedelta(seconds=3 * interval_seconds), STALE_AFTER_AT_LEAST)


@dataclass(frozen=True, slots=True)
class CardValue:
    signal: Signal
    value_text: str
    time_text: str  # the reading's time on the plant's clock; "" without a reading
    time_iso: str
    quality: str
    stale: bool


def card_value(
    signal: Signal, newest: Series | None, *, timezone: str, locale: str, now: datetime,
    interval_seconds: float,
) -> CardValue:
    """One metric on an overview card: the newest reading, its time, and whether it is stale."""
    if newest is None or not len(newest):
        return CardValue(signal, "—", "", "", "bad", False)
    view = latest_view(newest, unit=signal.unit, timezone=timezone, source="", locale=locale,
                       digits=signal_decimals(signal))
    moment = ns_to_datetime(int(newest.timestamps[-1]))
    return CardValue(
        signal=signal,
        value_text=view.value_text,
        time_text=format_local_time(moment, timezone, CARD_TIME_FORMAT, locale),
        time_iso=view.time_iso,
        quality=view.quality,
        stale=now - moment > stale_after(interval_seconds),
    )


def metric_context(
    *, signal: Signal, chart_range: ChartRange, series: Series, source: str, timezone: str,
    locale: str, interval_seconds: float, limits: tuple[ChartLimit, ...] = (),
    latest: Series | None = None, table: bool = True,
) -> dict[str, object]:
    """Everything the metric view and its SSE payloads show, from one scaled series (the
    chart), the newest reading if it is newer than the chart (live), and the signal's active
    alarm limits. `table=False`: without the data table's rows (its stream sends them)."""
    digits = signal_decimals(signal)
    return {
        "signal": signal,
        "chart_range": chart_range,
        "latest": latest_view(
            series if latest is None else latest, unit=signal.unit, timezone=timezone,
            source=source, locale=locale, digits=digits,
        ),
        "chart": build_chart(
            series, unit=signal.unit, timezone=timezone, locale=locale, limits=limits,
            value_range=chart_range_of(signal, limits, series), digits=digits, table=table,
        ),
        "table_deferred": not table,
        "chart_id": f"{signal.mapping_id}-{chart_range.value}",
        "chart_title": f"{metric_label(signal.metric)} — {range_label(chart_range)}",
        "interval_ms": int(interval_seconds * 1000),
    }


@dataclass(frozen=True, slots=True)
class CustomWindowForm:
    """The custom window's inputs, in the plant's time (`datetime-local` values)."""

    from_value: str
    to_value: str
    timezone: str


LOCAL_INPUT_FORMAT = "%Y-%m-%dT%H:%M"
CUSTOM_DEFAULT_SPAN = timedelta(hours=24)


def metric_links(
    signal: Signal, chart_range: ChartRange, window: SeriesWindow, timezone: str
) -> dict[str, object]:
    """What only the page shows around the live parts: the range choices, the stream (none
    for a custom window), the CSV of the window read, and the custom window's form."""
    zone = ZoneInfo(timezone)
    custom = chart_range is ChartRange.custom
    start = window.from_time if custom and window.from_time else (
        window.to_time - CUSTOM_DEFAULT_SPAN
    )
    return {
        "ranges": LIVE_RANGES,
        "live": not custom,
        "stream_url": None if custom else (
            f"/twins/assets/{signal.asset_id}/metrics/{signal.metric}/stream"
            f"?range={chart_range.value}"
        ),
        "export_url": export_url(signal, window),
        "custom_form": CustomWindowForm(
            start.astimezone(zone).strftime(LOCAL_INPUT_FORMAT),
            window.to_time.astimezone(zone).strftime(LOCAL_INPUT_FORMAT),
            timezone,
        ),
    }


EXPORT_LIMIT = 10_000  # the series API's most points


def export_url(signal: Signal, window: SeriesWindow) -> str:
    """The CSV of what the chart shows: the raw points of its window, or past a day (more
    than the API's 10,000 one-minute points) the plot-mode points."""
    base = f"/api/twins/assets/{signal.asset_id}/metrics/{signal.metric}/series.csv"
    if window.from_time is None:
        return f"{base}?limit={window.limit}"
    span = window.to_time - window.from_time
    mode = SeriesMode.plot if span > timedelta(days=1) else SeriesMode.raw
    query = urlencode({
        "from_time": iso_utc(window.from_time), "to_time": iso_utc(window.to_time),
        "limit": EXPORT_LIMIT, "mode": mode.value,
    })
    return f"{base}?{query}"


class GridOrder(enum.StrEnum):
    attention = "attention"
    code = "code"


def attention_key(
    code: str, alarm_priority: str | None, health_score: int | None
) -> tuple[int, int, int, str]:
    """The attention order (§15): the highest active alarm priority first, then the lowest
    health score. An asset without a score (no data, not yet assessed) follows the scored ones
    of its alarm group: nothing is known to be wrong with it. Code breaks ties."""
    priority_rank = PRIORITIES.index(alarm_priority) if alarm_priority in PRIORITIES else 3
    unscored = health_score is None
    return priority_rank, int(unscored), health_score or 0, code


# Templates call these like macros (screen templates import nothing).
templates.env.globals.update(metric_label=metric_label, range_label=range_label)
