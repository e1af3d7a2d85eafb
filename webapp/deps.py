"""Typed dependencies: the database session, the current user, roles, CSRF, id parameters."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session, sessionmaker

from webapp.blackbox.writer import EventWriter
from webapp.config import Settings
from webapp.db import bind_tenant, tenant_session, utcnow
from webapp.integrations.service import SourceAccess
from webapp.invalidation import TenantCache
from webapp.live.hub import TooManyStreams
from webapp.security import csrf_token_for, csrf_token_matches, token_digest
from webapp.templating import SUPPORTED_LOCALES, is_htmx
from webapp.tenancy.models import ROLE_RANK, Role, User
from webapp.tenancy.service import set_locale, user_for_api_token, user_for_session
from webapp.timeseries.service import SignalCache
from webapp.types import MAX_DB_ID

T = TypeVar("T")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_KEY = "sid"


class NotAuthenticated(Exception):
    """No valid session or bearer token; main.py turns it into 401 / 303 / HX-Redirect."""


# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in a worker
# thread, a hop that costs more than the dependency itself on the read path (DESIGN.md §17).


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_sources(request: Request) -> SourceAccess:
    return request.app.state.sources


# How this deployment reaches historians: timeout, egress policy, secret vault.
SourcesDep = Annotated[SourceAccess, Depends(get_sources)]


@dataclass(frozen=True, slots=True)
class ReadPath:
    """What a read of plant data needs (DESIGN.md §17): how to reach the sources, the signal
    cache (and sessions for its misses), and the process's BlackBox group-commit writer. One
    dependency, not four: each dependency FastAPI resolves costs the event loop about 10 µs per
    request, a few per cent of the whole read."""

    sources: SourceAccess
    signals: SignalCache
    sessions: sessionmaker[Session]
    blackbox: EventWriter


async def get_read_path(request: Request) -> ReadPath:
    return request.app.state.read_path


ReadPathDep = Annotated[ReadPath, Depends(get_read_path)]


AssetId = Annotated[int, Path(ge=1, le=MAX_DB_ID, description="Asset id")]
OptionalAssetIdQuery = Annotated[int | None, Query(ge=1, le=MAX_DB_ID)]


def bearer_token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def idle_timeout(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.session_idle_minutes)


# (how, digest of the session id or token) → the user it authenticates, detached, shared by the
# requests that hit it: read it, never change it.
PrincipalCache = TenantCache[tuple[str, str], User]


def _credential_key(request: Request) -> tuple[str, str] | None:
    """(how, digest) of the request's bearer token or browser session; None: neither."""
    token = bearer_token(request)
    if token is not None:
        request.state.auth_via = "bearer"
        return ("bearer", token_digest(token))
    session_id = request.session.get(SESSION_KEY)
    if not session_id:
        return None
    request.state.auth_via = "session"
    request.state.session_id = session_id
    return ("session", token_digest(session_id))


def _look_up_principal(request: Request, settings: Settings, key: tuple[str, str]) -> User | None:
    """The credential's user from the database (a session of its own, bound to no tenant until
    the lookup binds it), then cached as a detached snapshot."""
    principals: PrincipalCache = request.app.state.principals
    generation = principals.generation
    with tenant_session(request.app.state.session_factory, None) as db:
        if key[0] == "bearer":
            credential = user_for_api_token(db, bearer_token(request) or "")
        else:
            credential = user_for_session(
                db, request.state.session_id, idle_timeout=idle_timeout(settings)
            )
        if credential is None:
            return None
        user = credential.user
        db.commit()  # a browser session's activity, when the lookup touched it
        db.expunge(user.tenant)
        db.expunge(user)
    seconds_left = (credential.expires_at - utcnow()).total_seconds()
    principals.put(key, user, tenant_id=user.tenant_id, generation=generation,
                   until=time.monotonic() + seconds_left)
    return user


def _switch_locale(
    request: Request, settings: Settings, key: tuple[str, str], user: User, locale: str
) -> User:
    with tenant_session(request.app.state.session_factory, user.tenant_id) as db:
        stored = db.get(User, user.id)  # the row itself: the snapshot is shared and read-only
        if stored is None:
            return user
        set_locale(db, stored, locale)  # its commit drops the cached principal
    return _look_up_principal(request, settings, key) or user


class Authentication(OAuth2PasswordBearer):
    """Who the request is: the authenticated, active user of an active tenant.

    Tenant access is decided here and only here: inactive users and inactive tenants never
    resolve (the session/token lookup filters them), and the request's database session is
    opened for this user's tenant (`get_db`), so every route behind it is scoped. A browser
    session's cookie authenticates an unsafe request only with its CSRF token. A cached
    principal costs no database round trip, no worker thread and no session.

    It is the bearer scheme OpenAPI documents (the password flow at /api/auth/token) and,
    as a dependency, resolves that token or the session cookie to a user: one object, so
    FastAPI documents the scheme and resolves one dependency, not two, per request.
    """

    async def __call__(self, request: Request) -> User:  # type: ignore[override]
        settings: Settings = request.app.state.settings
        key = _credential_key(request)
        if key is None:
            raise NotAuthenticated()
        if key[0] == "session" and request.method not in SAFE_METHODS:
            await _check_csrf_token(request, request.state.session_id)
        principals: PrincipalCache = request.app.state.principals
        user = principals.get(key)
        if user is None:
            user = await run_in_threadpool(_look_up_principal, request, settings, key)
            if user is None:
                raise NotAuthenticated()
        requested_locale = request.query_params.get("lang")
        if requested_locale in SUPPORTED_LOCALES and requested_locale != user.locale:
            user = await run_in_threadpool(
                _switch_locale, request, settings, key, user, requested_locale
            )
        request.state.user = user
        request.state.locale = user.locale if user.locale in SUPPORTED_LOCALES else "en"
        session_id = getattr(request.state, "session_id", None)
        if session_id:
            request.state.csrf_token = csrf_token_for(session_id, settings.secret_key)
        return user


# The scheme's name is part of the published OpenAPI document: kept as FastAPI named it.
current_user = Authentication(
    tokenUrl="/api/auth/token", scheme_name="OAuth2PasswordBearer", auto_error=False
)


CurrentUser = Annotated[User, Depends(current_user)]


def _open_session(request: Request, tenant_id: int | None) -> Session:
    session: Session = request.app.state.session_factory()
    bind_tenant(session, tenant_id)
    return session


async def _close_session(session: Session) -> None:
    # Most views end their transactions in `db_call`, so closing is pure bookkeeping; else
    # the rollback runs in a worker thread.
    if session.get_transaction() is None:
        session.close()
    else:
        await run_in_threadpool(session.close)


async def get_db(request: Request, user: CurrentUser) -> AsyncIterator[Session]:
    """A session opened for the authenticated user's tenant (it connects on its first
    statement): a route that takes one has authenticated first."""
    session = _open_session(request, user.tenant_id)
    try:
        yield session
    finally:
        await _close_session(session)


async def get_public_db(request: Request) -> AsyncIterator[Session]:
    """A session bound to no tenant (it sees no tenant's rows) for the routes before
    authentication: login, logout, token issue."""
    session = _open_session(request, None)
    try:
        yield session
    finally:
        await _close_session(session)


# Closed before the response is sent, so long responses (streams) never hold a connection.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]
PublicSessionDep = Annotated[Session, Depends(get_public_db, scope="function")]


async def db_call(db: Session, work: Callable[..., T], *args: Any) -> T:
    """Database work from an async view: in a worker thread, then the transaction ends and
    the connection goes back to the pool (awaits on slow sources must not hold one)."""
    return await run_in_threadpool(_call_and_release, db, work, *args)


def _call_and_release(db: Session, work: Callable[..., T], *args: Any) -> T:
    try:
        result = work(db, *args)
    except BaseException:
        db.rollback()
        raise
    db.commit()
    return result


def credential_digest(request: Request) -> str:
    """What the live streams re-check every tick: the session or bearer token of the request."""
    token = bearer_token(request)
    return token_digest(token if token is not None else request.state.session_id)


@contextmanager
def stream_slot(request: Request, user: User, settings: Settings) -> Iterator[Callable[[], None]]:
    """One of the user's open streams (429 past OPTRIA_STREAMS_PER_USER), taken before any
    read so a refused stream writes no event; released if the stream never starts."""
    try:
        release = request.app.state.hub.reserve_stream(user.id, settings.streams_per_user)
    except TooManyStreams as exc:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc)) from None
    try:
        yield release
    except BaseException:
        release()
        raise


def configuration_changed(
    request: Request, *, tenant_id: int, mapping_id: int | None = None,
    integration_id: int | None = None,
) -> None:
    """After a committed change of signals or alarm limits: the live hub ends the streams (and
    for an integration, the feeds) it concerns, and the alarm scanner reads its limits again."""
    if mapping_id is not None or integration_id is not None:
        request.app.state.hub.end_streams(
            tenant_id=tenant_id, mapping_id=mapping_id, integration_id=integration_id
        )
    request.app.state.scanner.invalidate()


def require_role(minimum: Role) -> Callable[[User], Awaitable[User]]:
    async def check_role(user: CurrentUser) -> User:
        if ROLE_RANK[Role(user.role)] < ROLE_RANK[minimum]:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"This action needs the {minimum.value} role or higher"
            )
        return user

    return check_role


OperatorUser = Annotated[User, Depends(require_role(Role.operator))]
EngineerUser = Annotated[User, Depends(require_role(Role.engineer))]
AdminUser = Annotated[User, Depends(require_role(Role.tenant_admin))]


async def verify_csrf(request: Request) -> None:
    """For a route that does not authenticate (logout): an unsafe request riding on the session
    cookie must carry the session-bound token. Authenticated routes check it in
    `Authentication`."""
    if request.method in SAFE_METHODS or bearer_token(request) is not None:
        return
    session_id = request.session.get(SESSION_KEY)
    if session_id:  # else not authenticated by cookie: authentication answers instead
        await _check_csrf_token(request, session_id)


async def _check_csrf_token(request: Request, session_id: str) -> None:
    given = request.headers.get("X-CSRF-Token")
    content_type = request.headers.get("content-type", "")
    if not given and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        field = form.get("csrf_token")
        given = field if isinstance(field, str) else None
    secret_key = request.app.state.settings.secret_key
    if not csrf_token_matches(given, session_id, secret_key):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF token missing or invalid")


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/healthz"


__all__ = [
    "AdminUser",
    "AssetId",
    "CurrentUser",
    "EngineerUser",
    "NotAuthenticated",
    "OperatorUser",
    "PublicSessionDep",
    "ReadPath",
    "ReadPathDep",
    "SessionDep",
    "SettingsDep",
    "SourcesDep",
    "current_user",
    "is_htmx",
    "require_role",
    "verify_csrf",
    "wants_json",
]
