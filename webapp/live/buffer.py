"""One tag's live readings: the buffer every viewer of an (integration, tag) shares.

Pushed readings stay for BUFFER_SECONDS, so a reconnecting EventSource resumes from
`Last-Event-ID` without gaps or duplicates; older ids fall back to the source's history.
Readings are kept raw (unscaled); each viewer's signal applies its own scaling.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from webapp.series import Series
from webapp.timeseries.service import Signal

if TYPE_CHECKING:
    from webapp.live.fanout import Viewer

BUFFER_SECONDS = 15 * 60


def raw_signal(signal: Signal) -> Signal:
    """The signal as the source sees it: the hub stores readings unscaled."""
    return replace(signal, scaling_factor=1.0, offset_value=0.0)


class Feed:
    """The shared state of one (integration, tag): its buffer and its viewers."""

    def __init__(self, signal: Signal, now_ns: int) -> None:
        self.signal = raw_signal(signal)
        self.timestamps: deque[int] = deque()
        self.values: deque[float] = deque()
        self.quality: deque[int] = deque()
        # Every reading newer than this instant has been buffered (the feed's start).
        self.covered_since_ns = now_ns
        self.viewers = 0  # attached, counting those still being sent their backlog
        self.live: set[Viewer] = set()  # written to by the fan-out on every new reading
        self.idle_since: float | None = None
        self.polls = 0
        self.polled = False  # a reading has come in
        self.fan_outs: deque[tuple[int, float]] = deque(maxlen=64)  # (viewers, seconds) per tick
        self.source = "live"
        self.error: str | None = None
        self.closed = False  # its integration changed: holders must attach a new feed
        self.task: asyncio.Task[None] | None = None
        self._memo: tuple[int | None, int | None, Series] | None = None

    @property
    def last_ns(self) -> int | None:
        return self.timestamps[-1] if self.timestamps else None

    def points_after(self, after_ns: int | None) -> Series:
        """Buffered readings newer than `after_ns`; memoised because, within a tick, every
        viewer asks for the same slice (usually one point at the newest end)."""
        memo = self._memo
        if memo is not None and memo[0] == after_ns and memo[1] == self.last_ns:
            return memo[2]
        total = len(self.timestamps)
        count = 0
        if after_ns is None:
            count = total
        else:
            for ts in reversed(self.timestamps):  # newest first: typically stops at once
                if ts <= after_ns:
                    break
                count += 1
        if count == 0:
            series = Series.empty()
        else:
            span = range(total - count, total)
            series = Series(
                np.array([self.timestamps[i] for i in span], dtype=np.int64),
                np.array([self.values[i] for i in span], dtype=np.float64),
                np.array([self.quality[i] for i in span], dtype=np.uint8),
            )
        self._memo = (after_ns, self.last_ns, series)
        return series

    def append_newer(self, series: Series) -> bool:
        last = self.last_ns
        if not self.polled and len(series):
            # A historian's newest reading is often older than the feed: from it on, every
            # newer reading is buffered (a viewer sent it has no gap to resume).
            self.polled = True
            self.covered_since_ns = min(self.covered_since_ns, int(series.timestamps[0]))
        appended = False
        for ts, value, quality in zip(
            series.timestamps.tolist(), series.values.tolist(), series.quality.tolist(),
            strict=True,
        ):
            if last is None or ts > last:
                self.timestamps.append(ts)
                self.values.append(value)
                self.quality.append(quality)
                last, appended = ts, True
        return appended

    def trim(self, now_ns: int) -> None:
        horizon = now_ns - BUFFER_SECONDS * 1_000_000_000
        while self.timestamps and self.timestamps[0] < horizon:
            self.timestamps.popleft()
            self.values.popleft()
            self.quality.popleft()
            # Older than the buffer now: resuming from there must use history.
            self.covered_since_ns = max(self.covered_since_ns, horizon)
