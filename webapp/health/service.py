"""Asset health (DESIGN.md §15): what the scanner reads and stores, what the API and screens show.

The rules live in `webapp.health.model` (pure). This module gathers their inputs — one plot-mode
read of the last 24 h per signal, a 7-day baseline per signal kept for an hour, the active limits
and alarms — and keeps the outcome in `asset_ai_score`, a row whenever the score moves or every
15 minutes, so the table is the asset's health trend.

The scanner's reads are the deployment's own, like its alarm polls: they write no SENSOR event
(no person fetched anything); the stored rows are their record. A source that is down, or that
answers with synthetic fallback data, gives no reading: its asset drifts to `no_data`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from webapp.alarms import service as alarm_service
from webapp.alarms.models import AlarmLimit
from webapp.assets.models import Asset, AssetAIScore
from webapp.db import tenant_session, utcnow
from webapp.health.model import (
    MODEL_NAME,
    AssetHealthInput,
    Baseline,
    Component,
    Health,
    SignalHealthInput,
    assess,
    band_of,
    baseline,
    latest_good,
)
from webapp.integrations.service import SourceAccess
from webapp.series import QUALITY_GOOD, Series, datetime_to_ns
from webapp.tenancy.models import Tenant
from webapp.timeseries.service import (
    SeriesMode,
    Signal,
    SourceUnavailable,
    read_series,
    resolve_window,
    signals_by_asset,
)

logger = logging.getLogger(__name__)

HISTORY_WINDOW = timedelta(hours=24)
HISTORY_POINTS = 720  # a point per 2 minutes: plenty for a line through a day
BASELINE_WINDOW = timedelta(days=7)
BASELINE_POINTS = 2016  # a point per 5 minutes
BASELINE_MAX_AGE_SECONDS = 3600.0
# Baselines read again per pass beyond the missing ones, so the hourly refresh of a large plant
# is spread over passes instead of doubling one of them.
BASELINE_REFRESHES_PER_PASS = 100
STORE_AT_LEAST_EVERY = timedelta(minutes=15)
# Reads in flight at once; between batches the event loop serves everything else.
READ_BATCH = 64
# A steady score is stored again only every 15 minutes, so a newest row up to that old (and a
# few passes more) is still the current assessment; older, nobody is assessing the asset (no
# scanner leads) and it says nothing about now. §15's 10 minutes apply to the readings, in
# `assess`.
FRESH_FOR = STORE_AT_LEAST_EVERY + timedelta(minutes=5)
# The newest rows are looked for this far back: older ones are never current anyway.
NEWEST_ROW_WITHIN = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class AssetPlan:
    """One asset as the health pass needs it: plain values, no ORM."""

    asset_id: int
    asset_type: str
    machine_group: int | None
    foundation: str | None
    signals: tuple[Signal, ...]
    limits: dict[int, dict[str, float]]  # by mapping id: the active limits' thresholds by level
    alarm_priorities: tuple[str, ...]  # its active, unsuppressed alarms


@dataclass(frozen=True, slots=True)
class StoredScore:
    score: int | None
    computed_at: datetime


@dataclass
class HealthReport:
    tenants: int = 0
    assets: int = 0
    signals: int = 0
    baseline_reads: int = 0
    failed_reads: int = 0
    stored: int = 0
    failed_tenants: int = 0
    seconds: float = 0.0


# --- what one pass looks at (short database work) --------------------------------------------


def _active_thresholds(session: Session) -> dict[int, dict[str, float]]:
    limits: dict[int, dict[str, float]] = {}
    rows = session.execute(
        select(AlarmLimit.mapping_id, AlarmLimit.level, AlarmLimit.threshold).where(
            AlarmLimit.is_active.is_(True)
        )
    )
    for mapping_id, level, threshold in rows:
        limits.setdefault(mapping_id, {})[level] = threshold
    return limits


def _active_alarm_priorities(session: Session, now: datetime) -> dict[int, list[str]]:
    priorities: dict[int, list[str]] = {}
    active = alarm_service.list_alarms(
        session, state=alarm_service.StateFilter.active, limit=10_000, now=now
    )
    for alarm in active:
        values = alarm.as_dict()
        priorities.setdefault(values["asset_id"], []).append(values["priority"])
    return priorities


def health_plan(session: Session, now: datetime) -> list[AssetPlan]:
    """Every asset of the bound tenant with its signals, limits and active alarms."""
    signals = signals_by_asset(session)
    limits = _active_thresholds(session)
    priorities = _active_alarm_priorities(session, now)
    assets = session.execute(
        select(Asset.id, Asset.asset_type, Asset.machine_group, Asset.foundation).order_by(
            Asset.id
        )
    )
    return [
        AssetPlan(
            asset_id=row.id,
            asset_type=row.asset_type,
            machine_group=row.machine_group,
            foundation=row.foundation,
            signals=tuple(signals.get(row.id, ())),
            limits={
                signal.mapping_id: limits[signal.mapping_id]
                for signal in signals.get(row.id, ())
                if signal.mapping_id in limits
            },
            alarm_priorities=tuple(priorities.get(row.id, ())),
        )
        for row in assets
    ]


def _newest_rows(
    session: Session, asset_ids: Iterable[int] | None = None, *, now: datetime | None = None
) -> list[AssetAIScore]:
    """Each asset's newest row of the last day (bounded: the table keeps every day's trend)."""
    since = (now or utcnow()) - NEWEST_ROW_WITHIN
    newest = (
        select(func.max(AssetAIScore.id))
        .where(AssetAIScore.computed_at >= since)
        .group_by(AssetAIScore.asset_id)
    )
    if asset_ids is not None:
        newest = newest.where(AssetAIScore.asset_id.in_(list(asset_ids)))
    return list(session.scalars(select(AssetAIScore).where(AssetAIScore.id.in_(newest))))


def stored_scores(session: Session, now: datetime | None = None) -> dict[int, StoredScore]:
    """The newest stored health of each asset of the bound tenant."""
    return {
        row.asset_id: StoredScore(_stored_score(row.score), row.computed_at)
        for row in _newest_rows(session, now=now)
    }


def _stored_score(score: float | None) -> int | None:
    return None if score is None else round(score)


def should_store(previous: StoredScore | None, health: Health, now: datetime) -> bool:
    """§15: a row when the score moves by 1 or more (or to or from no data), else every 15
    minutes, so history is a trend and not a row a minute."""
    if previous is None or previous.score != health.score:
        return True  # scores are integers: any change is a move of 1 or more
    return now - previous.computed_at >= STORE_AT_LEAST_EVERY


def details_of(health: Health) -> dict[str, Any]:
    """What a stored row keeps: everything the API and the panel show, sentences aside (they
    are rendered in the reader's language)."""
    return {
        "model": health.model,
        "band": health.band,
        "zone": health.zone,
        "time_to_zone_c_hours": health.time_to_zone_c_hours,
        "components": [
            {"name": c.name, "penalty": c.penalty, "params": c.params} for c in health.components
        ],
    }


def store_health(
    session: Session, found: Sequence[tuple[int, Health]], now: datetime
) -> None:
    session.add_all(
        AssetAIScore(
            asset_id=asset_id, score=health.score, computed_at=now, details=details_of(health)
        )
        for asset_id, health in found
    )


# --- reading and assessing (async: connectors are network clients) ---------------------------


@dataclass(frozen=True, slots=True)
class SignalRead:
    history: Series  # good and bad points of the last 24 h, scaled
    latest: tuple[int, float] | None


def _baseline_key(signal: Signal) -> tuple[Any, ...]:
    return (*signal.source_key, signal.scaling_factor, signal.offset_value)


def _good_values(series: Series) -> np.ndarray:
    return series.values[series.quality == QUALITY_GOOD]


@dataclass
class HealthMonitor:
    """Computes and stores every asset's health; the scanner runs `run_pass` while it leads."""

    session_factory: sessionmaker[Session]
    sources: SourceAccess
    # (integration, tag, scale, offset) → (monotonic time read, its 7-day baseline)
    baselines: dict[tuple[Any, ...], tuple[float, Baseline | None]] = field(default_factory=dict)
    last_pass: HealthReport = field(default_factory=HealthReport)

    async def run_pass(self, now: datetime | None = None) -> HealthReport:
        started = time.perf_counter()
        now = now or utcnow()
        report = HealthReport()
        refresh_budget = [BASELINE_REFRESHES_PER_PASS]
        seen: set[tuple[Any, ...]] = set()
        for tenant_id in await asyncio.to_thread(self._tenant_ids):
            try:
                plans, stored = await asyncio.to_thread(self._read_plan, tenant_id, now)
                report.tenants += 1
                report.assets += len(plans)
                healths = await self._assess(plans, now, report, refresh_budget, seen)
                due = [
                    (asset_id, health)
                    for asset_id, health in healths
                    if should_store(stored.get(asset_id), health, now)
                ]
                if due:
                    await asyncio.to_thread(self._store, tenant_id, due, now)
                report.stored += len(due)
            except Exception:  # one tenant's failure must not cost the others their health
                logger.exception("health pass of tenant %s failed", tenant_id)
                report.failed_tenants += 1
        for key in set(self.baselines) - seen:
            del self.baselines[key]  # its mapping changed or went
        report.seconds = time.perf_counter() - started
        self.last_pass = report
        return report

    def _tenant_ids(self) -> list[int]:
        with tenant_session(self.session_factory, None) as session:
            return list(
                session.scalars(
                    select(Tenant.id).where(Tenant.is_active.is_(True)).order_by(Tenant.id)
                )
            )

    def _read_plan(
        self, tenant_id: int, now: datetime
    ) -> tuple[list[AssetPlan], dict[int, StoredScore]]:
        with tenant_session(self.session_factory, tenant_id) as session:
            return health_plan(session, now), stored_scores(session, now)

    def _store(self, tenant_id: int, found: list[tuple[int, Health]], now: datetime) -> None:
        with tenant_session(self.session_factory, tenant_id) as session:
            store_health(session, found, now)
            session.commit()

    async def _assess(
        self,
        plans: list[AssetPlan],
        now: datetime,
        report: HealthReport,
        refresh_budget: list[int],
        seen: set[tuple[Any, ...]],
    ) -> list[tuple[int, Health]]:
        signals = [signal for plan in plans for signal in plan.signals]
        report.signals += len(signals)
        reads = await self._in_batches(
            [self._read_history(signal, now) for signal in signals]
        )
        read_by_mapping = dict(zip((s.mapping_id for s in signals), reads, strict=True))
        report.failed_reads += sum(read is None for read in reads)

        wanted: dict[tuple[Any, ...], Signal] = {}
        for signal, read in zip(signals, reads, strict=True):
            key = _baseline_key(signal)
            seen.add(key)
            if read is None or key in wanted:
                continue  # a source that is down is not asked again for its baseline
            cached = self.baselines.get(key)
            if cached is None:
                wanted[key] = signal
            elif time.monotonic() - cached[0] >= BASELINE_MAX_AGE_SECONDS and refresh_budget[0]:
                refresh_budget[0] -= 1
                wanted[key] = signal
        baselines = await self._in_batches(
            [self._read_baseline(signal, now) for signal in wanted.values()]
        )
        report.baseline_reads += len(wanted)
        for key, found in zip(wanted, baselines, strict=True):
            if found is not None:
                self.baselines[key] = (time.monotonic(), found[0])

        now_ns = datetime_to_ns(now)
        healths = []
        for plan in plans:
            inputs = [
                self._signal_input(signal, read_by_mapping[signal.mapping_id], plan)
                for signal in plan.signals
            ]
            asset = AssetHealthInput(
                asset_type=plan.asset_type,
                machine_group=plan.machine_group,
                foundation=plan.foundation,
                signals=inputs,
                active_alarm_priorities=list(plan.alarm_priorities),
                now_ns=now_ns,
            )
            healths.append((plan.asset_id, assess(asset)))
        return healths

    def _signal_input(
        self, signal: Signal, read: SignalRead | None, plan: AssetPlan
    ) -> SignalHealthInput:
        cached = self.baselines.get(_baseline_key(signal))
        return SignalHealthInput(
            metric=signal.metric,
            unit=signal.unit,
            latest=None if read is None else read.latest,
            history=Series.empty() if read is None else read.history,
            baseline=None if cached is None else cached[1],
            limits=plan.limits.get(signal.mapping_id, {}),
        )

    @staticmethod
    async def _in_batches(calls: list[Any]) -> list[Any]:
        results: list[Any] = []
        for start in range(0, len(calls), READ_BATCH):
            results += await asyncio.gather(*calls[start : start + READ_BATCH])
            await asyncio.sleep(0)  # let streams and requests in between batches
        return results

    async def _read_window(
        self, signal: Signal, now: datetime, span: timedelta, points: int
    ) -> Series | None:
        window = resolve_window(
            from_time=now - span, to_time=now, limit=points, mode=SeriesMode.plot, now=now
        )
        try:
            read = await read_series(signal, window, self.sources)
        except SourceUnavailable as exc:
            logger.info("health: %s", exc)
            return None
        if read.source != "live":
            return None  # synthetic fallback data is no reading of the plant
        return read.series

    async def _read_history(self, signal: Signal, now: datetime) -> SignalRead | None:
        series = await self._read_window(signal, now, HISTORY_WINDOW, HISTORY_POINTS)
        if series is None:
            return None
        return SignalRead(series, latest_good(series, datetime_to_ns(now)))

    async def _read_baseline(self, signal: Signal, now: datetime) -> tuple[Baseline | None] | None:
        series = await self._read_window(signal, now, BASELINE_WINDOW, BASELINE_POINTS)
        return None if series is None else (baseline(_good_values(series)),)


# --- what the API and the screens show -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssetHealthView:
    asset_id: int
    score: int | None
    band: str
    zone: str | None
    computed_at: datetime | None
    model: str
    components: list[Component]
    time_to_zone_c_hours: float | None


def _view(asset_id: int, row: AssetAIScore | None, now: datetime) -> AssetHealthView:
    if row is None:
        return AssetHealthView(asset_id, None, "no_data", None, None, MODEL_NAME, [], None)
    details = row.details or {}
    computed_at = row.computed_at
    if now - computed_at > FRESH_FOR:
        # Nobody has assessed the asset lately (no scanner running): not a statement about now.
        return AssetHealthView(
            asset_id, None, "no_data", None, computed_at, details.get("model", MODEL_NAME), [],
            None,
        )
    score = _stored_score(row.score)
    return AssetHealthView(
        asset_id=asset_id,
        score=score,
        band=band_of(score),
        zone=details.get("zone"),
        computed_at=computed_at,
        model=details.get("model", MODEL_NAME),
        components=[
            Component(c["name"], c["penalty"], c.get("params", {}))
            for c in details.get("components", [])
        ],
        time_to_zone_c_hours=details.get("time_to_zone_c_hours"),
    )


def current_health(session: Session, asset_id: int, now: datetime | None = None) -> AssetHealthView:
    now = now or utcnow()
    rows = _newest_rows(session, [asset_id], now=now)
    return _view(asset_id, rows[0] if rows else None, now)


def current_health_by_asset(
    session: Session, now: datetime | None = None
) -> dict[int, AssetHealthView]:
    """Every asset's health now (the card grid and the twin asset list), in one query."""
    now = now or utcnow()
    return {
        row.asset_id: _view(row.asset_id, row, now) for row in _newest_rows(session, now=now)
    }


def health_history(
    session: Session, asset_id: int, *, hours: int, now: datetime | None = None
) -> list[tuple[datetime, int | None]]:
    """The stored scores of the last `hours`, oldest first (None: no data then)."""
    since = (now or utcnow()) - timedelta(hours=hours)
    rows = session.execute(
        select(AssetAIScore.computed_at, AssetAIScore.score)
        .where(AssetAIScore.asset_id == asset_id, AssetAIScore.computed_at >= since)
        .order_by(AssetAIScore.computed_at, AssetAIScore.id)
    )
    return [(computed_at, _stored_score(score)) for computed_at, score in rows]
