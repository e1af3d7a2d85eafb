"""The live hub: per-process scheduling of the feeds every viewer shares (DESIGN.md §5, §7).

- One poll of `fetch_latest` per (integration, tag) per tick serves every viewer of it, at a
  fixed rate; its readings go into the tag's buffer (webapp/live/buffer.py) and out to every
  viewer by one fan-out (webapp/live/fanout.py) over the server's own connections
  (webapp/live/transport.py). Feeds are kept, and polled, for 15 minutes after the last viewer
  leaves, so a reconnecting client resumes from the buffer.
- Hooks run before a reading goes out (`before_fan_out`: the twin's charts redraw a due
  sample, webapp/twin/live_charts.py) and when streams of an edited mapping or integration are
  ended (`on_end_streams`).
- Every tick one call of `check_credentials` (tenancy's query, passed in) confirms every
  streamed session or token: revoked or expired credentials, deactivated users and tenants
  end their streams; a check that fails twice ends them all (clients reconnect and
  authenticate again). Viewers never hold a database session.
- The overview's card grids (webapp/live/grid.py) and the newest reading for summaries
  (`latest`, shared and briefly cached) come from here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime

import numpy as np
from starlette.types import Send

from webapp.connectors.registry import discard_connector
from webapp.db import utcnow
from webapp.integrations.service import SourceAccess
from webapp.live.buffer import BUFFER_SECONDS, Feed, raw_signal
from webapp.live.fanout import Encode, FanOut, Viewer
from webapp.live.grid import GridViewer, LiveGrids, RenderCards
from webapp.live.transport import body
from webapp.series import Series, datetime_to_ns
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

RESUME_HISTORY_LIMIT = 1000
CheckCredentials = Callable[[set[str]], set[str]]  # digests → those still authenticating
BeforeFanOut = Callable[[Feed, int], Awaitable[None]]  # (feed, its newer reading's ns)
OnEndStreams = Callable[[int, int | None, int | None], None]  # tenant, mapping, integration


class TooManyStreams(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"At most {limit} live streams per user may be open at once in this process: "
            "close another live view (the limit is OPTRIA_STREAMS_PER_USER)"
        )


class LiveHub:
    def __init__(
        self,
        *,
        interval: float,
        sources: SourceAccess,
        check_credentials: CheckCredentials | None = None,
        grace_seconds: float = BUFFER_SECONDS,
    ) -> None:
        self.interval = interval
        self.sources = sources
        self.grace_seconds = grace_seconds
        self.check_credentials = check_credentials
        self.feeds: dict[tuple[int, str], Feed] = {}
        self.viewers: set[Viewer] = set()  # every open stream
        self.fanout = FanOut()
        self.before_fan_out: list[BeforeFanOut] = []
        self.on_end_streams: list[OnEndStreams] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._card_cache: dict[tuple[int, str], tuple[float, Series | None, str]] = {}
        self._inflight: dict[tuple[int, str], asyncio.Future[None]] = {}
        self._closed = False
        self._streams_by_user: Counter[int] = Counter()
        self.grids = LiveGrids(interval=interval, latest=self.latest)

    async def stream_grid(
        self, key: Hashable, send: Send, *, signals: dict[int, list[Signal]],
        render: RenderCards, digest: str | None,
    ) -> bool:
        """One overview page's live cards (webapp/live/grid.py), its credential watched
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
            feed.signal = raw_signal(signal)  # the integration was edited: poll with its new config
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
        if newest is not None and (feed.last_ns is None or newest > feed.last_ns):
            for hook in self.before_fan_out:  # e.g. a chart's due sample, before this reading
                await hook(feed, newest)
        appended = feed.append_newer(read.series)
        feed.trim(datetime_to_ns(utcnow()))
        if appended:
            self.fanout.fan_out(feed)

    async def history_after(self, signal: Signal, after: datetime) -> Series:
        """Resume from the source's history (at most 1000 points), exclusive of `after`."""
        window = SeriesWindow(
            from_time=after, to_time=utcnow(), limit=RESUME_HISTORY_LIMIT, mode=SeriesMode.raw
        )
        try:
            read = await read_series(raw_signal(signal), window, self.sources)
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
                await send(body(data))
                if after is None:
                    viewer.sent_ns = shown_ns  # nothing up to the reading it showed again
            if after is not None:
                after_ns = datetime_to_ns(after)
                viewer.sent_ns = after_ns
                if after_ns < feed.covered_since_ns:  # older than the buffer reaches back
                    history = await self.history_after(signal, after)
                    if len(history):
                        await send(body(self.fanout.payload(viewer, history)))
                        viewer.sent_ns = int(history.timestamps[-1])
            feed.live.add(viewer)
            self.fanout.push(viewer, feed)  # the backlog, or the newest reading
            return await viewer.ended
        finally:
            feed.live.discard(viewer)
            self.viewers.discard(viewer)
            if viewer.writing is not None:
                viewer.writing.cancel()
            self.detach(feed)

    def source_of(self, signal: Signal) -> str:
        """"live" or "fallback": what the feed of this signal is currently showing."""
        feed = self.feeds.get(signal.source_key)
        return feed.source if feed is not None else "live"

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
            read = await read_latest(raw_signal(signal), self.sources)
        except SourceUnavailable:
            self._card_cache[signal.source_key] = (time.monotonic(), None, "live")
            return
        self._card_cache[signal.source_key] = (time.monotonic(), read.series, read.source)

    # --- revocation ---------------------------------------------------------------------------

    def _start_watching(self) -> None:
        if self.check_credentials is not None and (
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
                assert self.check_credentials is not None
                live = await asyncio.to_thread(self.check_credentials, digests)
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
        for hook in self.on_end_streams:
            hook(tenant_id, mapping_id, integration_id)
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

