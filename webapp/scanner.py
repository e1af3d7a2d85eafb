"""The one background loop of a deployment that turns readings into alarms (DESIGN.md §14)
and assesses every asset's health (§15).

Every web process runs a Scanner, and exactly one of them leads: on PostgreSQL the one holding
a session advisory lock on a fixed key (its connection dying releases the lock, and another
process takes over at its next try); on SQLite the one process. Every `ALARM_SCAN_SECONDS` the
leader visits each active tenant with that tenant's scoped session (the §4 hook and RLS apply)
and evaluates every active limit against the readings that arrived since the last tick.

Readings come from the live hub: the scanner holds a feed per (integration, tag) open like a
viewer does, so one poll per tick serves viewers and alarms alike, watched or not. A source
that is down, or answers with synthetic fallback data, changes no alarm state. Evaluation state
(the running delays) lives in memory, and restarts with the process; whether an alarm is active
is always read back from the database, so a restart or a failover opens no duplicate.

Every `HEALTH_INTERVAL_SECONDS` the leader also starts a health pass (webapp.health.service)
beside the alarm ticks, never two at once: a slow source delays health, not alarms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from webapp.alarms import service as alarms
from webapp.alarms.evaluation import LimitState, Reading, Transition, evaluate_all
from webapp.db import tenant_session, utcnow
from webapp.health.service import HealthMonitor
from webapp.live.buffer import Feed
from webapp.live.hub import LiveHub
from webapp.series import QUALITY_BAD, datetime_to_ns, ns_to_datetime
from webapp.tenancy.models import Tenant
from webapp.timeseries.service import Signal, scale_series

logger = logging.getLogger(__name__)

# pg_try_advisory_lock(namespace, key): b"SCAN", 1. Never change it while processes of two
# versions may run side by side.
LEADER_LOCK = (0x5343414E, 1)
# The limits (and their signals) are read again at least this often; at once after this
# process changed one, or after the scanner moved an alarm. An edit in another process of the
# deployment reaches the scanner within this time.
PLAN_SECONDS = 10.0


class Leadership:
    """Who scans. PostgreSQL: a session-level advisory lock held on a connection of its own for
    as long as this process leads; SQLite serves one process, which always leads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Connection | None = None
        # hold() runs in a worker thread that a shutdown cannot cancel: release() waits for it,
        # and a hold() that comes after it finds leadership given up for good.
        self._lock = threading.Lock()
        self._released = False

    @property
    def shared(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def hold(self) -> bool:
        """Lead if possible and still lead if leading (blocking: call it from a thread)."""
        if not self.shared:
            return True
        with self._lock:
            return not self._released and self._hold()

    def _hold(self) -> bool:
        try:
            if self._connection is None:
                connection = self.engine.connect()
                acquired = connection.execute(
                    text("SELECT pg_try_advisory_lock(:namespace, :key)"),
                    {"namespace": LEADER_LOCK[0], "key": LEADER_LOCK[1]},
                ).scalar_one()
                connection.commit()  # the lock is the session's, not the transaction's
                if not acquired:
                    connection.close()
                    return False
                self._connection = connection
                logger.info("this process now runs the alarm scanner")
                return True
            self._connection.execute(text("SELECT 1"))  # a dead link means the lock is gone
            self._connection.commit()
            return True
        except DBAPIError:
            logger.warning("alarm scanner leadership lost", exc_info=True)
            self._drop()
            return False

    def release(self) -> None:
        with self._lock:
            self._released = True
            self._release()

    def _release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(DBAPIError):
                self._connection.execute(
                    text("SELECT pg_advisory_unlock(:namespace, :key)"),
                    {"namespace": LEADER_LOCK[0], "key": LEADER_LOCK[1]},
                )
                self._connection.commit()
            self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.invalidate()  # never back to the pool: its session held the lock
                connection.close()


Finding = tuple[int, Transition, float, datetime]


@dataclass
class TickReport:
    tenants: int = 0
    limits: int = 0
    transitions: int = 0
    seconds: float = 0.0
    led: bool = False


@dataclass
class Scanner:
    session_factory: sessionmaker[Session]
    hub: LiveHub
    interval: float
    leadership: Leadership
    states: dict[int, LimitState] = field(default_factory=dict)  # by limit id
    feeds: dict[tuple[int, str], Feed] = field(default_factory=dict)
    memos: dict[int, alarms.ScanMemo] = field(default_factory=dict)  # by tenant
    _plan: dict[int, list[alarms.ScanTarget]] | None = None  # by tenant
    _plan_read_at: float = 0.0
    last_tick: TickReport = field(default_factory=TickReport)
    ticks: int = 0  # completed while leading
    health: HealthMonitor | None = None
    health_interval: float = 60.0
    health_passes: int = 0  # completed while leading
    _task: asyncio.Task[None] | None = None
    _health_task: asyncio.Task[None] | None = None
    _health_due: float = 0.0  # monotonic

    def start(self) -> None:
        # The first health pass one interval after start: what the last process stored stays
        # current for 10 minutes, and a test's app never assesses behind its back.
        self._health_due = time.monotonic() + self.health_interval
        self._task = asyncio.create_task(self._run())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._stop_health()
        self._let_go_of_feeds(set(self.feeds))
        await asyncio.to_thread(self.leadership.release)

    async def _run(self) -> None:
        next_tick = time.monotonic()
        while True:
            try:
                if await asyncio.to_thread(self.leadership.hold):
                    await self.tick()
                    self._start_health_pass()
                else:
                    self._follow()
            except Exception:  # one bad tick must not stop alarm evaluation for good
                logger.exception("alarm scanner tick failed")
            next_tick += self.interval
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            next_tick = max(next_tick, time.monotonic())

    def _follow(self) -> None:
        """Not leading: hold no feeds and forget delays (the leader keeps its own)."""
        self._let_go_of_feeds(set(self.feeds))
        self.states.clear()
        self._plan = None
        if self._health_task is not None:
            self._health_task.cancel()  # the new leader assesses from now on

    def _start_health_pass(self) -> None:
        if self.health is None or time.monotonic() < self._health_due:
            return
        if self._health_task is not None and not self._health_task.done():
            return  # the last pass is still reading: no second one beside it
        self._health_due = time.monotonic() + self.health_interval
        self._health_task = asyncio.create_task(self._health_pass(self.health))

    async def _health_pass(self, monitor: HealthMonitor) -> None:
        try:
            await monitor.run_pass()
            self.health_passes += 1
        except Exception:  # one bad pass must not stop the next
            logger.exception("asset health pass failed")

    async def _stop_health(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task

    def invalidate(self) -> None:
        """Limits, mappings or integrations changed in this process: read them on the next
        tick instead of after PLAN_SECONDS."""
        self._plan = None

    async def tick(self, now: datetime | None = None) -> TickReport:
        """One pass over every tenant; returns what it did (for tests and the benchmark)."""
        started = time.perf_counter()
        now = now or utcnow()
        if self._plan is None or time.monotonic() - self._plan_read_at >= PLAN_SECONDS:
            self._plan = await asyncio.to_thread(self._targets)
            self._plan_read_at = time.monotonic()
            self._hold_feeds({target.signal.source_key: target.signal
                              for targets in self._plan.values() for target in targets})
            scanned = {target.limit_id for ts in self._plan.values() for target in ts}
            self.states = {key: state for key, state in self.states.items() if key in scanned}
        plan = self._plan
        report = TickReport(tenants=len(plan), led=True)
        for tenant_id, targets in plan.items():
            report.limits += len(targets)
            found = self._evaluate(targets)
            due = any(t.shelved_until is not None and t.shelved_until <= now for t in targets)
            if found or due:
                report.transitions += len(found)
                await asyncio.to_thread(self._apply, tenant_id, found, now)
                self._plan = None  # its alarms changed state: read them back next tick
        report.seconds = time.perf_counter() - started
        self.last_tick = report
        self.ticks += 1
        return report

    def _targets(self) -> dict[int, list[alarms.ScanTarget]]:
        with tenant_session(self.session_factory, None) as session:
            tenant_ids = session.scalars(
                select(Tenant.id).where(Tenant.is_active.is_(True)).order_by(Tenant.id)
            ).all()
        plan: dict[int, list[alarms.ScanTarget]] = {}
        for tenant_id in tenant_ids:
            with tenant_session(self.session_factory, tenant_id) as session:
                targets = alarms.scan_targets(session, self.memos.setdefault(tenant_id, {}))
            if targets:
                plan[tenant_id] = targets
        return plan

    def _evaluate(self, targets: Iterable[alarms.ScanTarget]) -> list[Finding]:
        found: list[Finding] = []
        for target in targets:
            state = self.states.get(target.limit_id, LimitState())
            if state.active != target.active:
                # The database knows best (a restart, a failover, a deactivation): keep no
                # delay that was running for the other side.
                state = LimitState(target.active, None, state.last_reading)
            readings = self._readings(target, state)
            state, transitions = evaluate_all(target.rule, state, readings)
            self.states[target.limit_id] = state
            found.extend(
                (target.limit_id, transition, float(reading.value or 0.0), reading.timestamp)
                for reading, transition in transitions
            )
        found.sort(key=lambda finding: finding[3])
        return found

    def _readings(self, target: alarms.ScanTarget, state: LimitState) -> list[Reading]:
        feed = self.feeds.get(target.signal.source_key)
        if feed is None or feed.error is not None or feed.source != "live":
            return []  # down, or synthetic fallback: no alarm state changes
        if state.last_reading is None:
            batch = feed.points_after(None).tail(1)  # a new limit starts from now
        else:
            batch = feed.points_after(datetime_to_ns(state.last_reading))
        batch = scale_series(batch, target.signal)
        return [
            Reading(ns_to_datetime(ns), value, good=quality != QUALITY_BAD)
            for ns, value, quality in zip(
                batch.timestamps.tolist(), batch.values.tolist(), batch.quality.tolist(),
                strict=True,
            )
        ]

    def _apply(self, tenant_id: int, found: list[Finding], now: datetime) -> None:
        with tenant_session(self.session_factory, tenant_id) as session:
            try:
                alarms.apply_transitions(session, found)
                alarms.expire_shelves(session, now)
                session.commit()
            except IntegrityError:
                # Another scanner got there first (a failover in flight): read it back next tick.
                session.rollback()
                logger.warning("alarm transitions of tenant %s raced another scanner", tenant_id)
                for limit_id, *_ in found:
                    self.states.pop(limit_id, None)

    def _hold_feeds(self, wanted: dict[tuple[int, str], Signal]) -> None:
        for key, signal in wanted.items():
            if key not in self.feeds or self.feeds[key].closed:
                self.feeds[key] = self.hub.attach(signal)
        self._let_go_of_feeds(set(self.feeds) - set(wanted))

    def _let_go_of_feeds(self, keys: set[tuple[int, str]]) -> None:
        for key in keys:
            self.hub.detach(self.feeds.pop(key))
