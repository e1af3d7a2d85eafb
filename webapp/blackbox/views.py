from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from webapp.blackbox import service
from webapp.blackbox.models import SEVERITIES
from webapp.blackbox.schemas import ChainVerificationOut, EventList, IncidentList
from webapp.deps import AdminUser, CurrentUser, OptionalAssetIdQuery, SessionDep
from webapp.templating import render_page
from webapp.types import UTCDatetime

router = APIRouter()

EVENT_CATEGORIES = ("SENSOR", "CONNECTOR", "AUTH", "ALARM", "OPERATOR", "CONFIG")
CategoryQuery = Annotated[str | None, Query(max_length=32, pattern=r"^[A-Z_]+$")]
SeverityQuery = Annotated[str | None, Query(max_length=16, pattern=r"^[A-Z]+$")]


@router.get("/api/blackbox/events", response_model=EventList, tags=["blackbox"])
def list_events(
    db: SessionDep,
    _user: CurrentUser,
    category: CategoryQuery = None,
    severity: SeverityQuery = None,
    asset_id: OptionalAssetIdQuery = None,
    since: UTCDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventList:
    events = service.list_events(
        db, category=category, severity=severity, asset_id=asset_id, since=since, limit=limit
    )
    return EventList.model_validate({"events": events}, from_attributes=True)


@router.get("/api/blackbox/incidents", response_model=IncidentList, tags=["blackbox"])
def list_incidents(db: SessionDep, _user: CurrentUser) -> IncidentList:
    incidents = service.list_incidents(db)
    return IncidentList.model_validate({"incidents": incidents}, from_attributes=True)


@router.get("/api/blackbox/verify", response_model=ChainVerificationOut, tags=["blackbox"])
def verify_chain(db: SessionDep, _user: AdminUser) -> ChainVerificationOut:
    """Recompute the tenant's BlackBox hash chain: is any event edited, deleted or inserted?"""
    result = service.verify_chain(db)
    return ChainVerificationOut(
        ok=result.ok,
        events=result.events_checked,
        first_bad_id=result.first_bad_id,
        head_hash=result.head_hash,
    )


@router.get("/blackbox", response_class=HTMLResponse, include_in_schema=False)
def blackbox_page(
    request: Request,
    db: SessionDep,
    _user: CurrentUser,
    category: Annotated[str | None, Query(max_length=32)] = None,
    severity: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    # An empty select option means "all".
    category = category if category in EVENT_CATEGORIES else None
    severity = severity if severity in SEVERITIES else None
    return render_page(
        request,
        "blackbox/index.html",
        {
            "incidents": service.list_incidents(db),
            "events": service.list_events(db, category=category, severity=severity, limit=200),
            "categories": EVENT_CATEGORIES,
            "severities": SEVERITIES,
            "selected_category": category or "",
            "selected_severity": severity or "",
        },
        block="blackbox_events",
    )
