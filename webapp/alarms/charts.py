"""The alarm rate chart of /alarms: activations per 10 minutes as plain data for
`partials/_alarm_rate_chart.html` (an inline SVG, like the metric charts of twin/charts.py).
The EEMUA 191 flood line (10 activations in 10 minutes) is always drawn, so a calm day reads
as bars far below it. Time runs left → right in every language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from webapp.alarms.kpis import FLOOD_ACTIVATIONS, INTERVAL
from webapp.templating import format_local_time, format_number, iso_utc
from webapp.twin.charts import AxisLabel

WIDTH, HEIGHT = 720, 200
PAD_START, PAD_END, PAD_TOP, PAD_BOTTOM = 48, 16, 24, 36
LABEL_ROOM = 16  # SVG units between two value labels


@dataclass(frozen=True, slots=True)
class RateBar:
    x: float
    y: float
    width: float
    height: float
    count: int
    flood: bool  # at or above the flood line
    start_text: str
    start_iso: str


@dataclass(frozen=True, slots=True)
class RateChart:
    width: int
    height: int
    interval_count: int
    bars: tuple[RateBar, ...]  # the intervals with activations (empty ones draw nothing)
    flood_y: float
    flood_label: AxisLabel
    value_labels: tuple[AxisLabel, ...]
    time_labels: tuple[AxisLabel, ...]
    gridlines: tuple[float, ...]
    peak: int
    plot_left: int = PAD_START
    plot_right: int = WIDTH - PAD_END
    plot_top: int = PAD_TOP
    plot_bottom: int = HEIGHT - PAD_BOTTOM


def _time_format(span: timedelta) -> str:
    return "HH:mm" if span <= timedelta(hours=12) else "d MMM HH:mm"


def build_rate_chart(
    start: datetime, counts: list[int], *, end: datetime | None = None, timezone: str,
    locale: str,
) -> RateChart:
    """`counts[i]` activations in the 10 minutes from `start + i × 10 min`; drawn up to `end`
    (default: the end of the last interval), which labels the right edge."""
    if end is not None:  # intervals starting at or after `end` are empty by definition
        counts = counts[: max(1, -(-(end - start) // INTERVAL))]
    intervals = max(len(counts), 1)
    span = (end - start) if end is not None else INTERVAL * intervals
    end = start + span
    fmt = _time_format(span)
    plot_width = WIDTH - PAD_START - PAD_END
    plot_height = HEIGHT - PAD_TOP - PAD_BOTTOM
    peak = max(counts, default=0)
    # Room above the flood line (or the highest bar), so both are always inside the plot.
    top = max(FLOOD_ACTIVATIONS * 1.2, peak * 1.1)

    def y_of(value: float) -> float:
        return PAD_TOP + (top - value) / top * plot_height

    slot = plot_width / intervals
    bars = tuple(
        RateBar(
            x=PAD_START + index * slot + slot * 0.1,
            y=y_of(count),
            width=max(slot * 0.8, 1.0),
            height=PAD_TOP + plot_height - y_of(count),
            count=count,
            flood=count >= FLOOD_ACTIVATIONS,
            start_text=format_local_time(start + index * INTERVAL, timezone, fmt, locale),
            start_iso=iso_utc(start + index * INTERVAL),
        )
        for index, count in enumerate(counts)
        if count
    )
    # 0, the flood line's 10 (labelled with the line) and the peak, where its label has room.
    clear = all(abs(y_of(peak) - y_of(other)) >= LABEL_ROOM for other in (0, FLOOD_ACTIVATIONS))
    ticks = (0, peak) if peak and clear else (0,)
    value_labels = tuple(
        AxisLabel(PAD_START - 8, y_of(tick) + 5, format_number(tick, 0, locale), "end")
        for tick in ticks
    )
    flood_y = y_of(FLOOD_ACTIVATIONS)
    time_labels = (
        AxisLabel(PAD_START, HEIGHT - PAD_BOTTOM + 20,
                  format_local_time(start, timezone, fmt, locale), "start"),
        AxisLabel(PAD_START + plot_width / 2, HEIGHT - PAD_BOTTOM + 20,
                  format_local_time(start + span / 2, timezone, fmt, locale), "middle"),
        AxisLabel(WIDTH - PAD_END, HEIGHT - PAD_BOTTOM + 20,
                  format_local_time(end, timezone, fmt, locale), "end"),
    )
    return RateChart(
        width=WIDTH,
        height=HEIGHT,
        interval_count=len(counts),
        bars=bars,
        flood_y=flood_y,
        flood_label=AxisLabel(PAD_START - 8, flood_y + 5,
                              format_number(FLOOD_ACTIVATIONS, 0, locale), "end"),
        value_labels=value_labels,
        time_labels=time_labels,
        gridlines=tuple(y_of(tick) for tick in ticks if tick),
        peak=peak,
    )
