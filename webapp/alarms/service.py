"""Alarm limits and the lifecycle of their occurrences (DESIGN.md §14, ANSI/ISA-18.2).

An occurrence is a BlackBox incident. Its state follows from the incident's columns:
- unack_active: status open, not cleared;   - ack_active: status acknowledged;
- rtn_unack: status open, cleared_at set;   - closed: status closed.
Every transition writes one ALARM BlackBox event (two when it also closes the occurrence), so
the hash-chained event log is the alarm history and the incident only its current summary.
A limit that is shelved or out of service suppresses its occurrences: they still open, clear
and close, but leave the active list, the banner and the cards.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.alarms import kpis
from webapp.alarms.evaluation import Level, LimitRule, Transition, ordering_problem
from webapp.alarms.models import AlarmLimit
from webapp.alarms.schemas import LimitCreate, LimitUpdate
from webapp.assets.models import Asset
from webapp.blackbox.audit import AuditedObject, ConfigAction, changes_between, record_config_change
from webapp.blackbox.models import BlackBoxEvent, BlackBoxIncident
from webapp.blackbox.service import record_event
from webapp.db import utcnow
from webapp.integrations.models import ExternalSignalMapping, TenantIntegration
from webapp.timeseries.service import Signal
from webapp.twin.presenters import METRIC_LABELS

ALARMS_SOURCE = "OPTRIA_ALARMS"
ALARM_CATEGORY = "ALARM"
SEVERITY_BY_PRIORITY = {"high": "CRITICAL", "medium": "WARNING", "low": "INFO"}
PRIORITY_RANK = {"high": 0, "medium": 1, "low": 2}
LEVEL_WORDS = {"hihi": "high-high", "hi": "high", "lo": "low", "lolo": "low-low"}


class NotFound(Exception):
    """Missing, or another tenant's (indistinguishable)."""


class Conflict(Exception):
    """The request does not fit the current state (already acknowledged, duplicate level)."""


class InvalidLimit(ValueError):
    """A limit that breaks the rules of §14 (e.g. lolo < lo < hi < hihi); `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class AlarmStateName(enum.StrEnum):
    unack_active = "unack_active"
    ack_active = "ack_active"
    rtn_unack = "rtn_unack"
    closed = "closed"


class StateFilter(enum.StrEnum):
    active = "active"
    unacknowledged = "unacknowledged"
    suppressed = "suppressed"
    closed = "closed"
    all = "all"


def state_of(incident: BlackBoxIncident) -> AlarmStateName:
    if incident.status == "closed":
        return AlarmStateName.closed
    if incident.status == "acknowledged":
        return AlarmStateName.ack_active
    if incident.cleared_at is not None:
        return AlarmStateName.rtn_unack
    return AlarmStateName.unack_active


def suppression_of(limit: AlarmLimit, now: datetime) -> str | None:
    """Follows the limit's current state (an occurrence is suppressed while its limit is)."""
    if limit.out_of_service:
        return "out_of_service"
    if limit.shelved_until is not None and limit.shelved_until > now:
        return "shelved"
    return None


def _suppressed(now: datetime) -> Any:
    """suppression_of as SQL."""
    return or_(
        AlarmLimit.out_of_service.is_(True),
        and_(AlarmLimit.shelved_until.is_not(None), AlarmLimit.shelved_until > now),
    )


# --- limits --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitView:
    """A limit with what an operator needs to read it: its signal and asset."""

    limit: AlarmLimit
    mapping: ExternalSignalMapping
    asset: Asset


def _limit_views(session: Session, statement: Select[Any]) -> list[LimitView]:
    rows = session.execute(statement)
    return [LimitView(limit, mapping, asset) for limit, mapping, asset in rows]


def _limits_query() -> Select[Any]:
    return (
        select(AlarmLimit, ExternalSignalMapping, Asset)
        .join(ExternalSignalMapping, ExternalSignalMapping.id == AlarmLimit.mapping_id)
        .join(Asset, Asset.id == ExternalSignalMapping.asset_id)
        .order_by(AlarmLimit.id)
    )


def list_limits(
    session: Session, *, asset_id: int | None = None, mapping_id: int | None = None
) -> list[LimitView]:
    statement = _limits_query()
    if asset_id is not None:
        statement = statement.where(ExternalSignalMapping.asset_id == asset_id)
    if mapping_id is not None:
        statement = statement.where(AlarmLimit.mapping_id == mapping_id)
    return _limit_views(session, statement)


def get_limit(session: Session, limit_id: int) -> LimitView:
    views = _limit_views(session, _limits_query().where(AlarmLimit.id == limit_id))
    if not views:
        raise NotFound(f"Alarm limit {limit_id} not found")
    return views[0]


def _check_ordering(session: Session, limit: AlarmLimit) -> None:
    """lolo < lo < hi < hihi among the mapping's active limits, this one as it is now."""
    others = session.scalars(
        select(AlarmLimit).where(
            AlarmLimit.mapping_id == limit.mapping_id,
            AlarmLimit.is_active.is_(True),
            AlarmLimit.level != limit.level,
        )
    ).all()
    thresholds = {Level(other.level): other.threshold for other in others}
    if limit.is_active:
        thresholds[Level(limit.level)] = limit.threshold
    problem = ordering_problem(thresholds)
    if problem:
        raise InvalidLimit("threshold", problem)


_AUDITED_LIMIT_FIELDS = (
    "mapping_id", "level", "threshold", "deadband", "on_delay_seconds", "off_delay_seconds",
    "priority", "is_active", "out_of_service",
)


def _limit_fields(limit: AlarmLimit) -> dict[str, Any]:
    return {name: getattr(limit, name) for name in _AUDITED_LIMIT_FIELDS}


def create_limit(session: Session, data: LimitCreate, *, actor_id: int | None) -> LimitView:
    mapping = session.scalar(
        select(ExternalSignalMapping).where(ExternalSignalMapping.id == data.mapping_id)
    )
    if mapping is None:
        raise NotFound(f"Mapping {data.mapping_id} not found")
    limit = AlarmLimit(**data.model_dump())
    session.add(limit)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            f"Mapping {data.mapping_id} already has a {data.level} limit; PATCH it instead"
        ) from None
    _check_ordering(session, limit)
    record_config_change(
        session, tenant_id=limit.tenant_id, actor_id=actor_id, obj=AuditedObject.alarm_limit,
        object_id=limit.id, action=ConfigAction.created, asset_id=mapping.asset_id,
        changes=changes_between({}, _limit_fields(limit)),
    )
    session.commit()
    return get_limit(session, limit.id)


def update_limit(
    session: Session, limit_id: int, data: LimitUpdate, *, actor_id: int, now: datetime
) -> LimitView:
    """PATCH a limit. Deactivating closes its open occurrence; taking it out of (or back into)
    service is an ALARM event of its own, besides the CONFIG record of the change."""
    view = get_limit(session, limit_id)
    limit = view.limit
    before = _limit_fields(limit)
    for name, value in data.model_dump(exclude_unset=True).items():
        setattr(limit, name, value)
    _check_ordering(session, limit)
    changes = changes_between(before, _limit_fields(limit))
    if not changes:
        return view
    record_config_change(
        session, tenant_id=limit.tenant_id, actor_id=actor_id, obj=AuditedObject.alarm_limit,
        object_id=limit.id, action=ConfigAction.updated, asset_id=view.mapping.asset_id,
        changes=changes,
    )
    occurrence = open_occurrence(session, limit.id)
    if "out_of_service" in changes:
        _record(
            session, view, occurrence,
            "OUT_OF_SERVICE" if limit.out_of_service else "IN_SERVICE",
            value=None, user_id=actor_id, at=now,
        )
    if "is_active" in changes and not limit.is_active and occurrence is not None:
        _close(session, view, occurrence, user_id=actor_id, at=now)
    session.commit()
    return get_limit(session, limit.id)


def shelve(
    session: Session, limit_id: int, *, minutes: int, reason: str, actor_id: int, now: datetime
) -> LimitView:
    view = get_limit(session, limit_id)
    view.limit.shelved_until = now + timedelta(minutes=minutes)
    view.limit.shelve_reason = reason
    _record(
        session, view, open_occurrence(session, limit_id), "SHELVED", value=None,
        user_id=actor_id, at=now, extra={"until": view.limit.shelved_until.isoformat(),
                                         "reason": reason},
    )
    session.commit()
    return view


def unshelve(session: Session, limit_id: int, *, actor_id: int | None, now: datetime) -> LimitView:
    view = get_limit(session, limit_id)
    if view.limit.shelved_until is None:
        raise Conflict(f"Alarm limit {limit_id} is not shelved")
    _unshelve(session, view, actor_id=actor_id, now=now)
    session.commit()
    return view


def _unshelve(session: Session, view: LimitView, *, actor_id: int | None, now: datetime) -> None:
    view.limit.shelved_until = None
    view.limit.shelve_reason = None
    _record(session, view, open_occurrence(session, view.limit.id), "UNSHELVED", value=None,
            user_id=actor_id, at=now)


def expire_shelves(session: Session, now: datetime) -> int:
    """Shelving ends by itself at shelved_until (the caller commits); how many ended."""
    expired = _limit_views(
        session,
        _limits_query().where(
            AlarmLimit.shelved_until.is_not(None), AlarmLimit.shelved_until <= now
        ),
    )
    for view in expired:
        _unshelve(session, view, actor_id=None, now=now)
    return len(expired)


# --- what the scanner evaluates --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanTarget:
    """An active limit on an active signal, as the scanner needs it: plain values, no ORM."""

    limit_id: int
    rule: LimitRule
    signal: Signal
    shelved_until: datetime | None
    active: bool  # its occurrence is in alarm (unack_active or ack_active)


_SCAN_INTEGRATIONS = select(
    TenantIntegration.id, TenantIntegration.type, TenantIntegration.config
).where(TenantIntegration.is_active.is_(True))
# Built once: the scanner runs it every tick for every tenant (the tenant criteria are added at
# execution by the scoping hook, so one statement serves them all).
_SCAN_LIMITS = (
    select(
        AlarmLimit.id, AlarmLimit.level, AlarmLimit.threshold, AlarmLimit.deadband,
        AlarmLimit.on_delay_seconds, AlarmLimit.off_delay_seconds, AlarmLimit.shelved_until,
        AlarmLimit.tenant_id, ExternalSignalMapping.id.label("mapping_id"),
        ExternalSignalMapping.asset_id, ExternalSignalMapping.internal_metric_name,
        ExternalSignalMapping.unit, ExternalSignalMapping.external_tag,
        ExternalSignalMapping.scaling_factor, ExternalSignalMapping.offset_value,
        ExternalSignalMapping.integration_id, BlackBoxIncident.status,
        BlackBoxIncident.cleared_at,
    )
    .join(ExternalSignalMapping, ExternalSignalMapping.id == AlarmLimit.mapping_id)
    .outerjoin(
        BlackBoxIncident,
        and_(
            BlackBoxIncident.alarm_limit_id == AlarmLimit.id,
            BlackBoxIncident.closed_at.is_(None),
        ),
    )
    .where(AlarmLimit.is_active.is_(True), ExternalSignalMapping.is_active.is_(True))
    .order_by(AlarmLimit.id)
)

ScanMemo = dict[tuple[Any, ...], ScanTarget]


def scan_targets(session: Session, memo: ScanMemo | None = None) -> list[ScanTarget]:
    """The bound tenant's limits to evaluate (every tick, for every tenant), in two queries.
    `memo` holds the last call's targets by their rows: what did not change is not rebuilt."""
    integrations = {
        row.id: (row, json.dumps(row.config, sort_keys=True))
        for row in session.execute(_SCAN_INTEGRATIONS)
    }
    built: ScanMemo = {}
    targets = []
    for row in session.execute(_SCAN_LIMITS):
        found = integrations.get(row.integration_id)
        if found is None:
            continue  # its integration is switched off
        integration, config_text = found
        key = (*row, config_text)
        target = built.get(key) or (memo or {}).get(key) or _scan_target(row, integration)
        built[key] = target
        targets.append(target)
    if memo is not None:
        memo.clear()
        memo.update(built)
    return targets


def _scan_target(row: Any, integration: Any) -> ScanTarget:
    return ScanTarget(
        limit_id=row.id,
        rule=LimitRule(
            Level(row.level), row.threshold, row.deadband, row.on_delay_seconds,
            row.off_delay_seconds,
        ),
        signal=Signal(
            tenant_id=row.tenant_id, asset_id=row.asset_id, mapping_id=row.mapping_id,
            metric=row.internal_metric_name, unit=row.unit, external_tag=row.external_tag,
            scaling_factor=row.scaling_factor, offset_value=row.offset_value,
            integration_id=integration.id, integration_type=integration.type,
            integration_config=integration.config,
        ),
        shelved_until=row.shelved_until,
        active=row.status is not None and row.cleared_at is None,
    )


def apply_transitions(
    session: Session, found: list[tuple[int, Transition, float, datetime]]
) -> None:
    """The scanner's findings for the bound tenant, (limit id, transition, value, at) in time
    order, applied in the caller's transaction."""
    for limit_id, transition, value, at in found:
        view = get_limit(session, limit_id)
        apply_transition(
            session, view, open_occurrence(session, limit_id), transition, value=value, at=at
        )


# --- occurrences ---------------------------------------------------------------------------


def open_occurrence(session: Session, limit_id: int) -> BlackBoxIncident | None:
    """The limit's one occurrence that is not closed (the partial unique index), if any."""
    return session.scalar(
        select(BlackBoxIncident).where(
            BlackBoxIncident.alarm_limit_id == limit_id, BlackBoxIncident.closed_at.is_(None)
        )
    )


def open_occurrences(session: Session) -> dict[int, BlackBoxIncident]:
    """Every not-closed occurrence of the bound tenant, by limit id (the scanner's restart)."""
    rows = session.scalars(
        select(BlackBoxIncident).where(
            BlackBoxIncident.alarm_limit_id.is_not(None), BlackBoxIncident.closed_at.is_(None)
        )
    )
    return {row.alarm_limit_id: row for row in rows if row.alarm_limit_id is not None}


def describe(view: LimitView, value: float | None = None) -> str:
    """e.g. "P-101 Vibration RMS high (4.9 mm/s ≥ 4.5)" — an occurrence's title (English, as
    stored; screens rebuild it in the viewer's language)."""
    limit, mapping = view.limit, view.mapping
    metric = METRIC_LABELS.get(mapping.internal_metric_name) or mapping.internal_metric_name
    text = f"{view.asset.code} {metric} {LEVEL_WORDS[limit.level]}"
    if value is None:
        return text
    unit = f" {mapping.unit}" if mapping.unit else ""
    sign = "≥" if Level(limit.level).is_high else "≤"
    return f"{text} ({value:.4g}{unit} {sign} {limit.threshold:g})"


def _record(
    session: Session,
    view: LimitView,
    occurrence: BlackBoxIncident | None,
    source_type: str,
    *,
    value: float | None,
    user_id: int | None,
    at: datetime,
    extra: dict[str, Any] | None = None,
) -> BlackBoxEvent:
    """One ALARM event; an occurrence it belongs to keeps count of its events."""
    limit, mapping = view.limit, view.mapping
    priority = occurrence.priority if occurrence is not None and occurrence.priority else (
        limit.priority
    )
    event = record_event(
        session,
        tenant_id=limit.tenant_id,
        asset_id=mapping.asset_id,
        source_system=ALARMS_SOURCE,
        source_type=source_type,
        event_category=ALARM_CATEGORY,
        severity=SEVERITY_BY_PRIORITY[priority],
        summary=f"{source_type.replace('_', ' ').capitalize()}: {describe(view, value)}",
        payload={
            "alarm_id": None if occurrence is None else occurrence.id,
            "limit_id": limit.id,
            "metric": mapping.internal_metric_name,
            "level": limit.level,
            "priority": priority,
            "threshold": limit.threshold,
            "value": value,
            "user_id": user_id,
            **(extra or {}),
        },
        event_time=at,
    )
    if occurrence is not None:
        session.flush()  # the event's id, for the incident's links
        if occurrence.first_event_id is None:
            occurrence.first_event_id = event.id
        occurrence.last_event_id = event.id
        occurrence.event_count = (occurrence.event_count or 0) + 1
    return event


def apply_transition(
    session: Session,
    view: LimitView,
    occurrence: BlackBoxIncident | None,
    transition: Transition,
    *,
    value: float,
    at: datetime,
) -> BlackBoxIncident | None:
    """What the scanner's evaluation found, applied to the occurrence (the caller commits).
    Returns the limit's not-closed occurrence afterwards, if any."""
    if transition is Transition.activated:
        if occurrence is None:
            occurrence = BlackBoxIncident(
                asset_id=view.mapping.asset_id,
                title=describe(view, value)[:300],
                severity=SEVERITY_BY_PRIORITY[view.limit.priority],
                status="open",
                opened_at=at,
                alarm_limit_id=view.limit.id,
                priority=view.limit.priority,
                trigger_value=value,
                event_count=0,
            )
            session.add(occurrence)
            session.flush()
        elif state_of(occurrence) is AlarmStateName.rtn_unack:
            occurrence.cleared_at = None  # the condition is back: the same occurrence again
        else:
            return occurrence  # already active: nothing happened
        _record(session, view, occurrence, "ACTIVATED", value=value, user_id=None, at=at)
        return occurrence
    if occurrence is None or state_of(occurrence) in (
        AlarmStateName.rtn_unack, AlarmStateName.closed
    ):
        return occurrence
    occurrence.cleared_at = at
    _record(session, view, occurrence, "CLEARED", value=value, user_id=None, at=at)
    if state_of(occurrence) is AlarmStateName.ack_active:
        _close(session, view, occurrence, user_id=None, at=at)
        return None
    return occurrence


def _close(
    session: Session, view: LimitView, occurrence: BlackBoxIncident, *, user_id: int | None,
    at: datetime,
) -> None:
    occurrence.status = "closed"
    occurrence.closed_at = at
    _record(session, view, occurrence, "CLOSED", value=None, user_id=user_id, at=at)


def acknowledge(
    session: Session, alarm_id: int, *, actor_id: int, comment: str | None, now: datetime
) -> AlarmView:
    """unack_active → ack_active; rtn_unack → closed. Anything else is a 409."""
    alarm = get_alarm(session, alarm_id, now=now)
    occurrence, view = alarm.occurrence, alarm.view
    state = state_of(occurrence)
    if state not in (AlarmStateName.unack_active, AlarmStateName.rtn_unack):
        raise Conflict(f"Alarm {alarm_id} is {state.value}: there is nothing to acknowledge")
    occurrence.status = "acknowledged"
    occurrence.acknowledged_at = now
    occurrence.acknowledged_by = actor_id
    _record(session, view, occurrence, "ACKNOWLEDGED", value=None, user_id=actor_id, at=now,
            extra={"comment": comment} if comment else None)
    if state is AlarmStateName.rtn_unack:
        _close(session, view, occurrence, user_id=actor_id, at=now)
    session.commit()
    return get_alarm(session, alarm_id, now=now)


# --- reading alarms ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlarmView:
    occurrence: BlackBoxIncident
    view: LimitView
    state: AlarmStateName
    suppressed: str | None

    def as_dict(self) -> dict[str, Any]:
        occurrence, limit = self.occurrence, self.view.limit
        return {
            "id": occurrence.id,
            "limit_id": limit.id,
            "asset_id": self.view.asset.id,
            "asset_code": self.view.asset.code,
            "metric": self.view.mapping.internal_metric_name,
            "level": limit.level,
            "priority": occurrence.priority or limit.priority,
            "state": self.state.value,
            "suppressed": self.suppressed,
            "threshold": limit.threshold,
            "trigger_value": occurrence.trigger_value,
            "activated_at": occurrence.opened_at,
            "acknowledged_at": occurrence.acknowledged_at,
            "acknowledged_by": occurrence.acknowledged_by,
            "cleared_at": occurrence.cleared_at,
            "closed_at": occurrence.closed_at,
        }


def _alarms_query() -> Select[Any]:
    return (
        select(BlackBoxIncident, AlarmLimit, ExternalSignalMapping, Asset)
        .join(AlarmLimit, AlarmLimit.id == BlackBoxIncident.alarm_limit_id)
        .join(ExternalSignalMapping, ExternalSignalMapping.id == AlarmLimit.mapping_id)
        .join(Asset, Asset.id == ExternalSignalMapping.asset_id)
    )


def _alarm_views(session: Session, statement: Select[Any], now: datetime) -> list[AlarmView]:
    return [
        AlarmView(
            occurrence, LimitView(limit, mapping, asset), state_of(occurrence),
            suppression_of(limit, now),
        )
        for occurrence, limit, mapping, asset in session.execute(statement)
    ]


def alarms_by_id(session: Session, ids: set[int], *, now: datetime) -> dict[int, AlarmView]:
    if not ids:
        return {}
    statement = _alarms_query().where(BlackBoxIncident.id.in_(ids))
    return {alarm.occurrence.id: alarm for alarm in _alarm_views(session, statement, now)}


def get_alarm(session: Session, alarm_id: int, *, now: datetime) -> AlarmView:
    found = alarms_by_id(session, {alarm_id}, now=now)
    if alarm_id not in found:
        raise NotFound(f"Alarm {alarm_id} not found")
    return found[alarm_id]


def list_alarms(
    session: Session,
    *,
    state: StateFilter = StateFilter.active,
    asset_id: int | None = None,
    priority: str | None = None,
    limit: int = 100,
    now: datetime | None = None,
) -> list[AlarmView]:
    """Highest priority first, then the newest activation (§14)."""
    now = now or utcnow()
    statement = _alarms_query()
    not_closed = BlackBoxIncident.closed_at.is_(None)
    if state is StateFilter.active:
        statement = statement.where(not_closed, ~_suppressed(now))
    elif state is StateFilter.unacknowledged:
        statement = statement.where(
            not_closed, BlackBoxIncident.status == "open", ~_suppressed(now)
        )
    elif state is StateFilter.suppressed:
        statement = statement.where(not_closed, _suppressed(now))
    elif state is StateFilter.closed:
        statement = statement.where(~not_closed)
    if asset_id is not None:
        statement = statement.where(ExternalSignalMapping.asset_id == asset_id)
    if priority is not None:
        statement = statement.where(BlackBoxIncident.priority == priority)
    rank = case(PRIORITY_RANK, value=BlackBoxIncident.priority, else_=len(PRIORITY_RANK))
    statement = statement.order_by(
        rank, BlackBoxIncident.opened_at.desc(), BlackBoxIncident.id.desc()
    ).limit(limit)
    return _alarm_views(session, statement, now)


def active_priority_by_asset(session: Session, now: datetime | None = None) -> dict[int, str]:
    """Each asset's highest active, unsuppressed alarm priority (the cards' indication)."""
    highest: dict[int, str] = {}
    for alarm in list_alarms(session, state=StateFilter.active, limit=10_000, now=now):
        asset_id, priority = alarm.view.asset.id, alarm.as_dict()["priority"]
        if asset_id not in highest or PRIORITY_RANK[priority] < PRIORITY_RANK[highest[asset_id]]:
            highest[asset_id] = priority
    return highest


def banner_counts(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Active, unsuppressed alarms per priority (the banner on every page)."""
    now = now or utcnow()
    rows = session.execute(
        select(BlackBoxIncident.priority, func.count())
        .join(AlarmLimit, AlarmLimit.id == BlackBoxIncident.alarm_limit_id)
        .where(BlackBoxIncident.closed_at.is_(None), ~_suppressed(now))
        .group_by(BlackBoxIncident.priority)
    ).all()
    counts = {priority: 0 for priority in PRIORITY_RANK}
    counts.update({priority: count for priority, count in rows if priority in counts})
    return counts


def alarm_kpis(session: Session, *, hours: int, now: datetime | None = None) -> dict[str, Any]:
    """EEMUA 191 / ISA-18.2 figures over the last `hours` (§14), from the ALARM events."""
    now = now or utcnow()
    start = now - timedelta(hours=hours)
    rows = session.execute(
        select(BlackBoxEvent.payload, BlackBoxEvent.event_time).where(
            BlackBoxEvent.event_category == ALARM_CATEGORY,
            BlackBoxEvent.source_type == "ACTIVATED",
            BlackBoxEvent.event_time >= start,
            BlackBoxEvent.event_time <= now,
        )
    ).all()
    activations = [
        kpis.Activation(int(payload["limit_id"]), at)
        for payload, at in rows
        if isinstance(payload, dict) and payload.get("limit_id") is not None
    ]
    found = kpis.figures(activations, start, now + timedelta(microseconds=1))
    standing = session.scalar(
        select(func.count())
        .select_from(BlackBoxIncident)
        .where(
            BlackBoxIncident.alarm_limit_id.is_not(None),
            BlackBoxIncident.closed_at.is_(None),
            BlackBoxIncident.cleared_at.is_(None),
            BlackBoxIncident.opened_at < now - kpis.STANDING_AFTER,
        )
    )
    limits = {view.limit.id: view for view in list_limits(session)} if found.top else {}
    return {
        "window_hours": hours,
        "activations": found.activations,
        "per_10min_avg": round(found.per_10min_avg, 3),
        "per_10min_peak": found.per_10min_peak,
        "flood_intervals": found.flood_intervals,
        "standing": standing or 0,
        "chattering": found.chattering,
        "top_bad_actors": [
            {
                "limit_id": limit_id,
                "asset_id": limits[limit_id].mapping.asset_id,
                "metric": limits[limit_id].mapping.internal_metric_name,
                "level": limits[limit_id].limit.level,
                "activations": count,
            }
            for limit_id, count in found.top
            if limit_id in limits
        ],
        "top10_share": round(found.top10_share, 4),
    }


def activations_per_interval(
    session: Session, *, hours: int, now: datetime | None = None
) -> tuple[datetime, list[int]]:
    """Activations per 10 minutes over the window (the /alarms rate chart)."""
    now = now or utcnow()
    start = now - timedelta(hours=hours)
    moments = session.scalars(
        select(BlackBoxEvent.event_time).where(
            BlackBoxEvent.event_category == ALARM_CATEGORY,
            BlackBoxEvent.source_type == "ACTIVATED",
            BlackBoxEvent.event_time >= start,
        )
    ).all()
    activations = [kpis.Activation(0, at) for at in moments]
    return start, kpis.interval_counts(activations, start, now + timedelta(microseconds=1))

