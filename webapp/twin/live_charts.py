"""The twin's live charts (DESIGN.md §18): one per (mapping, range), shared by its viewers.

A chart draws samples of the source's own cadence; live readings never enter it (they move the
`latest` value), so "the last 100" stays 100 samples of one cadence and its window never
shrinks while watched. The hub calls `redraw_due` in the poll that found a newer reading:
the charts of that tag whose next sample is due (or, for a plot, once a minute) are read again
from the source, before that reading goes out, so a new sample shows with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np

from webapp.live.buffer import Feed
from webapp.live.hub import LiveHub
from webapp.series import Series
from webapp.timeseries.service import SeriesWindow, Signal, SourceUnavailable, read_series

# A downsampled day or week is redrawn at most once a minute (DESIGN.md §18).
PLOT_REDRAW_SECONDS = 60.0
CHART_IDLE_SECONDS = 300.0  # a chart nobody rendered for this long is no longer kept up


@dataclass
class ChartState:
    """One chart, shared by every viewer of it: samples of the source's own cadence.

    Live readings never enter it (they move the `latest` value): a chart of "the last 100"
    stays 100 samples of one cadence and its window never shrinks while watched. It is read
    again from the source when its next sample is due (or, for a plot, once a minute), in the
    poll that found the new reading, so a new sample shows with that reading."""

    series: Series
    signal: Signal  # scaled like its viewers'
    window: Callable[[], SeriesWindow]  # the chart's window as of now
    cadence_ns: int  # the spacing of its samples, or the plot's redraw interval
    plot: bool
    changed_after_ns: int | None = None  # a change shows with the first reading after this
    next_read: float = 0.0  # monotonic: no source read before then
    last_used: float = field(default_factory=time.monotonic)


def _cadence_ns(series: Series, fallback_ns: int) -> int:
    if len(series) < 2:
        return fallback_ns
    return max(int(np.median(np.diff(series.timestamps))), 1)


def _same_drawing(a: Series, b: Series) -> bool:
    return (
        len(a) == len(b)
        and np.array_equal(a.timestamps, b.timestamps)
        and np.array_equal(a.values, b.values, equal_nan=True)
        and np.array_equal(a.quality, b.quality)
    )


class LiveCharts:
    """The charts of one process, kept up by the hub's feeds (see the module docstring)."""

    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub
        self.charts: dict[Hashable, ChartState] = {}
        hub.before_fan_out.append(self.redraw_due)
        hub.on_end_streams.append(self.forget)

    # --- charts: redrawn when a new sample of their own cadence is due ------------------------

    def seed(
        self, key: Hashable, series: Series, *, signal: Signal,
        window: Callable[[], SeriesWindow], plot: bool,
    ) -> None:
        """Keep a chart read by a viewer who opened it (the newer of two seeds wins)."""
        state = self.charts.get(key)
        newest = int(series.timestamps[-1]) if len(series) else None
        if state is not None and (
            newest is None or (len(state.series) and newest < int(state.series.timestamps[-1]))
        ):
            state.last_used = time.monotonic()
            return
        cadence = (int(PLOT_REDRAW_SECONDS * 1e9) if plot
                   else _cadence_ns(series, int(60 * 1e9)))
        self.charts[key] = ChartState(series, signal, window, cadence, plot,
                                      changed_after_ns=None if state is None else
                                      state.changed_after_ns)
        if state is not None and not _same_drawing(state.series, series):
            self._mark_changed(self.charts[key])

    def chart_for(self, key: Hashable) -> Series:
        state = self.charts[key]
        state.last_used = time.monotonic()
        return state.series

    def chart_changed_in(self, key: Hashable, batch: Series) -> bool:
        """Whether `batch` (a viewer's new readings) is the one that shows the chart's last
        change: it holds the first reading after the change. Decided by content alone, so
        every viewer of a batch gets the same bytes and a viewer catching up gets it too."""
        state = self.charts.get(key)
        if state is None or state.changed_after_ns is None or not len(batch):
            return False
        after = state.changed_after_ns
        if int(batch.timestamps[-1]) <= after:
            return False
        feed = self.hub.feeds.get(state.signal.source_key)
        first_after = None
        if feed is not None:
            for ts in feed.timestamps:
                if ts > after:
                    first_after = ts
                    break
        return first_after is None or int(batch.timestamps[0]) <= first_after

    def _mark_changed(self, state: ChartState) -> None:
        feed = self.hub.feeds.get(state.signal.source_key)
        state.changed_after_ns = (feed.last_ns if feed is not None else None) or 0

    def _chart_due(self, state: ChartState, now: float, reading_ns: int) -> bool:
        """A plot is redrawn once a minute; a chart of samples once a reading at or after its
        next sample's time says that sample is complete."""
        if now < state.next_read or now - state.last_used > CHART_IDLE_SECONDS:
            return False
        if state.plot or not len(state.series):
            return True
        return reading_ns >= int(state.series.timestamps[-1]) + state.cadence_ns

    async def redraw_due(self, feed: Feed, reading_ns: int) -> None:
        """Read again the due charts of this feed's tag, before its new reading goes out."""
        now = time.monotonic()
        due = [
            state for state in list(self.charts.values())
            if state.signal.source_key == feed.signal.source_key
            and self._chart_due(state, now, reading_ns)
        ]
        for state in due:
            try:
                read = await read_series(state.signal, state.window(), self.hub.sources)
            except SourceUnavailable:
                read = None
            if read is not None and not _same_drawing(read.series, state.series):
                state.series = read.series
                state.next_read = now + PLOT_REDRAW_SECONDS if state.plot else 0.0
                self._mark_changed(state)
            else:
                # Not in the source yet (or it failed): asked again soon, not every tick.
                state.next_read = now + (PLOT_REDRAW_SECONDS if state.plot else min(
                    max(self.hub.interval, state.cadence_ns / 4e9), 15.0))

    def forget(
        self, tenant_id: int, mapping_id: int | None, integration_id: int | None
    ) -> None:
        """A re-pointed or rescaled mapping's chart is read again by its next viewer."""
        for key, state in list(self.charts.items()):
            if state.signal.tenant_id == tenant_id and (
                state.signal.mapping_id == mapping_id
                or state.signal.integration_id == integration_id
            ):
                del self.charts[key]

    def clear(self) -> None:
        self.charts.clear()
