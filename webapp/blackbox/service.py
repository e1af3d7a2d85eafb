"""The BlackBox: the tenant's flight recorder. `record_event` is THE one writer of events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.blackbox.models import BlackBoxEvent, BlackBoxIncident
from webapp.db import utcnow


def record_event(
    session: Session,
    *,
    tenant_id: int,
    asset_id: int | None,
    source_system: str,
    source_type: str,
    event_category: str,
    severity: str,
    summary: str,
    payload: dict[str, Any],
    event_time: datetime | None = None,
) -> BlackBoxEvent:
    """Add one event to the session; the caller's transaction decides when it lands."""
    now = utcnow()
    event = BlackBoxEvent(
        tenant_id=tenant_id,
        asset_id=asset_id,
        source_system=source_system,
        source_type=source_type,
        event_category=event_category,
        severity=severity,
        summary=summary[:500],
        payload=payload,
        event_time=event_time or now,
        created_at=now,
    )
    session.add(event)
    return event


def list_events(
    session: Session,
    *,
    category: str | None = None,
    severity: str | None = None,
    asset_id: int | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> Sequence[BlackBoxEvent]:
    """Newest first by (event_time, id); `since` inclusive."""
    statement = select(BlackBoxEvent)
    if category:
        statement = statement.where(BlackBoxEvent.event_category == category)
    if severity:
        statement = statement.where(BlackBoxEvent.severity == severity)
    if asset_id is not None:
        statement = statement.where(BlackBoxEvent.asset_id == asset_id)
    if since is not None:
        statement = statement.where(BlackBoxEvent.event_time >= since)
    statement = statement.order_by(BlackBoxEvent.event_time.desc(), BlackBoxEvent.id.desc())
    return session.scalars(statement.limit(limit)).all()


def list_incidents(session: Session, *, limit: int = 200) -> Sequence[BlackBoxIncident]:
    """Open first, then acknowledged, then closed; newest first within each."""
    statement = select(BlackBoxIncident).order_by(
        BlackBoxIncident.closed_at.is_not(None),
        BlackBoxIncident.acknowledged_at.is_not(None),
        BlackBoxIncident.opened_at.desc(),
        BlackBoxIncident.id.desc(),
    )
    return session.scalars(statement.limit(limit)).all()
