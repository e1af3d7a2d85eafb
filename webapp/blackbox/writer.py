"""The BlackBox group commit (DESIGN.md §17): one writer per process for the read path's events.

A fetch of plant data must be on record before its response leaves, and with a commit per
request every request waits in line for the tenant's chain lock. Instead, requests hand their
events to the writer and await them; the writer commits whatever arrived while its previous
batch was committing as one transaction per tenant (one chain lock, one head read, one id
query, one commit), in arrival order, then wakes those requests. With several processes each
batch still takes the tenant's chain lock in the database (`append_events`), so the chain stays
one line whoever writes it.

Configuration changes, alarms and logbook entries keep `record_event` inside their own
transaction: their event must land atomically with the change it describes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from webapp.blackbox.service import EventDraft, append_events
from webapp.db import tenant_session

logger = logging.getLogger(__name__)

# Requests per transaction at most: bounds one commit's size and its waiters' latency.
MAX_BATCH_REQUESTS = 1000


class EventsNotRecorded(Exception):
    """The events could not be committed (the database failed or the writer is closed): the
    caller must not answer as if they were on record."""


@dataclass(slots=True)
class _Request:
    drafts: tuple[EventDraft, ...]
    # Settled by the writer's loop: an asyncio future for a caller on that loop (the usual
    # case: no cross-thread wake-up per request), a thread-safe one for any other loop's.
    done: asyncio.Future[None] | Future[None] = field(repr=False)


class EventWriter:
    """Batches concurrent requests' events; `record` returns once they are committed."""

    def __init__(
        self, session_factory: sessionmaker[Session], *, max_batch: int = MAX_BATCH_REQUESTS
    ) -> None:
        self._factory = session_factory
        self._max_batch = max_batch
        self._queue: list[_Request] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        # One thread: the batches of this process commit one after another, in arrival order.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blackbox-writer")
        self.batches_committed = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="blackbox-writer")

    async def record(self, drafts: Sequence[EventDraft]) -> None:
        """Durably append `drafts` (in order, consecutively in their tenant's chain)."""
        if not drafts:
            return
        if self._closing or self._loop is None or self._task is None or self._task.done():
            raise EventsNotRecorded("the BlackBox writer is not running")
        waiting: asyncio.Future[None]
        if asyncio.get_running_loop() is self._loop:
            waiting = self._loop.create_future()
            self._enqueue(_Request(tuple(drafts), waiting))
        else:  # e.g. a test client running its own loop: hand over thread-safely
            threadsafe: Future[None] = Future()
            self._loop.call_soon_threadsafe(self._enqueue, _Request(tuple(drafts), threadsafe))
            waiting = asyncio.wrap_future(threadsafe)
        # Shielded: a client that disconnects does not unrecord a fetch that happened, and the
        # writer, not the cancelled request, settles the future.
        await asyncio.shield(waiting)

    def _enqueue(self, request: _Request) -> None:
        if self._task is None or self._task.done():  # closed (or crashed) meanwhile
            request.done.set_exception(EventsNotRecorded("the BlackBox writer is not running"))
            return
        self._queue.append(request)
        self._arrived.set()

    async def aclose(self) -> None:
        """Commit what is queued, then stop (requests arriving after this are refused)."""
        self._closing = True
        self._arrived.set()
        if self._task is not None:
            await self._task
        self._thread.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    failures = await loop.run_in_executor(self._thread, self._commit, batch)
                except Exception as exc:  # a bug here must fail the batch, never hang it
                    logger.exception("the BlackBox writer failed a batch")
                    failures = [f"the BlackBox writer failed ({type(exc).__name__})"] * len(batch)
                for request, failure in zip(batch, failures, strict=True):
                    if request.done.done():
                        continue
                    if failure is None:
                        request.done.set_result(None)
                    else:
                        request.done.set_exception(EventsNotRecorded(failure))
            if self._closing:
                return

    def _commit(self, batch: list[_Request]) -> list[str | None]:
        """One transaction per tenant of the batch; per request, None or why it failed."""
        failures: list[str | None] = [None] * len(batch)
        by_tenant: dict[int, list[int]] = {}
        for index, request in enumerate(batch):
            tenants = {draft.tenant_id for draft in request.drafts}
            if len(tenants) == 1:
                by_tenant.setdefault(tenants.pop(), []).append(index)
            else:
                failures[index] = "one request's events must belong to exactly one tenant"
        for tenant_id, indexes in by_tenant.items():
            failure = self._append(tenant_id, [batch[index] for index in indexes])
            if failure is not None and len(indexes) > 1:
                # One request's bad event must not cost the others theirs: each on its own.
                for index in indexes:
                    failures[index] = self._append(tenant_id, [batch[index]])
            else:
                for index in indexes:
                    failures[index] = failure
        return failures

    def _append(self, tenant_id: int, requests: list[_Request]) -> str | None:
        drafts = [draft for request in requests for draft in request.drafts]
        try:
            with tenant_session(self._factory, tenant_id) as session:
                append_events(session, drafts)
                session.commit()
        except Exception as exc:  # the database failed: these requests get a clear 503
            logger.exception("the BlackBox could not commit %d events", len(drafts))
            return f"the BlackBox could not record the events ({type(exc).__name__})"
        self.batches_committed += 1
        return None
