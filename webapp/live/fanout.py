"""Fan-out: each tick's new readings written to every viewer of a feed, in one loop.

Each tick's events are encoded once per variant (scaling, chart, locale) and written to every
viewer's connection by one loop in the feed's task: no task per viewer wakes on a tick, which
at thousands of viewers was most of the delivery lag. A viewer whose connection is full gets
its write finished in a task of its own and catches up from the buffer; it never holds up the
others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from starlette.types import Send

from webapp.live.buffer import Feed
from webapp.live.transport import body, start_write
from webapp.series import Series
from webapp.timeseries.service import Signal, scale_series

logger = logging.getLogger(__name__)

SHARED_WORK_LIMIT = 1024
T = TypeVar("T")

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


class Write(NamedTuple):
    through_ns: int  # the newest reading it carries
    data: bytes | None  # None: the stream must end (encoding failed, or it fell too far behind)


class FanOut:
    """Writes feeds' new readings to their live viewers, sharing one tick's encodings."""

    def __init__(self) -> None:
        self._shared: dict[Hashable, Any] = {}

    def fan_out(self, feed: Feed) -> None:
        """Write the new readings to every live viewer of `feed`, in this one loop."""
        started, viewers = time.perf_counter(), list(feed.live)
        writes: dict[tuple[Hashable, int | None], Write | None] = {}
        for viewer in viewers:
            self.push(viewer, feed, writes)
        feed.fan_outs.append((len(viewers), time.perf_counter() - started))

    def push(
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
            data = self.payload(viewer, batch)
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
            rest = start_write(viewer.send(body(write.data)))
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
        self.push(viewer, feed)

    # --- work every viewer of a tick would repeat, done once --------------------------------

    def payload(self, viewer: Viewer, batch: Series) -> bytes:
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
