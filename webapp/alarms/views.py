"""Alarms API (DESIGN.md §14): read (viewer+), acknowledge and shelve (operator+), limits
(engineer+), KPIs and a live stream of transitions; and the alarm screens (`pages`): the
banner on every page, /alarms, and acknowledging from a row."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from sse_starlette import EventSourceResponse, ServerSentEvent

from webapp.alarms import service
from webapp.alarms.charts import build_rate_chart
from webapp.alarms.presenters import (
    RECENTLY_CLOSED,
    AlarmRow,
    Banner,
    Viewer,
    alarm_row,
    alarm_rows,
    bad_actors,
    read_banner,
    viewer_of,
)
from webapp.alarms.schemas import (
    AckRequest,
    AlarmKpis,
    AlarmList,
    AlarmOut,
    LimitCreate,
    LimitList,
    LimitOut,
    LimitUpdate,
    PriorityName,
    ShelveRequest,
)
from webapp.blackbox.models import BlackBoxEvent, BlackBoxIncident
from webapp.db import tenant_session, utcnow
from webapp.deps import (
    CurrentUser,
    EngineerUser,
    OperatorUser,
    OptionalAssetIdQuery,
    SessionDep,
    SettingsDep,
    configuration_changed,
    credential_digest,
    stream_slot,
)
from webapp.sse import SlotEventSourceResponse
from webapp.templating import is_htmx, render_page, templates
from webapp.tenancy.service import live_credentials
from webapp.types import MAX_DB_ID

router = APIRouter(prefix="/api", tags=["alarms"])

AlarmId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]
LimitId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]
REPLAY_LIMIT = 1000


def _http(exc: Exception) -> HTTPException:
    if isinstance(exc, service.NotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, service.Conflict):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    assert isinstance(exc, service.InvalidLimit)
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"type": "value_error", "loc": ["body", exc.field], "msg": str(exc)}],
    )


LIMIT_ERRORS = (service.NotFound, service.Conflict, service.InvalidLimit)


def _limit_out(view: service.LimitView) -> LimitOut:
    limit, mapping = view.limit, view.mapping
    return LimitOut(
        id=limit.id, mapping_id=limit.mapping_id, asset_id=mapping.asset_id,
        metric=mapping.internal_metric_name, level=limit.level, threshold=limit.threshold,
        deadband=limit.deadband, on_delay_seconds=limit.on_delay_seconds,
        off_delay_seconds=limit.off_delay_seconds, priority=limit.priority,
        is_active=limit.is_active, out_of_service=limit.out_of_service,
        shelved_until=limit.shelved_until, shelve_reason=limit.shelve_reason,
    )


# --- alarms --------------------------------------------------------------------------------


@router.get("/alarms", response_model=AlarmList)
def list_alarms(
    db: SessionDep,
    _user: CurrentUser,
    state: service.StateFilter = service.StateFilter.active,
    asset_id: OptionalAssetIdQuery = None,
    priority: PriorityName | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlarmList:
    """Highest priority first, then the newest activation. `active` (the default) is every
    occurrence not closed and not suppressed."""
    alarms = service.list_alarms(db, state=state, asset_id=asset_id, priority=priority,
                                 limit=limit)
    return AlarmList(alarms=[AlarmOut(**alarm.as_dict()) for alarm in alarms])


@router.get("/alarms/kpis", response_model=AlarmKpis)
def alarm_kpis(
    db: SessionDep, _user: CurrentUser, hours: Annotated[int, Query(ge=1, le=720)] = 24
) -> AlarmKpis:
    """EEMUA 191 / ISA-18.2 performance figures over the last `hours`."""
    return AlarmKpis(**service.alarm_kpis(db, hours=hours))


@router.get(
    "/alarms/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE `alarm` events"}},
)
async def alarm_stream(
    request: Request, db: SessionDep, user: CurrentUser, settings: SettingsDep
) -> EventSourceResponse:
    """`event: alarm` after each transition of the tenant's alarms, `id:` its BlackBox event
    id; from now, or after `Last-Event-ID` (replayed alarms show their current state)."""
    with stream_slot(request, user, settings) as release:
        factory: sessionmaker[Session] = request.app.state.session_factory
        tenant_id, digest = user.tenant_id, credential_digest(request)
        interval = settings.alarm_scan_seconds or settings.stream_interval_seconds
        after = _last_event_id(request)
        if after is None:
            after = await asyncio.to_thread(_newest_event_id, factory, tenant_id)

        async def events() -> AsyncIterator[ServerSentEvent]:
            last = after
            while True:
                # Each tick: the credential still stands (else `close`), then what happened.
                if digest not in await asyncio.to_thread(live_credentials, factory, {digest}):
                    yield ServerSentEvent(data="session ended", event="close")
                    return
                for event_id, alarm in await asyncio.to_thread(
                    _alarm_events, factory, tenant_id, last
                ):
                    yield ServerSentEvent(
                        data=json.dumps(jsonable_encoder(AlarmOut(**alarm))),
                        event="alarm", id=str(event_id),
                    )
                    last = event_id
                await asyncio.sleep(interval)

        return SlotEventSourceResponse(events(), release=release)


def _last_event_id(request: Request) -> int | None:
    header = request.headers.get("Last-Event-ID", "").strip()
    if header.isdigit() and 1 <= int(header) <= MAX_DB_ID:
        return int(header)
    return None  # not an id we issue: start from now rather than fail the reconnect


def _newest_event_id(factory: sessionmaker[Session], tenant_id: int) -> int:
    with tenant_session(factory, tenant_id) as session:
        return session.scalar(select(func.max(BlackBoxEvent.id))) or 0


def _alarm_events(
    factory: sessionmaker[Session], tenant_id: int, after: int
) -> list[tuple[int, dict[str, Any]]]:
    """The tenant's alarm transitions after event `after`, each with its alarm as it is now.
    (Events without an occurrence, such as shelving a normal limit, are not streamed.)"""
    with tenant_session(factory, tenant_id) as session:
        rows = session.execute(
            select(BlackBoxEvent.id, BlackBoxEvent.payload)
            .where(
                BlackBoxEvent.id > after,
                BlackBoxEvent.event_category == service.ALARM_CATEGORY,
            )
            .order_by(BlackBoxEvent.id)
            .limit(REPLAY_LIMIT)
        ).all()
        wanted = [(event_id, (payload or {}).get("alarm_id")) for event_id, payload in rows]
        alarms = service.alarms_by_id(session, {a for _, a in wanted if a}, now=utcnow())
    return [(event_id, alarms[a].as_dict()) for event_id, a in wanted if a in alarms]


@router.get("/alarms/{alarm_id}", response_model=AlarmOut)
def read_alarm(alarm_id: AlarmId, db: SessionDep, _user: CurrentUser) -> AlarmOut:
    try:
        return AlarmOut(**service.get_alarm(db, alarm_id, now=utcnow()).as_dict())
    except service.NotFound as exc:
        raise _http(exc) from None


@router.post("/alarms/{alarm_id}/ack", response_model=AlarmOut)
def acknowledge(
    alarm_id: AlarmId, db: SessionDep, user: OperatorUser, body: AckRequest | None = None
) -> AlarmOut:
    """unack_active → ack_active, rtn_unack → closed; anything else is 409."""
    try:
        alarm = service.acknowledge(
            db, alarm_id, actor_id=user.id, comment=body.comment if body else None,
            now=utcnow(),
        )
    except (service.NotFound, service.Conflict) as exc:
        raise _http(exc) from None
    return AlarmOut(**alarm.as_dict())


# --- limits --------------------------------------------------------------------------------


@router.get("/alarm-limits", response_model=LimitList)
def list_limits(
    db: SessionDep,
    _user: CurrentUser,
    asset_id: OptionalAssetIdQuery = None,
    mapping_id: Annotated[int | None, Query(ge=1, le=MAX_DB_ID)] = None,
) -> LimitList:
    views = service.list_limits(db, asset_id=asset_id, mapping_id=mapping_id)
    return LimitList(limits=[_limit_out(view) for view in views])


@router.post("/alarm-limits", response_model=LimitOut, status_code=201)
def create_limit(
    request: Request, data: LimitCreate, db: SessionDep, user: EngineerUser
) -> LimitOut:
    try:
        limit = _limit_out(service.create_limit(db, data, actor_id=user.id))
    except LIMIT_ERRORS as exc:
        raise _http(exc) from None
    configuration_changed(request, tenant_id=user.tenant_id)
    return limit


@router.patch("/alarm-limits/{limit_id}", response_model=LimitOut)
def update_limit(
    request: Request, limit_id: LimitId, data: LimitUpdate, db: SessionDep, user: EngineerUser
) -> LimitOut:
    try:
        limit = _limit_out(service.update_limit(db, limit_id, data, actor_id=user.id,
                                                now=utcnow()))
    except LIMIT_ERRORS as exc:
        raise _http(exc) from None
    configuration_changed(request, tenant_id=user.tenant_id)
    return limit


@router.post("/alarm-limits/{limit_id}/shelve", response_model=LimitOut)
def shelve_limit(
    request: Request, limit_id: LimitId, data: ShelveRequest, db: SessionDep,
    user: OperatorUser,
) -> LimitOut:
    """Suppress the limit's alarms for 1…720 minutes, with a reason; it ends by itself."""
    try:
        limit = _limit_out(service.shelve(
            db, limit_id, minutes=data.minutes, reason=data.reason, actor_id=user.id,
            now=utcnow(),
        ))
    except LIMIT_ERRORS as exc:
        raise _http(exc) from None
    configuration_changed(request, tenant_id=user.tenant_id)  # it ends by the scanner's hand
    return limit


@router.post("/alarm-limits/{limit_id}/unshelve", response_model=LimitOut)
def unshelve_limit(
    request: Request, limit_id: LimitId, db: SessionDep, user: OperatorUser
) -> LimitOut:
    try:
        limit = _limit_out(service.unshelve(db, limit_id, actor_id=user.id, now=utcnow()))
    except LIMIT_ERRORS as exc:
        raise _http(exc) from None
    configuration_changed(request, tenant_id=user.tenant_id)
    return limit


# --- screens (§14 "Screens") ------------------------------------------------------------------

pages = APIRouter(include_in_schema=False)
KPI_WINDOW_HOURS = 24
# Fired (after the swap settles) when an acknowledgement changed an alarm: the banner and the
# /alarms list refresh at once instead of at their next poll.
ALARMS_CHANGED = "alarms-changed"


def keep_banner(request: Request, banner: Banner) -> None:
    """A view that has read the banner with its own session hands it to the page."""
    request.state.alarm_banner = banner


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def banner_context(request: Request) -> dict[str, Any]:
    """The banner in base.html, for every signed-in page without each view asking for it.

    Views that read it already (the twin pages, the banner fragment) leave it on
    `request.state`; otherwise a full page rendered in a worker thread (every plain `def`
    view) reads it with a short session of its own. A page rendered on the event loop (async
    views, error pages) must not wait on the database there: its banner comes without counts
    and fetches them as soon as it loads. htmx fragments never show the banner: no read."""
    user = getattr(request.state, "user", None)
    if user is None:
        return {}
    banner = getattr(request.state, "alarm_banner", None)
    if banner is None and not is_htmx(request) and not _on_event_loop():
        with tenant_session(request.app.state.session_factory, user.tenant_id) as session:
            banner = read_banner(session)
    return {"alarm_banner": banner}


templates.context_processors.append(banner_context)


def _recently_closed(db: Session, viewer: Viewer) -> list[AlarmRow]:
    """The last closed alarms, newest closure first (the API's `closed` list is ordered by
    priority, which would keep old high-priority alarms ahead of today's)."""
    ids = db.scalars(
        select(BlackBoxIncident.id)
        .where(
            BlackBoxIncident.alarm_limit_id.is_not(None), BlackBoxIncident.closed_at.is_not(None)
        )
        .order_by(BlackBoxIncident.closed_at.desc(), BlackBoxIncident.id.desc())
        .limit(RECENTLY_CLOSED)
    ).all()
    found = service.alarms_by_id(db, set(ids), now=utcnow())
    return alarm_rows((found[i] for i in ids if i in found), viewer)


def _active_rows(db: Session, viewer: Viewer) -> list[AlarmRow]:
    return alarm_rows(service.list_alarms(db, state=service.StateFilter.active), viewer)


def _alarms_page_context(db: Session, viewer: Viewer) -> dict[str, Any]:
    now = utcnow()
    kpis = service.alarm_kpis(db, hours=KPI_WINDOW_HOURS, now=now)
    start, counts = service.activations_per_interval(db, hours=KPI_WINDOW_HOURS, now=now)
    return {
        "active_rows": _active_rows(db, viewer),
        "suppressed_rows": alarm_rows(
            service.list_alarms(db, state=service.StateFilter.suppressed, now=now), viewer
        ),
        "closed_rows": _recently_closed(db, viewer),
        "kpis": kpis,
        "bad_actors": bad_actors(db, kpis),
        "rate": build_rate_chart(start, counts, end=now, timezone=viewer.timezone,
                                 locale=viewer.locale),
    }


@pages.get("/alarms", response_class=HTMLResponse)
def alarms_page(request: Request, db: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Active, suppressed and recently closed alarms and the performance figures; for htmx
    (the list's poll) only the active list."""
    viewer = viewer_of(user, request.state.locale)
    if is_htmx(request):
        context = {"active_rows": _active_rows(db, viewer)}
        return render_page(request, "alarms/index.html", context, block="alarm_list")
    return render_page(request, "alarms/index.html", _alarms_page_context(db, viewer))


@pages.get("/alarms/banner", response_class=HTMLResponse)
def alarm_banner(request: Request, db: SessionDep, _user: CurrentUser) -> Response:
    """The banner's block, polled by every page; opened directly, the alarms page."""
    if not is_htmx(request):
        return RedirectResponse("/alarms", status_code=status.HTTP_303_SEE_OTHER)
    keep_banner(request, read_banner(db))
    return render_page(request, "base.html", {}, block="alarm_banner")


@pages.post("/alarms/{alarm_id}/ack", response_class=HTMLResponse)
def acknowledge_from_screen(
    request: Request, alarm_id: AlarmId, db: SessionDep, user: OperatorUser
) -> Response:
    """Acknowledge from a row; htmx gets the row back as it is now (with what went wrong:
    409 already acknowledged or closed, 404 not found), a plain form post the alarms page."""
    viewer = viewer_of(user, request.state.locale)
    problem, row = None, None
    try:
        alarm = service.acknowledge(db, alarm_id, actor_id=user.id, comment=None, now=utcnow())
        row = alarm_row(alarm, viewer)
    except service.Conflict:
        db.rollback()
        problem = status.HTTP_409_CONFLICT
        row = alarm_row(service.get_alarm(db, alarm_id, now=utcnow()), viewer)
    except service.NotFound:
        db.rollback()
        problem = status.HTTP_404_NOT_FOUND
    if not is_htmx(request):
        if problem is None:
            return RedirectResponse("/alarms", status_code=status.HTTP_303_SEE_OTHER)
        context = {**_alarms_page_context(db, viewer), "page_error": problem}
        return render_page(request, "alarms/index.html", context, status_code=problem)
    response = render_page(
        request, "_alarm_row.html", {"row": row, "ack_error": problem},
        status_code=problem or status.HTTP_200_OK,
    )
    if problem is None:
        response.headers["HX-Trigger-After-Settle"] = ALARMS_CHANGED
    return response
