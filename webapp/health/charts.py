"""The panel's health trend: the stored scores of a fixed window as plain data for
`partials/_health_trend.html` (an inline SVG, like twin/charts.py).

The value axis is always 0–100 with the band edges (85, 65, 40) drawn, so a trend never
rescales under the operator's eyes and a fall reads as a crossing into the next band. A stored
score holds until the next row (rows are written on change, §15), so the line is a step; it
breaks where a row says "no data" and where rows stop for longer than the scanner would allow.
Time runs left → right in every language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from webapp.health.model import BAND_EDGES
from webapp.templating import format_local_time, format_number
from webapp.twin.charts import AxisLabel

WIDTH, HEIGHT = 360, 120
PAD_START, PAD_END, PAD_TOP, PAD_BOTTOM = 34, 10, 10, 26
# A row is written at least every 15 minutes; past this gap nobody was assessing the asset.
MAX_HOLD = timedelta(minutes=20)


@dataclass(frozen=True, slots=True)
class HealthTrend:
    width: int
    height: int
    path: str
    point_count: int
    band_lines: tuple[tuple[float, AxisLabel], ...]  # (y, its value label) per band edge
    time_labels: tuple[AxisLabel, ...]
    plot_left: int = PAD_START
    plot_right: int = WIDTH - PAD_END
    plot_top: int = PAD_TOP
    plot_bottom: int = HEIGHT - PAD_BOTTOM


def _y_of(score: float) -> float:
    return PAD_TOP + (100 - score) / 100 * (HEIGHT - PAD_TOP - PAD_BOTTOM)


def build_health_trend(
    points: list[tuple[datetime, int | None]], *, start: datetime, end: datetime,
    timezone: str, locale: str,
) -> HealthTrend:
    """`points`: (computed_at, score or None) oldest first, as `service.health_history` gives;
    a row before `start` (the score in force at the window's start) is drawn from `start`."""
    span = max((end - start).total_seconds(), 1.0)
    plot_width = WIDTH - PAD_START - PAD_END

    def x_of(moment: datetime) -> float:
        seconds = min(max((moment - start).total_seconds(), 0.0), span)
        return PAD_START + seconds / span * plot_width

    commands: list[str] = []
    for index, (at, score) in enumerate(points):
        if score is None:
            continue
        until = points[index + 1][0] if index + 1 < len(points) else end
        until = min(until, at + MAX_HOLD, end)
        y = _y_of(score)
        previous = points[index - 1] if index else None
        joined = (
            previous is not None and previous[1] is not None
            and at - previous[0] <= MAX_HOLD and commands
        )
        # A step: straight down or up from the previous score, then along to the next row.
        commands.append(f"{'V' if joined else f'M{x_of(at):.1f},'}{y:.1f}")
        commands.append(f"H{x_of(until):.1f}")

    fmt = "HH:mm" if end - start <= timedelta(hours=12) else "d MMM HH:mm"
    bottom = HEIGHT - PAD_BOTTOM + 18
    time_labels = (
        AxisLabel(PAD_START, bottom, format_local_time(start, timezone, fmt, locale), "start"),
        AxisLabel(WIDTH - PAD_END, bottom, format_local_time(end, timezone, fmt, locale), "end"),
    )
    band_lines = tuple(
        (_y_of(edge), AxisLabel(PAD_START - 6, _y_of(edge) + 4, format_number(edge, 0, locale),
                                "end"))
        for edge, _band in BAND_EDGES
    )
    return HealthTrend(
        WIDTH, HEIGHT, " ".join(commands), sum(score is not None for _, score in points),
        band_lines, time_labels,
    )
