from __future__ import annotations

import enum
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse

from webapp.blackbox import service
from webapp.blackbox.models import SEVERITIES
from webapp.blackbox.schemas import ChainVerificationOut, EventList, IncidentList
from webapp.deps import AdminUser, CurrentUser, OptionalAssetIdQuery, SessionDep
from webapp.templating import render_page
from webapp.tenancy.models import ROLE_RANK, Role, User
from webapp.types import UTCDatetime

router = APIRouter()

EVENT_CATEGORIES = ("SENSOR", "CONNECTOR", "AUTH", "ALARM", "OPERATOR", "CONFIG")
# Who logged in, and who failed to, is for tenant admins only (DESIGN.md §18): the API and
# the screen leave these categories out for everyone else.
ADMIN_ONLY_CATEGORIES = ("AUTH",)
CategoryQuery = Annotated[str | None, Query(max_length=32, pattern=r"^[A-Z_]+$")]
SeverityQuery = Annotated[str | None, Query(max_length=16, pattern=r"^[A-Z]+$")]
# Rows on the screen; a group of sensor reads is one row.
EVENT_ROWS = 200


class ReadsView(enum.StrEnum):
    """How the screen shows SENSOR reads (`?reads=`): grouped per asset, metric and
    10 minutes (the default), or every read on a row of its own."""

    grouped = "grouped"
    all = "all"


def hidden_categories(user: User) -> tuple[str, ...]:
    """Event categories this user may not see."""
    if ROLE_RANK[Role(user.role)] >= ROLE_RANK[Role.tenant_admin]:
        return ()
    return ADMIN_ONLY_CATEGORIES


@router.get(
    "/api/blackbox/events",
    response_model=EventList,
    tags=["blackbox"],
    responses={403: {"description": "category=AUTH asked for by a user below tenant_admin"}},
)
def list_events(
    db: SessionDep,
    user: CurrentUser,
    category: CategoryQuery = None,
    severity: SeverityQuery = None,
    asset_id: OptionalAssetIdQuery = None,
    since: UTCDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventList:
    """Individual events, newest first (never grouped). AUTH events (logins) are listed for
    tenant admins only; anyone else asking for them gets 403."""
    hidden = hidden_categories(user)
    if category in hidden:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{category} events (logins) are visible to tenant admins only",
        )
    events = service.list_events(
        db, category=category, severity=severity, asset_id=asset_id, since=since,
        hidden_categories=hidden, limit=limit,
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
    user: CurrentUser,
    category: Annotated[str | None, Query(max_length=32)] = None,
    severity: Annotated[str | None, Query(max_length=16)] = None,
    reads: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    hidden = hidden_categories(user)
    categories = [name for name in EVENT_CATEGORIES if name not in hidden]
    # An empty select option, or a value this user cannot choose, means "all".
    category = category if category in categories else None
    severity = severity if severity in SEVERITIES else None
    reads_view = ReadsView(reads) if reads in ReadsView.__members__ else ReadsView.grouped
    page = service.list_event_rows(
        db, category=category, severity=severity, hidden_categories=hidden,
        group_reads=reads_view is ReadsView.grouped, limit=EVENT_ROWS,
    )
    # The reads toggle keeps the other filters.
    filters = {name: value for name, value in (("category", category), ("severity", severity))
               if value}
    return render_page(
        request,
        "blackbox/index.html",
        {
            "incidents": service.list_incidents(db),
            "event_rows": page.rows,
            "more_events": page.has_more,
            "event_row_limit": EVENT_ROWS,
            "categories": categories,
            "logins_hidden": bool(hidden),
            "severities": SEVERITIES,
            "selected_category": category or "",
            "selected_severity": severity or "",
            "reads_view": reads_view.value,
            "reads_links": {
                view.value: "/blackbox?" + urlencode({**filters, "reads": view.value})
                for view in ReadsView
            },
        },
        block="blackbox_events",
    )
