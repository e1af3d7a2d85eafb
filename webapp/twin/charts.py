"""Server-rendered SVG charts: geometry from a columnar Series, formatting at the edge.

The chart is plain data for `partials/_metric_chart.html`; the same function serves the
metric fragment and every SSE `chart` event. Time runs left → right in every language.
The signal's active alarm limits are drawn as lines over the value range the data sets; a
limit beyond that range sits at the edge it lies beyond, marked off-scale (DESIGN.md §14).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from webapp.series import QUALITY_NAMES, Series, ns_to_datetime
from webapp.templating import format_local_time, format_number

WIDTH, HEIGHT = 720, 260
# One 24-hour format for a reading's time on the plant's clock: table and latest value (§18).
READING_TIME_FORMAT = "d MMM HH:mm:ss"
PAD_START, PAD_END, PAD_TOP, PAD_BOTTOM = 76, 20, 22, 36


@dataclass(frozen=True, slots=True)
class Marker:
    role: str  # chart-min | chart-max | chart-last
    x: float
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class AxisLabel:
    x: float
    y: float
    text: str
    anchor: str  # SVG text-anchor


@dataclass(frozen=True, slots=True)
class ChartLimit:
    """An active alarm limit of the charted signal: all the chart needs to know of it."""

    level: str  # hihi | hi | lo | lolo
    threshold: float

    @property
    def is_high(self) -> bool:
        return self.level in ("hi", "hihi")


@dataclass(frozen=True, slots=True)
class LimitLine:
    level: str
    y: float
    label_y: float
    value: str  # the threshold, formatted like the value axis
    off_scale: str | None  # "above" | "below" the drawn range, else None


@dataclass(frozen=True, slots=True)
class Band:
    """The normal band between the lo and hi limits (or a plot edge where one is missing)."""

    y: float
    height: float


@dataclass(frozen=True, slots=True)
class TableRow:
    time: str
    time_iso: str
    value: str
    quality: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    point_count: int
    path: str
    markers: tuple[Marker, ...]
    value_labels: tuple[AxisLabel, ...]
    time_labels: tuple[AxisLabel, ...]
    gridlines: tuple[float, ...]
    unit_label: AxisLabel
    rows: tuple[TableRow, ...]
    limits: tuple[LimitLine, ...] = ()
    normal_band: Band | None = None
    plot_left: int = PAD_START
    plot_right: int = WIDTH - PAD_END
    plot_top: int = PAD_TOP
    plot_bottom: int = HEIGHT - PAD_BOTTOM


def value_digits(span: float) -> int:
    """Enough decimals to tell the ticks apart, no more."""
    if span <= 0 or not math.isfinite(span):
        return 2
    return max(0, min(3, 2 - math.floor(math.log10(span))))


def format_value(value: float | None, digits: int = 2, locale: str | None = None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return format_number(value, digits, locale)


def _time_format(span_ns: int) -> str:
    # Past half a day the labels need the date, or yesterday 17:52 reads like today's.
    return "HH:mm" if span_ns <= timedelta(hours=12).total_seconds() * 1e9 else "d MMM HH:mm"


LABEL_STEP = 16  # SVG units between stacked limit labels at one edge
# Labels at an edge stack outward-in: the outer limit nearest the edge.
_EDGE_ORDER = {"hihi": 0, "hi": 1, "lolo": 0, "lo": 1}


def limit_lines(
    limits: tuple[ChartLimit, ...], *, y_low: float, y_high: float, digits: int, locale: str
) -> tuple[tuple[LimitLine, ...], Band | None]:
    """Each limit at its height (or the edge it lies beyond), and the shaded normal band."""
    plot_top, plot_bottom = PAD_TOP, HEIGHT - PAD_BOTTOM

    def y_of(value: float) -> float:
        return plot_top + (y_high - value) / (y_high - y_low) * (plot_bottom - plot_top)

    lines: list[LimitLine] = []
    stacked = {"above": 0, "below": 0}
    for limit in sorted(limits, key=lambda item: (item.is_high, _EDGE_ORDER[item.level])):
        off_scale = "above" if limit.threshold > y_high else (
            "below" if limit.threshold < y_low else None
        )
        if off_scale == "above":
            y = float(plot_top)
            label_y = plot_top + 14 + stacked["above"] * LABEL_STEP
        elif off_scale == "below":
            y = float(plot_bottom)
            label_y = plot_bottom - 5 - stacked["below"] * LABEL_STEP
        else:
            y = y_of(limit.threshold)
            # High limits are labelled above their line, low ones below: away from normal.
            label_y = y - 5 if limit.is_high else y + 15
        if off_scale:
            stacked[off_scale] += 1
        lines.append(LimitLine(limit.level, y, label_y,
                               format_value(limit.threshold, digits, locale), off_scale))

    thresholds = {limit.level: limit.threshold for limit in limits}
    upper = thresholds.get("hi", thresholds.get("hihi"))
    lower = thresholds.get("lo", thresholds.get("lolo"))
    band = None
    if upper is not None or lower is not None:
        top = plot_top if upper is None else min(max(y_of(upper), plot_top), plot_bottom)
        bottom = plot_bottom if lower is None else min(max(y_of(lower), plot_top), plot_bottom)
        if bottom - top > 0.5:
            band = Band(top, bottom - top)
    return tuple(sorted(lines, key=lambda line: line.y)), band


def build_chart(
    series: Series, *, unit: str | None, timezone: str, locale: str,
    limits: tuple[ChartLimit, ...] = (), value_range: tuple[float, float] | None = None,
    digits: int | None = None, table: bool = True,
) -> Chart:
    """`value_range`: the signal's engineering range (§18), the value axis with both ends
    labelled, widened only as far as a value beyond it needs; None: the data's own spread.
    `digits`: the metric's decimals (twin/decimals.py) for every value the chart prints;
    None: enough to tell the axis ticks apart. `table`: False leaves out the table's rows
    (a live view's fragment: its stream opens with them)."""
    timestamps, values = series.timestamps, series.values
    finite = np.isfinite(values)
    plot_width = WIDTH - PAD_START - PAD_END
    plot_height = HEIGHT - PAD_TOP - PAD_BOTTOM
    unit_label = AxisLabel(PAD_START - 8, PAD_TOP - 8, unit or "", "end")

    if not finite.any():
        return Chart(WIDTH, HEIGHT, len(series), "", (), (), (), (), unit_label, ())

    low, high = float(values[finite].min()), float(values[finite].max())
    if value_range is not None:
        margin = 0.0  # the axis is the range itself: its ends are labelled
        y_low, y_high = min(value_range[0], low), max(value_range[1], high)
    else:
        margin = (high - low) * 0.08 or max(abs(high) * 0.05, 1.0)
        y_low, y_high = low - margin, high + margin
    t0, t1 = int(timestamps[0]), int(timestamps[-1])
    t_span = max(t1 - t0, 1)

    xs = PAD_START + (timestamps - t0) / t_span * plot_width if len(series) > 1 else np.full(
        len(series), PAD_START + plot_width / 2
    )
    ys = PAD_TOP + (y_high - values) / (y_high - y_low) * plot_height

    # Bad points (NaN) break the line instead of drawing through them.
    commands: list[str] = []
    pen_down = False
    for x, y, ok in zip(xs.tolist(), ys.tolist(), finite.tolist(), strict=True):
        if not ok:
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down = True

    if digits is None:
        digits = value_digits(y_high - y_low)
    index_min = int(np.flatnonzero(finite)[np.argmin(values[finite])])
    index_max = int(np.flatnonzero(finite)[np.argmax(values[finite])])
    index_last = int(np.flatnonzero(finite)[-1])
    markers = tuple(
        Marker(role, float(xs[i]), float(ys[i]), format_value(float(values[i]), digits, locale))
        for role, i in (("chart-min", index_min), ("chart-max", index_max),
                        ("chart-last", index_last))
    )

    tick_values = (y_low + margin, (y_low + y_high) / 2, y_high - margin)
    value_labels = tuple(
        AxisLabel(PAD_START - 8, PAD_TOP + (y_high - v) / (y_high - y_low) * plot_height + 4,
                  format_value(v, digits, locale), "end")
        for v in tick_values
    )
    gridlines = tuple(label.y - 4 for label in value_labels)

    time_format = _time_format(t_span)
    time_ticks = (t0, t0 + t_span // 2, t1) if len(series) > 1 else (t0,)
    anchors = ("start", "middle", "end") if len(series) > 1 else ("middle",)
    time_labels = tuple(
        AxisLabel(
            PAD_START + (t - t0) / t_span * plot_width if len(series) > 1 else PAD_START
            + plot_width / 2,
            HEIGHT - PAD_BOTTOM + 20,
            format_local_time(ns_to_datetime(t), timezone, time_format, locale),
            anchor,
        )
        for t, anchor in zip(time_ticks, anchors, strict=True)
    )

    rows = tuple(
        TableRow(
            time=format_local_time(ns_to_datetime(t), timezone, READING_TIME_FORMAT, locale),
            time_iso=ns_to_datetime(t).strftime("%Y-%m-%dT%H:%M:%SZ"),
            value=format_value(v, digits, locale),
            quality=QUALITY_NAMES[q],
        )
        for t, v, q in zip(timestamps.tolist(), values.tolist(), series.quality.tolist(),
                           strict=True)
    ) if table else ()
    lines, band = limit_lines(limits, y_low=y_low, y_high=y_high, digits=digits, locale=locale)
    return Chart(
        WIDTH, HEIGHT, len(series), " ".join(commands), markers, value_labels, time_labels,
        gridlines, unit_label, rows, lines, band,
    )
