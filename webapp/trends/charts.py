"""The multi-pen trend chart as plain data for `templates/trends/index.html` (inline SVG).

Every pen is drawn on its own engineering range (webapp/twin/ranges.py): the bottom of the
plot is the pen's range low, the top its range high, whatever the other pens read. Values
beyond a pen's range run off the plot and are clipped there (the template's clip path), so the
scale never moves under the operator's eyes. A compared pen (the same window a day or a week
earlier) is shifted forward by that much, so it lies under the pen it is compared with. Time
runs left → right in every language; labels are 24-hour times in the plant's timezone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np

from webapp.series import Series, ns_to_datetime
from webapp.templating import format_local_time
from webapp.twin.charts import AxisLabel, format_value

WIDTH, HEIGHT = 960, 320
PAD_START, PAD_END, PAD_TOP, PAD_BOTTOM = 72, 28, 32, 36
PLOT_WIDTH = WIDTH - PAD_START - PAD_END
PLOT_HEIGHT = HEIGHT - PAD_TOP - PAD_BOTTOM
# Horizontal gridlines at these fractions of every pen's range (its quarters).
GRID_FRACTIONS = (0.25, 0.5, 0.75)
TIME_TICKS = 5


@dataclass(frozen=True, slots=True)
class PenTrace:
    """One line to draw: a pen's (or its compared window's) scaled series on its range."""

    slot: int  # the pen's place in the legend: its colour and number
    asset_id: int
    metric: str
    label: str  # "P-101 Vibration RMS", for the line's <title>
    series: Series | None  # None: the read failed (the legend says why)
    low: float
    high: float
    compare: str | None = None  # "1d" | "7d" for a compared window
    shift_ns: int = 0  # how far a compared window is moved forward onto the chart's window


@dataclass(frozen=True, slots=True)
class PenLine:
    slot: int
    asset_id: int
    metric: str
    label: str
    compare: str | None
    path: str
    point_count: int
    failed: bool
    tag: AxisLabel | None  # the pen's number at its newest drawn point (not colour alone)


@dataclass(frozen=True, slots=True)
class TrendChart:
    width: int
    height: int
    lines: tuple[PenLine, ...]
    time_labels: tuple[AxisLabel, ...]
    time_gridlines: tuple[float, ...]
    value_gridlines: tuple[float, ...]
    # The first pen's range at the axis (the legend gives every pen's).
    value_labels: tuple[AxisLabel, ...]
    plot_left: int = PAD_START
    plot_right: int = WIDTH - PAD_END
    plot_top: int = PAD_TOP
    plot_bottom: int = HEIGHT - PAD_BOTTOM


def time_format(span_ns: int) -> str:
    """24-hour times; past half a day the date too, or yesterday 17:52 reads like today's."""
    return "HH:mm" if span_ns <= timedelta(hours=12).total_seconds() * 1e9 else "d MMM HH:mm"


def y_of(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Plot heights on the pen's own range: low at the bottom edge, high at the top."""
    with np.errstate(over="ignore", invalid="ignore"):
        return PAD_TOP + (high - values) / (high - low) * PLOT_HEIGHT


def line_path(xs: np.ndarray, ys: np.ndarray) -> str:
    """An SVG path through the points; a missing (NaN) value lifts the pen."""
    commands: list[str] = []
    pen_down = False
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        if not (np.isfinite(x) and np.isfinite(y)):
            pen_down = False
            continue
        # Far off the plot still draws towards the edge, but stays a sane SVG number.
        y = min(max(y, -10.0 * HEIGHT), 11.0 * HEIGHT)
        commands.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down = True
    return " ".join(commands)


def _line(trace: PenTrace, start_ns: int, span_ns: int) -> PenLine:
    series = trace.series
    if series is None or not len(series):
        return PenLine(trace.slot, trace.asset_id, trace.metric, trace.label, trace.compare, "",
                       0, series is None, None)
    xs = PAD_START + (series.timestamps + trace.shift_ns - start_ns) / span_ns * PLOT_WIDTH
    ys = y_of(series.values, trace.low, trace.high)
    path = line_path(xs, ys)
    tag = None
    finite = np.flatnonzero(np.isfinite(series.values))
    if trace.compare is None and finite.size:
        last = int(finite[-1])
        # The number's baseline, a little below the point (text is drawn above its baseline).
        y = float(min(max(ys[last] + 4, PAD_TOP + 8), HEIGHT - PAD_BOTTOM - 8))
        tag = AxisLabel(float(min(xs[last] + 6, WIDTH - 18)), y, str(trace.slot + 1), "start")
    return PenLine(trace.slot, trace.asset_id, trace.metric, trace.label, trace.compare, path,
                   len(series), False, tag)


TAG_GAP = 14.0  # SVG units between two pens' numbers at the right edge


def _spread_tags(lines: list[PenLine]) -> tuple[PenLine, ...]:
    """Pens ending at one height (all off-scale at an edge, say) keep their numbers apart."""
    tagged = sorted((i for i, line in enumerate(lines) if line.tag), key=lambda i: lines[i].tag.y)
    if not tagged:
        return tuple(lines)
    top, bottom = PAD_TOP + 8.0, HEIGHT - PAD_BOTTOM - 8.0
    ys = [lines[i].tag.y for i in tagged]  # type: ignore[union-attr]
    for k in range(1, len(ys)):
        ys[k] = max(ys[k], ys[k - 1] + TAG_GAP)
    ys[-1] = min(ys[-1], bottom)
    for k in range(len(ys) - 2, -1, -1):
        ys[k] = min(ys[k], ys[k + 1] - TAG_GAP)
    ys = [max(y, top) for y in ys]
    for index, y in zip(tagged, ys, strict=True):
        lines[index] = replace(lines[index], tag=replace(lines[index].tag, y=y))
    return tuple(lines)


def build_trend_chart(
    traces: list[PenTrace], *, start_ns: int, end_ns: int, unit: str | None, digits: int,
    timezone: str, locale: str,
) -> TrendChart:
    """`traces` in drawing order (compared windows first, so the live pens lie on top);
    `unit` and `digits`: the first pen's, shown with its range at the value axis."""
    span_ns = max(end_ns - start_ns, 1)
    lines = _spread_tags([_line(trace, start_ns, span_ns) for trace in traces])

    fmt = time_format(span_ns)
    time_labels, time_gridlines = [], []
    for index in range(TIME_TICKS):
        fraction = index / (TIME_TICKS - 1)
        x = PAD_START + fraction * PLOT_WIDTH
        moment = ns_to_datetime(start_ns + round(fraction * span_ns))
        anchor = "start" if index == 0 else "end" if index == TIME_TICKS - 1 else "middle"
        time_labels.append(AxisLabel(x, HEIGHT - PAD_BOTTOM + 20,
                                     format_local_time(moment, timezone, fmt, locale), anchor))
        if 0 < index < TIME_TICKS - 1:
            time_gridlines.append(x)

    value_gridlines = tuple(PAD_TOP + (1 - f) * PLOT_HEIGHT for f in GRID_FRACTIONS)
    value_labels: tuple[AxisLabel, ...] = ()
    first = next((trace for trace in traces if trace.compare is None), None)
    if first is not None:
        value_labels = (
            AxisLabel(PAD_START - 8, PAD_TOP + 4, format_value(first.high, digits, locale), "end"),
            AxisLabel(PAD_START - 8, HEIGHT - PAD_BOTTOM + 4,
                      format_value(first.low, digits, locale), "end"),
            AxisLabel(PAD_START - 8, PAD_TOP - 14, unit or "", "end"),
        )
    return TrendChart(WIDTH, HEIGHT, lines, tuple(time_labels), tuple(time_gridlines),
                      value_gridlines, value_labels)
