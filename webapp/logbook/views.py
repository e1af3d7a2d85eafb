"""Shift logbook (DESIGN.md §18): the JSON API (read: viewer+, write: operator+) and the
/logbook screen: the current shift's summary and entries, earlier entries, and a
form for operators. No route edits or deletes an entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from webapp.assets.service import list_assets
from webapp.db import utcnow
from webapp.deps import CurrentUser, OperatorUser, OptionalAssetIdQuery, SessionDep
from webapp.logbook import service
from webapp.logbook.schemas import EntryCreate, EntryList, EntryOut
from webapp.logbook.shift import current_shift_start
from webapp.templating import is_htmx, render_page
from webapp.tenancy.models import ROLE_RANK, Role, User
from webapp.types import UTCDatetime

router = APIRouter()


@router.post(
    "/api/logbook", response_model=EntryOut, status_code=status.HTTP_201_CREATED,
    tags=["logbook"],
)
def create_entry(data: EntryCreate, db: SessionDep, user: OperatorUser) -> EntryOut:
    """Append an entry (1…4000 characters, optionally about an asset and an alarm); it is
    recorded in the BlackBox as an OPERATOR event. Entries are never edited or deleted: a
    correction is a new entry."""
    try:
        view = service.add_entry(db, data, author=user)
    except service.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return EntryOut(**view.as_dict())


@router.get("/api/logbook", response_model=EntryList, tags=["logbook"])
def list_entries(
    db: SessionDep,
    _user: CurrentUser,
    since: UTCDatetime | None = None,
    asset_id: OptionalAssetIdQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EntryList:
    """Newest first; `since` inclusive (naive means UTC)."""
    views = service.list_entries(db, since=since, asset_id=asset_id, limit=limit)
    return EntryList(entries=[EntryOut(**view.as_dict()) for view in views])


# --- the screen ------------------------------------------------------------------------------

TEMPLATE = "logbook/index.html"
EARLIER_LIMIT = 50
# Fired (after the swap settles) when an entry was added: the list refreshes at once.
LOGBOOK_CHANGED = "logbook-changed"


@dataclass(frozen=True, slots=True)
class FeedPart:
    """A list of entries on the screen: the current shift's (inside its summary) or earlier."""

    role: str
    entries: list[service.EntryView]


def _feed_context(db: Session, user: User) -> dict[str, Any]:
    now = utcnow()
    tenant = user.tenant
    start = current_shift_start(now, tenant.shift_starts, tenant.timezone)
    summary = service.shift_summary(db, start=start, now=now)
    earlier = service.list_entries(db, before=start, limit=EARLIER_LIMIT)
    return {
        "summary": summary,
        "parts": [FeedPart("shift-summary", summary.entries), FeedPart("earlier-entries", earlier)],
    }


def _compose_context(db: Session, user: User, **form: Any) -> dict[str, Any]:
    return {
        # Writing is for operators and above, like acknowledging alarms (§14).
        "may_write": ROLE_RANK[Role(user.role)] >= ROLE_RANK[Role.operator],
        "assets": list_assets(db),
        "form_text": "",
        "form_asset_id": None,
        "form_error": None,
        "form_status": None,
        **form,
    }


@router.get("/logbook", response_class=HTMLResponse, include_in_schema=False)
def logbook_page(request: Request, db: SessionDep, user: CurrentUser) -> HTMLResponse:
    """The shift summary and the entries; for htmx (the list's poll) only those."""
    context = _feed_context(db, user)
    if is_htmx(request):
        return render_page(request, TEMPLATE, context, block="logbook_feed")
    return render_page(request, TEMPLATE, {**context, **_compose_context(db, user)})


def _form_problem(exc: ValidationError) -> str:
    """What the screen says about the first thing wrong with the form (its words are in the
    template, translated)."""
    error = exc.errors()[0]
    if error["loc"][:1] != ("text",):
        return "asset_invalid"
    return {"blank": "text_empty", "string_too_long": "text_too_long"}.get(
        error["type"], "text_invalid"
    )


@router.post("/logbook", response_class=HTMLResponse, include_in_schema=False)
def add_from_screen(
    request: Request,
    db: SessionDep,
    user: OperatorUser,
    text: Annotated[str, Form()] = "",
    asset_id: Annotated[str, Form()] = "",
) -> Response:
    """Add an entry from the form. htmx gets a fresh form (the text cleared, focus back in it)
    and the list refreshes; a refused entry gets its reason beside the form, which keeps what
    was typed. A plain form post gets the page."""
    problem: tuple[int, str] | None = None
    try:
        data = EntryCreate(text=text, asset_id=asset_id.strip() or None)
        service.add_entry(db, data, author=user)
    except ValidationError as exc:
        problem = (status.HTTP_422_UNPROCESSABLE_CONTENT, _form_problem(exc))
    except service.NotFound as exc:
        db.rollback()
        problem = (status.HTTP_404_NOT_FOUND, f"{exc.field.removesuffix('_id')}_not_found")
    if problem is None:
        if not is_htmx(request):
            return RedirectResponse("/logbook", status_code=status.HTTP_303_SEE_OTHER)
        response = render_page(
            request, TEMPLATE, {**_compose_context(db, user), "saved": True},
            block="logbook_compose", status_code=status.HTTP_201_CREATED,
        )
        response.headers["HX-Retarget"] = "#logbook-compose"
        response.headers["HX-Reswap"] = "innerHTML"
        response.headers["HX-Trigger-After-Settle"] = LOGBOOK_CHANGED
        return response
    status_code, form_error = problem
    form = {"form_error": form_error, "form_status": status_code}
    if is_htmx(request):
        return render_page(request, TEMPLATE, form, block="logbook_form_status",
                           status_code=status_code)
    selected = int(asset_id) if asset_id.strip().isdigit() else None
    context = {
        **_feed_context(db, user),
        **_compose_context(db, user, form_text=text, form_asset_id=selected, **form),
    }
    return render_page(request, TEMPLATE, context, status_code=status_code)
