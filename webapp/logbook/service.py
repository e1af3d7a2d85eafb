"""The shift logbook (DESIGN.md §18): append-only entries and the current shift's summary.

Functions take a tenant-bound session; the scoping hook of webapp/db.py keeps every read and
write inside the tenant, so another tenant's asset or alarm id is simply not found. Nothing
here edits or deletes an entry: a correction is a new entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.alarms import service as alarms
from webapp.assets.models import Asset
from webapp.assets.service import get_asset
from webapp.blackbox.models import BlackBoxIncident
from webapp.blackbox.service import record_event
from webapp.db import utcnow
from webapp.logbook.models import LogbookEntry
from webapp.logbook.schemas import EntryCreate
from webapp.tenancy.models import User

LOGBOOK_SOURCE = "OPTRIA_LOGBOOK"
OPERATOR_CATEGORY = "OPERATOR"
ENTRY_ADDED = "LOGBOOK_ENTRY"
# More than any shift writes; the summary's count is exact either way.
SHIFT_ENTRY_LIMIT = 1000


class NotFound(Exception):
    """An asset or alarm that is missing, or another tenant's (indistinguishable); `field`
    names which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class EntryView:
    """An entry as it is read: with its author's email and its asset's code."""

    entry: LogbookEntry
    author: str
    asset_code: str | None

    def as_dict(self) -> dict[str, Any]:
        entry = self.entry
        return {
            "id": entry.id,
            "author": self.author,
            "created_at": entry.created_at,
            "text": entry.text,
            "asset_id": entry.asset_id,
            "alarm_id": entry.alarm_id,
        }


def add_entry(session: Session, data: EntryCreate, *, author: User) -> EntryView:
    """Append an entry and its OPERATOR event in one transaction, then commit. An unknown
    asset or alarm id raises NotFound before anything is written."""
    asset: Asset | None = None
    if data.asset_id is not None:
        asset = get_asset(session, data.asset_id)
        if asset is None:
            raise NotFound("asset_id", f"Asset {data.asset_id} not found")
    if data.alarm_id is not None:
        try:
            alarms.get_alarm(session, data.alarm_id, now=utcnow())
        except alarms.NotFound:
            raise NotFound("alarm_id", f"Alarm {data.alarm_id} not found") from None
    entry = LogbookEntry(
        author_id=author.id, text=data.text, asset_id=data.asset_id, alarm_id=data.alarm_id
    )
    session.add(entry)
    session.flush()
    summary = f"Logbook entry by {author.email}"
    if asset is not None:
        summary += f" on {asset.code}"
    if data.alarm_id is not None:
        summary += f" about alarm {data.alarm_id}"
    record_event(
        session,
        tenant_id=author.tenant_id,
        asset_id=data.asset_id,
        source_system=LOGBOOK_SOURCE,
        source_type=ENTRY_ADDED,
        event_category=OPERATOR_CATEGORY,
        severity="INFO",
        summary=summary,
        # The text itself, not only its length: the hash chain then proves what was written
        # even if someone with the database owner's rights rewrote the logbook table.
        payload={
            "entry_id": entry.id,
            "user_id": author.id,
            "asset_id": data.asset_id,
            "alarm_id": data.alarm_id,
            "text": data.text,
        },
        event_time=entry.created_at,
    )
    session.commit()
    return EntryView(entry, author.email, asset.code if asset else None)


def list_entries(
    session: Session,
    *,
    since: datetime | None = None,
    before: datetime | None = None,
    asset_id: int | None = None,
    limit: int = 100,
) -> list[EntryView]:
    """Newest first; `since` inclusive, `before` exclusive."""
    statement = (
        select(LogbookEntry, User.email, Asset.code)
        .join(User, User.id == LogbookEntry.author_id)
        .outerjoin(Asset, Asset.id == LogbookEntry.asset_id)
        .order_by(LogbookEntry.created_at.desc(), LogbookEntry.id.desc())
        .limit(limit)
    )
    if since is not None:
        statement = statement.where(LogbookEntry.created_at >= since)
    if before is not None:
        statement = statement.where(LogbookEntry.created_at < before)
    if asset_id is not None:
        statement = statement.where(LogbookEntry.asset_id == asset_id)
    return [EntryView(entry, email, code) for entry, email, code in session.execute(statement)]


@dataclass(frozen=True, slots=True)
class ShiftSummary:
    """Since the shift began: alarm occurrences activated and acknowledged, the alarms active
    now (the banner's count, whenever they began), and the shift's entries."""

    start: datetime
    activated: int
    acknowledged: int
    still_active: int
    entry_count: int
    entries: list[EntryView]


def _occurrences_since(session: Session, column: Any, start: datetime, now: datetime) -> int:
    return session.scalar(
        select(func.count())
        .select_from(BlackBoxIncident)
        .where(BlackBoxIncident.alarm_limit_id.is_not(None), column >= start, column <= now)
    ) or 0


def shift_summary(session: Session, *, start: datetime, now: datetime) -> ShiftSummary:
    entry_count = session.scalar(
        select(func.count())
        .select_from(LogbookEntry)
        .where(LogbookEntry.created_at >= start)
    ) or 0
    return ShiftSummary(
        start=start,
        activated=_occurrences_since(session, BlackBoxIncident.opened_at, start, now),
        acknowledged=_occurrences_since(session, BlackBoxIncident.acknowledged_at, start, now),
        still_active=sum(alarms.banner_counts(session, now).values()),
        entry_count=entry_count,
        entries=list_entries(session, since=start, limit=SHIFT_ENTRY_LIMIT),
    )
