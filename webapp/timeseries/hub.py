"""The live hub: per-process fan-out of new readings to every viewer (DESIGN.md §5, §7).

- One poll of `fetch_latest` per (integration, tag) per tick serves every viewer of it.
- Pushed readings stay in a 15-minute buffer, kept (and polled) for 15 minutes after the last
  viewer leaves, so a reconnecting EventSource resumes from `Last-Event-ID` without gaps or
  duplicates; older ids fall back to the source's history.
- Each tick's events are encoded once per variant (scaling, chart, locale) and written to every
  viewer's connection by one loop in the feed's task: no task per viewer wakes on a tick, which
  at thousands of viewers was most of the delivery lag. A viewer whose connection is full gets
  its write finished in a task of its own and catches up from the buffer; it never holds up
  the others.
- Charts are shared per (mapping, range) and redrawn from the source only when a sample of
  their own cadence is due (§18), never from live readings.
- One query per tick checks every streamed session or token: revoked or expired credentials,
  deactivated users and tenants end their streams; a check that fails twice ends them all (the
  clients reconnect and authenticate again). Open browser streams keep their session from
  idling out.
- Viewers never hold a database session: the hub opens its own, briefly, for that one query.

Readings are kept raw (unscaled); each viewer's signal applies its own scaling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import types
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Hashable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import numpy as np
from sqlalchemy import literal, select, union_all, update
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from webapp.connectors.registry import discard_connector
from webapp.db import AUTH_LOOKUP, as_utc, bind_tenant, utcnow
from webapp.integrations.service import SourceAccess
from webapp.series import Series, datetime_to_ns, ns_to_datetime
from webapp.tenancy.models import ApiToken, Tenant, User, UserSession
from webapp.tenancy.service import SESSION_TOUCH_INTERVAL, session_activity
from webapp.timeseries.grid import GridViewer, LiveGrids, RenderCards
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


class TooManyStreams(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"At most {limit} live streams per user may be open at once in this process: "
            "close another live view (the limit is OPTRIA_STREAMS_PER_USER)"
        )


def _raw(signal: Signal) -> Signal:
    """The signal as the source sees it: the hub stores readings unscaled."""
    return replace(signal, scaling_factor=1.0, offset_value=0.0)


class Feed:
    """The shared state of one (integration, tag): its buffer and its viewers."""

    def __init__(self, signal: Signal, now_ns: int) -> None:
        self.signal = _raw(signal)
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


Encode = Callable[[Series], bytes]


@dataclass(eq=False)
class Viewer:
    """One open stream. The feed's fan-out writes its events straight to `send`."""

    signal: Signal
    send: Send
    variant: Hashable  # e.g. JSON points, or one chart in one locale
    encode: Encode  # new scaled readings → this viewer's SSE bytes
    digest: str | None  # its session or token, re-checked every tick
    ended: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    sent_ns: int | None = None  # None: nothing sent yet; the first write is the newest reading
    writing: asyncio.Task[None] | None = None  # a write the connection could not take at once
    audience: Hashable = field(init=False)  # equal audiences get equal bytes for equal readings

    def __post_init__(self) -> None:
        signal = self.signal
        self.audience = (self.variant, signal.scaling_factor, signal.offset_value, signal.unit)

    def end(self, *, revoked: bool) -> None:
        if not self.ended.done():
            self.ended.set_result(revoked)


SERVER_SEND = "optria.server_send"


class ServerSendMiddleware:
    """Keeps the server's own `send` in the scope (outermost of our middlewares).

    The hub writes each tick's bytes to thousands of streams; a body message needs none of the
    wrappers in between, which all act on the response start only, and at 5,000 viewers going
    through them was about a tenth of the fan-out. A middleware that rewrites bodies (e.g.
    compression) would have to exclude text/event-stream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[SERVER_SEND] = send
        await self.app(scope, receive, send)


class Write(NamedTuple):
    through_ns: int  # the newest reading it carries
    data: bytes | None  # None: the stream must end (encoding failed, or it fell too far behind)


def _body(data: bytes) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": True}


def _start(awaitable: Awaitable[None]) -> Awaitable[None] | None:
    """Run a coroutine here up to its first suspension: None if it finished without one (an
    ASGI send does, unless the connection's buffer is full), else an awaitable finishing it."""
    if not isinstance(awaitable, Coroutine):
        return awaitable
    try:
        suspended_on = awaitable.send(None)
    except StopIteration:
        return None
    return _resume(awaitable, suspended_on)


@types.coroutine
def _resume(coroutine: Coroutine[Any, Any, None], suspended_on: Any) -> Generator[Any, Any, None]:
    """Hand a started coroutine's pending await to the task awaiting this, as `await` would."""
    pending = suspended_on
    while True:
        try:
            value = yield pending
        except BaseException as exc:  # cancellation, delivered where the coroutine waits
            try:
                pending = coroutine.throw(exc)
            except StopIteration:
                return
        else:
            try:
                pending = coroutine.send(value)
            except StopIteration:
                return


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


class LiveHub:
    def __init__(
        self,
        *,
        interval: float,
        sources: SourceAccess,
        session_factory: sessionmaker[Session] | None = None,
        grace_seconds: float = BUFFER_SECONDS,
    ) -> None:
        self.interval = interval
        self.sources = sources
        self.grace_seconds = grace_seconds
        self.session_factory = session_factory
        self.feeds: dict[tuple[int, str], Feed] = {}
        self.charts: dict[tuple[int, str], ChartState] = {}
        self.viewers: set[Viewer] = set()  # every open stream
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._card_cache: dict[tuple[int, str], tuple[float, Series | None, str]] = {}
        self._inflight: dict[tuple[int, str], asyncio.Future[None]] = {}
        self._closed = False
        self._shared: dict[Hashable, Any] = {}
        self._streams_by_user: Counter[int] = Counter()
        self.grids = LiveGrids(interval=interval, latest=self.latest)

    async def stream_grid(
        self, key: Hashable, send: Send, *, signals: dict[int, list[Signal]],
        render: RenderCards, digest: str | None,
    ) -> bool:
        """One overview page's live cards (webapp/timeseries/grid.py), its credential watched
        like every stream's."""
        self._loop = asyncio.get_running_loop()
        return await self.grids.stream(
            key, send, signals=signals, render=render, digest=digest,
            on_join=self._start_watching if digest is not None else lambda: None,
        )

    # --- how many streams a user holds open (DESIGN.md §16 abuse limits) --------------------

    def reserve_stream(self, user_id: int, limit: int) -> Callable[[], None]:
        """Count one more open stream of this user, or TooManyStreams once `limit` are open.
        Returns the release, which is safe to call more than once."""
        if self._streams_by_user[user_id] >= limit:
            raise TooManyStreams(limit)
        self._streams_by_user[user_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._streams_by_user[user_id] -= 1
                if self._streams_by_user[user_id] <= 0:
                    del self._streams_by_user[user_id]

        return release

    # --- feeds ---------------------------------------------------------------------------

    def attach(self, signal: Signal) -> Feed:
        self._loop = asyncio.get_running_loop()
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
        next_tick = time.monotonic()
        try:
            while not self._closed:
                await self._poll(feed)
                # Fixed rate: the poll and the fan-out come out of the interval, not on top
                # of it; a tick that overran skips the ticks it missed instead of bursting.
                next_tick += self.interval
                behind = time.monotonic() - next_tick
                if behind > 0:
                    next_tick += self.interval * math.ceil(behind / self.interval)
                await asyncio.sleep(next_tick - time.monotonic())
                idle = feed.idle_since
                if idle is not None and time.monotonic() - idle >= self.grace_seconds:
                    break
        finally:
            if self.feeds.get(key) is feed and feed.viewers == 0:
                del self.feeds[key]

    async def _poll(self, feed: Feed) -> None:
        feed.polls += 1
        try:
            read = await read_latest(feed.signal, self.sources)
        except SourceUnavailable as failure:
            if feed.error is None:
                logger.warning("live feed %s: %s", feed.signal.source_key, failure)
            feed.error = str(failure)
            return
        feed.error, feed.source = None, read.source
        newest = int(read.series.timestamps[-1]) if len(read.series) else None
        if self.charts and newest is not None and (feed.last_ns is None or newest > feed.last_ns):
            await self._redraw_charts(feed, newest)  # marked as changed before this reading
        appended = feed.append_newer(read.series)
        feed.trim(datetime_to_ns(utcnow()))
        if appended:
            self._fan_out(feed)

    def _fan_out(self, feed: Feed) -> None:
        """Write the new readings to every live viewer of `feed`, in this one loop."""
        started, viewers = time.perf_counter(), list(feed.live)
        writes: dict[tuple[Hashable, int | None], Write | None] = {}
        for viewer in viewers:
            self._push(viewer, feed, writes)
        feed.fan_outs.append((len(viewers), time.perf_counter() - started))

    async def history_after(self, signal: Signal, after: datetime) -> Series:
        """Resume from the source's history (at most 1000 points), exclusive of `after`."""
        window = SeriesWindow(
            from_time=after, to_time=utcnow(), limit=RESUME_HISTORY_LIMIT, mode=SeriesMode.raw
        )
        try:
            read = await read_series(_raw(signal), window, self.sources)
        except SourceUnavailable:
            return Series.empty()
        after_ns = datetime_to_ns(after)
        keep = read.series.timestamps > after_ns
        return read.series.take(np.flatnonzero(keep))

    async def stream(
        self,
        signal: Signal,
        send: Send,
        *,
        variant: Hashable,
        encode: Encode,
        after: datetime | None = None,
        digest: str | None = None,
        opening: Callable[[], tuple[bytes, int | None]] | None = None,
    ) -> bool:
        """Serve one viewer whose response has started: `opening()` (the current state, and the
        time of the reading it shows) if given, the readings after `after` (else, without an
        opening, the newest), then every new one, written by the feed's fan-out. Returns True
        when its credential was revoked, False when its connection failed; cancelling it (the
        client left, the server stops) ends it too."""
        self._loop = asyncio.get_running_loop()
        feed = self.attach(signal)
        viewer = Viewer(signal, send, variant, encode, digest)
        self.viewers.add(viewer)
        if digest is not None:
            self._start_watching()
        try:
            if opening is not None:
                data, shown_ns = opening()
                await send(_body(data))
                if after is None:
                    viewer.sent_ns = shown_ns  # nothing up to the reading it showed again
            if after is not None:
                after_ns = datetime_to_ns(after)
                viewer.sent_ns = after_ns
                if after_ns < feed.covered_since_ns:  # older than the buffer reaches back
                    history = await self.history_after(signal, after)
                    if len(history):
                        await send(_body(self._payload(viewer, history)))
                        viewer.sent_ns = int(history.timestamps[-1])
            feed.live.add(viewer)
            self._push(viewer, feed)  # the backlog, or the newest reading
            return await viewer.ended
        finally:
            feed.live.discard(viewer)
            self.viewers.discard(viewer)
            if viewer.writing is not None:
                viewer.writing.cancel()
            self.detach(feed)

    def _push(
        self, viewer: Viewer, feed: Feed,
        writes: dict[tuple[Hashable, int | None], Write | None] | None = None,
    ) -> None:
        """Write what `viewer` has not been sent yet, here and now if its connection takes it.
        `writes` shares one tick's encoded writes between viewers of the same audience."""
        if viewer.writing is not None or viewer.ended.done():
            return
        if writes is None:
            write = self._next_write(viewer, feed)
        else:
            key = (viewer.audience, viewer.sent_ns)  # nearly always one key per audience
            if key in writes:
                write = writes[key]
            else:
                write = writes[key] = self._next_write(viewer, feed)
        if write is not None:
            self._write(viewer, feed, write)

    def _next_write(self, viewer: Viewer, feed: Feed) -> Write | None:
        """The readings `viewer` has not been sent yet, encoded for it; None if none."""
        if viewer.sent_ns is not None and viewer.sent_ns < feed.covered_since_ns:
            # Stalled for longer than the buffer: end the response, so that the client
            # reconnects with Last-Event-ID and resumes from history, without a gap.
            return Write(viewer.sent_ns, None)
        batch = feed.points_after(viewer.sent_ns)
        if viewer.sent_ns is None:
            batch = batch.tail(1)
        if not len(batch):
            return None
        try:
            data = self._payload(viewer, batch)
        except Exception:  # a bug in one variant's encoding must not stop the fan-out
            logger.exception("encoding a live batch failed")
            data = None
        return Write(int(batch.timestamps[-1]), data)

    def _write(self, viewer: Viewer, feed: Feed, write: Write) -> None:
        if write.data is None:
            viewer.end(revoked=False)
            return
        viewer.sent_ns = write.through_ns
        try:
            rest = _start(viewer.send(_body(write.data)))
        except Exception:  # the connection is gone: its response ends, the others go on
            viewer.end(revoked=False)
            return
        if rest is not None:  # the connection is full: finish in a task, catch up after
            viewer.writing = asyncio.ensure_future(self._finish_write(viewer, feed, rest))

    async def _finish_write(self, viewer: Viewer, feed: Feed, rest: Awaitable[None]) -> None:
        try:
            await rest
        except Exception:
            viewer.end(revoked=False)
            return
        finally:
            viewer.writing = None
        self._push(viewer, feed)

    # --- work every viewer of a tick would repeat, done once --------------------------------

    def _payload(self, viewer: Viewer, batch: Series) -> bytes:
        """The viewer's bytes for a batch, encoded once per (batch, variant) and shared."""
        key = self._batch_key(viewer.signal, batch)
        return self._once(
            (viewer.variant, *key),
            lambda: viewer.encode(
                self._once(("scaled", *key), lambda: scale_series(batch, viewer.signal))
            ),
        )

    @staticmethod
    def _batch_key(signal: Signal, batch: Series) -> tuple[Hashable, ...]:
        """Names a batch by content: the buffer only grows, so (source, first, last, count)
        and the viewer's scaling say exactly which scaled points it holds."""
        return (
            signal.source_key, int(batch.timestamps[0]), int(batch.timestamps[-1]), len(batch),
            signal.scaling_factor, signal.offset_value, signal.unit,
        )

    def _once(self, key: Hashable, build: Callable[[], T]) -> T:
        """`build()`, or what it returned for this key before: keys name one tick's work."""
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

    # --- charts: redrawn when a new sample of their own cadence is due ------------------------

    def seed_chart(
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
        feed = self.feeds.get(state.signal.source_key)
        first_after = None
        if feed is not None:
            for ts in feed.timestamps:
                if ts > after:
                    first_after = ts
                    break
        return first_after is None or int(batch.timestamps[0]) <= first_after

    def _mark_changed(self, state: ChartState) -> None:
        feed = self.feeds.get(state.signal.source_key)
        state.changed_after_ns = (feed.last_ns if feed is not None else None) or 0

    def _chart_due(self, state: ChartState, now: float, reading_ns: int) -> bool:
        """A plot is redrawn once a minute; a chart of samples once a reading at or after its
        next sample's time says that sample is complete."""
        if now < state.next_read or now - state.last_used > CHART_IDLE_SECONDS:
            return False
        if state.plot or not len(state.series):
            return True
        return reading_ns >= int(state.series.timestamps[-1]) + state.cadence_ns

    async def _redraw_charts(self, feed: Feed, reading_ns: int) -> None:
        """Read again the due charts of this feed's tag, before its new reading goes out."""
        now = time.monotonic()
        due = [
            state for state in list(self.charts.values())
            if state.signal.source_key == feed.signal.source_key
            and self._chart_due(state, now, reading_ns)
        ]
        for state in due:
            try:
                read = await read_series(state.signal, state.window(), self.sources)
            except SourceUnavailable:
                read = None
            if read is not None and not _same_drawing(read.series, state.series):
                state.series = read.series
                state.next_read = now + PLOT_REDRAW_SECONDS if state.plot else 0.0
                self._mark_changed(state)
            else:
                # Not in the source yet (or it failed): asked again soon, not every tick.
                state.next_read = now + (PLOT_REDRAW_SECONDS if state.plot else min(
                    max(self.interval, state.cadence_ns / 4e9), 15.0))

    # --- latest values for the card grid (no SENSOR event: a summary, not a series read) ---

    def newest(self, signal: Signal) -> Series:
        """The newest buffered reading, scaled for `signal` (empty before the first poll)."""
        feed = self.feeds.get(signal.source_key)
        if feed is None or feed.last_ns is None:
            return Series.empty()
        return scale_series(feed.points_after(None).tail(1), signal)

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
            read = await read_latest(_raw(signal), self.sources)
        except SourceUnavailable:
            self._card_cache[signal.source_key] = (time.monotonic(), None, "live")
            return
        self._card_cache[signal.source_key] = (time.monotonic(), read.series, read.source)

    # --- revocation ---------------------------------------------------------------------------

    def _start_watching(self) -> None:
        if self.session_factory is not None and (
            self._watch_task is None or self._watch_task.done()
        ):
            self._watch_task = asyncio.create_task(self._watch_loop())

    async def _watch_loop(self) -> None:
        """Every tick, one query confirms every streamed credential. A stream whose session
        or token was revoked or expired, or whose user or tenant was deactivated, ends with
        `event: close`. Fails closed: if the check itself fails twice in a row, every stream
        ends (without close), so its client reconnects and authenticates again."""
        failed_checks = 0
        while self.viewers or self.grids.viewers():
            await asyncio.sleep(self.interval)
            watched: list[Viewer | GridViewer] = [*self.viewers, *self.grids.viewers()]
            digests = {viewer.digest for viewer in watched if viewer.digest is not None}
            if not digests:
                continue
            try:
                live = await asyncio.to_thread(self.live_credentials, digests)
            except Exception:  # one database hiccup is forgiven; two end the streams
                logger.exception("the streams' credential check failed")
                failed_checks += 1
                if failed_checks >= 2:
                    for viewer in watched:
                        if viewer.digest is not None:
                            viewer.end(revoked=False)
                continue
            failed_checks = 0
            for viewer in watched:
                if viewer.digest is not None and viewer.digest not in live:
                    viewer.end(revoked=True)

    def end_streams(
        self, *, tenant_id: int, mapping_id: int | None = None, integration_id: int | None = None
    ) -> None:
        """End the open streams of an edited mapping or integration (callable from any
        thread): their clients reconnect, as EventSource does by itself, and get the new
        settings, or a 404 if it was deactivated. An edited integration's feeds stop polling
        and its connector is closed at once: its old settings and credentials are used for
        nothing more (whoever still needs a feed attaches a new one, with the new settings)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(
                self._end_matching, tenant_id, mapping_id, integration_id
            )

    def _end_matching(
        self, tenant_id: int, mapping_id: int | None, integration_id: int | None
    ) -> None:
        self.grids.end_tenant(tenant_id)
        for key, state in list(self.charts.items()):
            # A re-pointed or rescaled mapping's chart is read again by the next viewer.
            if state.signal.tenant_id == tenant_id and (
                state.signal.mapping_id == mapping_id
                or state.signal.integration_id == integration_id
            ):
                del self.charts[key]
        for viewer in list(self.viewers):
            signal = viewer.signal
            if signal.tenant_id == tenant_id and (
                signal.mapping_id == mapping_id or signal.integration_id == integration_id
            ):
                viewer.end(revoked=False)
        if integration_id is None:
            return
        for key, feed in list(self.feeds.items()):
            if key[0] == integration_id and feed.signal.tenant_id == tenant_id:
                feed.closed = True
                del self.feeds[key]
                if feed.task is not None:
                    feed.task.cancel()
        discard_connector(integration_id)

    def live_credentials(self, digests: set[str]) -> set[str]:
        """Which of these session and token digests still authenticate: one query for all.
        A live stream is activity: its browser session's idle clock is refreshed."""
        assert self.session_factory is not None
        now = utcnow()
        live_owner = (User.is_active.is_(True), Tenant.is_active.is_(True))
        statement = union_all(
            select(
                UserSession.session_hash.label("digest"),
                UserSession.tenant_id,
                session_activity().label("last_seen"),
            )
            .join(User, User.id == UserSession.user_id)
            .join(Tenant, Tenant.id == User.tenant_id)
            .where(
                UserSession.session_hash.in_(digests),
                UserSession.revoked_at.is_(None),
                UserSession.expires_at > now,
                *live_owner,
            ),
            select(
                ApiToken.token_hash.label("digest"),
                ApiToken.tenant_id,
                literal(None).label("last_seen"),
            )
            .join(User, User.id == ApiToken.user_id)
            .join(Tenant, Tenant.id == User.tenant_id)
            .where(
                ApiToken.token_hash.in_(digests),
                ApiToken.revoked_at.is_(None),
                ApiToken.expires_at > now,
                *live_owner,
            ),
        )
        with self.session_factory() as session:
            rows = session.execute(statement.execution_options(**{AUTH_LOOKUP: True})).all()
            touch_before = now - SESSION_TOUCH_INTERVAL
            stale: dict[int, list[str]] = {}
            for row in rows:
                if row.last_seen is not None and as_utc(row.last_seen) <= touch_before:
                    stale.setdefault(row.tenant_id, []).append(row.digest)
            for tenant_id, stale_digests in stale.items():
                bind_tenant(session, tenant_id)
                session.execute(
                    update(UserSession)
                    .where(UserSession.session_hash.in_(stale_digests))
                    .values(last_seen_at=now)
                )
            session.commit()
            return {row.digest for row in rows}

    async def aclose(self) -> None:
        self._closed = True
        await self.grids.aclose()
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
