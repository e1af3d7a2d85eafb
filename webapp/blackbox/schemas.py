from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

from webapp.db import as_utc

# Stored values are already UTC; this only normalises how they serialise.
StoredUTC = Annotated[datetime, AfterValidator(as_utc)]


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    asset_id: int | None
    source_system: str
    source_type: str
    event_category: str
    event_time: StoredUTC
    severity: str
    summary: str
    payload: dict[str, Any]


class EventList(BaseModel):
    events: list[EventOut]


class IncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    asset_id: int | None
    title: str
    severity: str
    status: str
    opened_at: StoredUTC
    acknowledged_at: StoredUTC | None
    closed_at: StoredUTC | None
    first_event_id: int | None
    last_event_id: int | None
    event_count: int


class IncidentList(BaseModel):
    incidents: list[IncidentOut]


class ChainVerificationOut(BaseModel):
    """The tenant's hash chain checked end to end (DESIGN.md §16)."""

    ok: bool
    events: int
    first_bad_id: int | None
    head_hash: str | None
