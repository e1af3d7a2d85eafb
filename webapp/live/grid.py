"""The overview's live grid (DESIGN.md §18): one SSE stream per open overview page.

Each (tenant, locale) has one grid: every tick it reads the cards' newest readings (through
the hub's `latest`, which shares a live feed or one read per interval per tag), renders every
card once, and queues the cards whose bytes changed to each of its viewers. N viewers cost one
render per tick, not N. A viewer that falls a whole buffer behind is ended; its client
reconnects and opens with every card's current state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

from starlette.types import Send

from webapp.live.transport import body
from webapp.series import Series
from webapp.timeseries.service import Signal

# The newest reading (scaled) of each card signal, or None when its source gave nothing.
CardReadings = dict[int, list[tuple[Signal, Series | None]]]
RenderCards = Callable[[CardReadings], dict[int, bytes]]  # asset id → its SSE event
Latest = Callable[[Signal], Awaitable[tuple[Series, str] | None]]

logger = logging.getLogger(__name__)

CARDS_PER_ASSET = 2
READ_BUDGET_FRACTION = 0.75  # of the interval: a slow source's cards keep their last state
VIEWER_BACKLOG = 32  # ticks a viewer may be behind before it is ended (it reconnects)


async def read_cards(
    latest: Latest, signals: dict[int, list[Signal]], *, budget: float,
    known: dict[tuple[int, str], Series | None] | None = None,
) -> CardReadings:
    """The newest reading of each card's first signals, within `budget` seconds. A read still
    out (a slow source) keeps what `known` holds for it, else None, and finishes on its own
    (the hub caches it); `known` is brought up to date with the reads that came in."""
    known = {} if known is None else known
    wanted = [s for asset_signals in signals.values() for s in asset_signals[:CARDS_PER_ASSET]]
    reads = [asyncio.ensure_future(latest(signal)) for signal in wanted]
    if reads:
        await asyncio.wait(reads, timeout=budget)
    cards: CardReadings = {}
    for signal, read in zip(wanted, reads, strict=True):
        key = (signal.mapping_id, signal.external_tag)
        if read.done() and not read.cancelled() and read.exception() is None:
            result = read.result()
            known[key] = None if result is None else result[0]
        else:  # still reading (or failed): the card keeps what it showed
            read.add_done_callback(lambda task: task.cancelled() or task.exception())
        cards.setdefault(signal.asset_id, []).append((signal, known.get(key)))
    return cards


@dataclass(eq=False)
class GridViewer:
    digest: str | None  # its session or token, re-checked by the hub every tick
    queue: asyncio.Queue[bytes] = field(
        default_factory=lambda: asyncio.Queue(maxsize=VIEWER_BACKLOG)
    )
    ended: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def end(self, *, revoked: bool) -> None:
        if not self.ended.done():
            self.ended.set_result(revoked)


@dataclass(eq=False)
class Grid:
    signals: dict[int, list[Signal]]  # by asset: the cards' signals, in card order
    render: RenderCards
    viewers: set[GridViewer] = field(default_factory=set)
    sent: dict[int, bytes] = field(default_factory=dict)  # each card's newest event
    readings: dict[tuple[int, str], Series | None] = field(default_factory=dict)
    renders: int = 0
    first_render: asyncio.Future[bytes] | None = None
    task: asyncio.Task[None] | None = None


class LiveGrids:
    def __init__(self, *, interval: float, latest: Latest) -> None:
        self.interval = interval
        self.latest = latest
        self.grids: dict[Hashable, Grid] = {}
        self._closed = False

    def viewers(self) -> list[GridViewer]:
        return [viewer for grid in self.grids.values() for viewer in grid.viewers]

    async def stream(
        self, key: Hashable, send: Send, *, signals: dict[int, list[Signal]],
        render: RenderCards, digest: str | None, on_join: Callable[[], None] = lambda: None,
    ) -> bool:
        """Serve one overview page: every card now, then the cards that change. Returns True
        when its credential was revoked, False when it fell behind or its connection failed."""
        grid = self.grids.get(key)
        if grid is None:
            grid = self.grids[key] = Grid(signals, render)
        else:  # the newest page knows the newest mappings
            grid.signals, grid.render = signals, render
        # Joined before any wait: a grid is only ever dropped when nobody is in it.
        viewer = GridViewer(digest)
        grid.viewers.add(viewer)
        on_join()  # e.g. the hub starts watching its credential
        try:
            if not grid.sent:  # the first viewers of a grid share its first render
                if grid.first_render is None:
                    grid.first_render = asyncio.ensure_future(self._render(grid))
                try:
                    await asyncio.shield(grid.first_render)
                except Exception:
                    grid.first_render = None  # the next viewer tries again
                    raise
            opening = b"".join(grid.sent.values())
            if grid.task is None or grid.task.done():
                grid.task = asyncio.create_task(self._run(key, grid))
            await send(body(opening))
            while True:
                message = asyncio.ensure_future(viewer.queue.get())
                await asyncio.wait({message, viewer.ended}, return_when=asyncio.FIRST_COMPLETED)
                if viewer.ended.done():
                    message.cancel()
                    return viewer.ended.result()
                await send(body(message.result()))
        except OSError:
            return False
        finally:
            grid.viewers.discard(viewer)

    async def _run(self, key: Hashable, grid: Grid) -> None:
        next_tick = time.monotonic() + self.interval
        try:
            while grid.viewers and not self._closed:
                await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
                try:
                    changed = await self._render(grid)
                except Exception:  # a bad reading or template: this tick is lost, not the grid
                    logger.exception("rendering the live grid failed")
                    changed = b""
                if changed:
                    for viewer in list(grid.viewers):
                        try:
                            viewer.queue.put_nowait(changed)
                        except asyncio.QueueFull:
                            viewer.end(revoked=False)
                next_tick += self.interval
                behind = time.monotonic() - next_tick
                if behind > 0:
                    next_tick += self.interval * math.ceil(behind / self.interval)
        finally:
            if self.grids.get(key) is grid and not grid.viewers:
                del self.grids[key]

    async def _render(self, grid: Grid) -> bytes:
        """Render every card once; returns the events of the cards that changed."""
        cards = await read_cards(
            self.latest, grid.signals, budget=self.interval * READ_BUDGET_FRACTION,
            known=grid.readings,
        )
        grid.renders += 1
        events = grid.render(cards)
        changed = b"".join(data for asset, data in events.items() if grid.sent.get(asset) != data)
        grid.sent = events
        return changed

    def end_tenant(self, tenant_id: int) -> None:
        """An integration or mapping of the tenant changed: its pages reconnect and bring the
        new signals (a grid never polls with old settings or credentials)."""
        for key, grid in list(self.grids.items()):
            if isinstance(key, tuple) and key and key[0] == tenant_id:
                del self.grids[key]
                for viewer in list(grid.viewers):
                    viewer.end(revoked=False)
                if grid.task is not None:
                    grid.task.cancel()

    async def aclose(self) -> None:
        self._closed = True
        for grid in list(self.grids.values()):
            for viewer in list(grid.viewers):
                viewer.end(revoked=False)
            if grid.task is not None:
                grid.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await grid.task
        self.grids.clear()
