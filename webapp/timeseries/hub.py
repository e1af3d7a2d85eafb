"""The live hub: per-process fan-out of new readings to every viewer (DESIGN.md §5, §7).

- One poll of `fetch_latest` per (integration, tag) per tick serves every viewer of it.
- Pushed readings stay in a 15-minute buffer, kept (and polled) for 15 minutes after the last
  viewer leaves, so a reconnecting EventSource resumes from `Last-Event-ID` without gaps or
  duplicates; older ids fall back to the source's history.
- Chart windows and rendered fragments are advanced once per tick per (mapping, range[,
  locale]), not once per viewer.
- One query per tick checks every streamed session or token for revocation.
- Viewers never hold a database session: the hub opens its own, briefly, for that one query.

Readings are kept raw (unscaled); each viewer's signal applies its own scaling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import select, union_all
from sqlalchemy.orm import Session, sessionmaker

from webapp.connectors.base import Series, datetime_to_ns, ns_to_datetime
from webapp.db import AUTH_LOOKUP, utcnow
from webapp.tenancy.models import ApiToken, UserSession
from webapp.timeseries.downsample import downsample
from webapp.timeseries.service import (
    SeriesMode,
    SeriesWindow,
    Signal,
    SourceUnavailable,
    read_latest,
    read_series,
    scale_series,
)

logger = logging.getLogger(__name__)

BUFFER_SECONDS = 15 * 60
RESUME_HISTORY_LIMIT = 1000
SHARED_WORK_LIMIT = 1024
T = TypeVar("T")


def _raw(signal: Signal) -> Signal:
    """The signal as the source sees it: the hub stores readings unscaled."""
    return replace(signal, scaling_factor=1.0, offset_value=0.0)


class Feed:
    """The shared state of one (integration, tag): buffer, viewers, and a wake-up event."""

    def __init__(self, signal: Signal, now_ns: int) -> None:
        self.signal = _raw(signal)
        self.timestamps: deque[int] = deque()
        self.values: deque[float] = deque()
        self.quality: deque[int] = deque()
        # Every reading newer than this instant has been buffered (the feed's start).
        self.covered_since_ns = now_ns
        self.viewers = 0
        self.idle_since: float | None = None
        self.changed = asyncio.Event()
        self.polls = 0
        self.source = "live"
        self.error: str | None = None
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

    def notify(self) -> None:
        woken, self.changed = self.changed, asyncio.Event()
        woken.set()


@dataclass(eq=False)
class Watch:
    """One streaming viewer's credential, checked for revocation every tick."""

    digest: str
    feed: Feed | None = None
    revoked: bool = False


@dataclass
class ChartState:
    """A chart window advanced once per tick, shared by every viewer of that chart."""

    series: Series
    limit: int
    span_ns: int | None  # None: the latest `limit` points; else a time window (plot)


class LiveHub:
    def __init__(
        self,
        *,
        interval: float,
        timeout: float,
        session_factory: sessionmaker[Session] | None = None,
        grace_seconds: float = BUFFER_SECONDS,
    ) -> None:
        self.interval = interval
        self.timeout = timeout
        self.grace_seconds = grace_seconds
        self.session_factory = session_factory
        self.feeds: dict[tuple[int, str], Feed] = {}
        self.charts: dict[tuple[int, str], ChartState] = {}
        self.watches: set[Watch] = set()
        self._watch_task: asyncio.Task[None] | None = None
        self._card_cache: dict[tuple[int, str], tuple[float, Series | None, str]] = {}
        self._inflight: dict[tuple[int, str], asyncio.Future[None]] = {}
        self._closed = False
        self._shared: dict[Hashable, Any] = {}

    # --- feeds ---------------------------------------------------------------------------

    def attach(self, signal: Signal) -> Feed:
        feed = self.feeds.get(signal.source_key)
        if feed is None:
            feed = self.feeds[signal.source_key] = Feed(signal, datetime_to_ns(utcnow()))
        elif feed.signal.integration_config != signal.integration_config:
            feed.signal = _raw(signal)  # the integration was edited: poll with its new config
        feed.viewers += 1
        feed.idle_since = None
        if feed.task is None or feed.task.done():
            feed.task = asyncio.create_task(self._run_feed(feed))
        return feed

    def detach(self, feed: Feed) -> None:
        feed.viewers -= 1
        if feed.viewers <= 0:
            feed.viewers = 0
            feed.idle_since = time.monotonic()

    async def _run_feed(self, feed: Feed) -> None:
        key = feed.signal.source_key
        try:
            while not self._closed:
                await self._poll(feed)
                await asyncio.sleep(self.interval)
                idle = feed.idle_since
                if idle is not None and time.monotonic() - idle >= self.grace_seconds:
                    break
        finally:
            if self.feeds.get(key) is feed and feed.viewers == 0:
                del self.feeds[key]

    async def _poll(self, feed: Feed) -> None:
        feed.polls += 1
        try:
            read = await read_latest(feed.signal, timeout=self.timeout)
        except SourceUnavailable as failure:
            if feed.error is None:
                logger.warning("live feed %s: %s", feed.signal.source_key, failure)
            feed.error = str(failure)
            return
        feed.error, feed.source = None, read.source
        appended = feed.append_newer(read.series)
        feed.trim(datetime_to_ns(utcnow()))
        if appended:
            feed.notify()

    def backlog(self, feed: Feed, after_ns: int) -> Series | None:
        """Buffered points after `after_ns`, or None when the buffer does not reach back."""
        return feed.points_after(after_ns) if after_ns >= feed.covered_since_ns else None

    async def history_after(self, signal: Signal, after: datetime) -> Series:
        """Resume from the source's history (at most 1000 points), exclusive of `after`."""
        window = SeriesWindow(
            from_time=after, to_time=utcnow(), limit=RESUME_HISTORY_LIMIT, mode=SeriesMode.raw
        )
        try:
            read = await read_series(_raw(signal), window, timeout=self.timeout)
        except SourceUnavailable:
            return Series.empty()
        after_ns = datetime_to_ns(after)
        keep = read.series.timestamps > after_ns
        return read.series.take(np.flatnonzero(keep))

    async def subscribe(
        self, signal: Signal, *, after: datetime | None = None, watch: Watch | None = None
    ) -> AsyncIterator[Series]:
        """Batches of new scaled readings for one viewer, until revoked or cancelled."""
        feed = self.attach(signal)
        if watch is not None:
            watch.feed = feed
        try:
            sent_ns: int | None
            if after is not None:
                after_ns = datetime_to_ns(after)
                batch = self.backlog(feed, after_ns)
                if batch is None:
                    history = await self.history_after(signal, after)
                    resume_ns = int(history.timestamps[-1]) if len(history) else after_ns
                    batch = Series.concat([history, feed.points_after(resume_ns)])
                sent_ns = after_ns
            else:
                batch = feed.points_after(None).tail(1)  # the newest reading, if any
                sent_ns = None
            while True:
                if watch is not None and watch.revoked:
                    return
                changed = feed.changed
                if len(batch):
                    sent_ns = int(batch.timestamps[-1])
                    yield self.shared(
                        ("scaled", *self.batch_key(signal, batch)),
                        lambda batch=batch: scale_series(batch, signal),
                    )
                else:
                    await changed.wait()
                batch = feed.points_after(sent_ns)
        finally:
            self.detach(feed)

    # --- work every viewer of a tick would repeat, done once --------------------------------

    @staticmethod
    def batch_key(signal: Signal, batch: Series) -> tuple[Hashable, ...]:
        """Names a batch by content: the buffer only grows, so (source, first, last, count)
        and the viewer's scaling say exactly which scaled points it holds."""
        return (
            signal.source_key, int(batch.timestamps[0]), int(batch.timestamps[-1]), len(batch),
            signal.scaling_factor, signal.offset_value, signal.unit,
        )

    def shared(self, key: Hashable, build: Callable[[], T]) -> T:
        cached = self._shared.get(key)
        if cached is None:
            if len(self._shared) >= SHARED_WORK_LIMIT:
                self._shared.clear()  # entries are per tick: old ones are never asked again
            cached = self._shared[key] = build()
        return cached

    def source_of(self, signal: Signal) -> str:
        """"live" or "fallback": what the feed of this signal is currently showing."""
        feed = self.feeds.get(signal.source_key)
        return feed.source if feed is not None else "live"

    # --- charts and fragments, once per tick ---------------------------------------------------

    def seed_chart(self, key: tuple[int, str], series: Series, *, limit: int,
                   span: timedelta | None) -> None:
        state = self.charts.get(key)
        newest = int(series.timestamps[-1]) if len(series) else None
        if state is None or (newest is not None and (
            not len(state.series) or newest >= int(state.series.timestamps[-1])
        )):
            span_ns = None if span is None else int(span.total_seconds() * 1e9)
            self.charts[key] = ChartState(series, limit, span_ns)

    def chart_for(self, key: tuple[int, str], signal: Signal) -> Series:
        """Advance the shared chart to the feed's newest reading (idempotent within a tick)."""
        state = self.charts[key]
        feed = self.feeds.get(signal.source_key)
        last = int(state.series.timestamps[-1]) if len(state.series) else None
        if feed is not None:
            fresh = feed.points_after(last)
            if len(fresh):
                series = Series.concat([state.series, scale_series(fresh, signal)])
                if state.span_ns is None:
                    series = series.tail(state.limit)
                else:
                    series = series.window(int(series.timestamps[-1]) - state.span_ns,
                                           int(series.timestamps[-1]))
                    if len(series) > state.limit:  # a plot stays within its point budget
                        series = downsample(series, state.limit)
                state.series = series
        return state.series

    def fragments(
        self, key: tuple[int, str], signal: Signal, variant: Hashable,
        render: Callable[[Series], Any],
    ) -> Any:
        """Render once per tick per (chart, variant e.g. locale); every viewer shares it."""
        series = self.chart_for(key, signal)
        newest = int(series.timestamps[-1]) if len(series) else None
        return self.shared(
            ("fragments", key, variant, newest, len(series)), lambda: render(series)
        )

    # --- latest values for the card grid (no SENSOR event: a summary, not a series read) ---

    async def latest(self, signal: Signal) -> tuple[Series, str] | None:
        """The newest reading, for summaries. A failure is remembered for one interval and
        concurrent askers share one read, so a dead source cannot slow every page."""
        key = signal.source_key
        feed = self.feeds.get(key)
        if feed is not None and feed.last_ns is not None and feed.error is None:
            return scale_series(feed.points_after(None).tail(1), signal), feed.source
        cached = self._card_cache.get(key)
        if cached is None or time.monotonic() - cached[0] >= self.interval:
            read = self._inflight.get(key)
            if read is None:
                read = self._inflight[key] = asyncio.ensure_future(self._read_latest(signal))
                read.add_done_callback(lambda _task: self._inflight.pop(key, None))
            await asyncio.shield(read)
            cached = self._card_cache[key]
        series, source = cached[1], cached[2]
        return None if series is None else (scale_series(series, signal), source)

    async def _read_latest(self, signal: Signal) -> None:
        try:
            read = await read_latest(_raw(signal), timeout=self.timeout)
        except SourceUnavailable:
            self._card_cache[signal.source_key] = (time.monotonic(), None, "live")
            return
        self._card_cache[signal.source_key] = (time.monotonic(), read.series, read.source)

    # --- revocation ---------------------------------------------------------------------------

    def watch(self, digest: str) -> Watch:
        watch = Watch(digest)
        self.watches.add(watch)
        if self.session_factory is not None and (
            self._watch_task is None or self._watch_task.done()
        ):
            self._watch_task = asyncio.create_task(self._watch_loop())
        return watch

    def unwatch(self, watch: Watch) -> None:
        self.watches.discard(watch)

    async def _watch_loop(self) -> None:
        while self.watches:
            await asyncio.sleep(self.interval)
            digests = {watch.digest for watch in self.watches}
            if not digests:
                continue
            try:
                live = await asyncio.to_thread(self._live_digests, digests)
            except Exception:  # a database hiccup must not end every stream
                logger.exception("revocation check failed")
                continue
            for watch in list(self.watches):
                if watch.digest not in live and not watch.revoked:
                    watch.revoked = True
                    if watch.feed is not None:
                        watch.feed.notify()

    def _live_digests(self, digests: set[str]) -> set[str]:
        """One query for every streamed session and token: which are still valid."""
        assert self.session_factory is not None
        now = utcnow()
        statement = union_all(
            select(UserSession.session_hash.label("digest")).where(
                UserSession.session_hash.in_(digests),
                UserSession.revoked_at.is_(None),
                UserSession.expires_at > now,
            ),
            select(ApiToken.token_hash.label("digest")).where(
                ApiToken.token_hash.in_(digests),
                ApiToken.revoked_at.is_(None),
                ApiToken.expires_at > now,
            ),
        )
        with self.session_factory() as session:
            rows = session.execute(statement.execution_options(**{AUTH_LOOKUP: True}))
            return {row.digest for row in rows}

    async def aclose(self) -> None:
        self._closed = True
        tasks = [feed.task for feed in self.feeds.values() if feed.task is not None]
        if self._watch_task is not None:
            tasks.append(self._watch_task)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.feeds.clear()
        self.charts.clear()


def ns_to_event_id(ns: int) -> str:
    return ns_to_datetime(ns).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
