"""Tenants, users, login throttling, browser sessions and API tokens.

Reads before a tenant is known go through `AUTH_LOOKUP` (webapp.db); everything after them is
tenant-scoped by the usual hook.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, delete, func, literal, or_, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager, sessionmaker

from webapp.blackbox.audit import AuditedObject, ConfigAction, changes_between, record_config_change
from webapp.blackbox.service import record_event
from webapp.db import (
    AUTH_LOOKUP,
    as_utc,
    bind_tenant,
    bound_tenant_id,
    transaction_lock,
    utcnow,
)
from webapp.security import (
    burn_password_check,
    hash_password,
    new_opaque_token,
    token_digest,
    verify_password,
)
from webapp.series import datetime_to_ns, ns_to_iso
from webapp.tenancy.models import ROLE_RANK, ApiToken, LoginFailure, Role, Tenant, User, UserSession

FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_CLIENT = 100
# pg_advisory_xact_lock namespaces: attempts for one client address, then for one email, are
# counted one at a time. Client before email in every transaction, so no two can deadlock.
LOGIN_CLIENT_LOCK = 0x4C4F4743  # b"LOGC"
LOGIN_EMAIL_LOCK = 0x4C4F4745  # b"LOGE"
# A session's last_seen_at is written at most this often (not on every request).
SESSION_TOUCH_INTERVAL = timedelta(minutes=1)


class InvalidCredentials(Exception):
    """Wrong password, unknown email, or an inactive user or tenant: one generic answer."""


class NotFound(Exception):
    """A user id that is missing or another tenant's (indistinguishable)."""


class DuplicateEmail(Exception):
    pass


class SelfLockout(Exception):
    """A change an admin may not make: deactivating or demoting their own account, or
    touching a user who outranks them (the platform's own administrators)."""


@dataclass
class LoginThrottled(Exception):
    retry_after_seconds: int


def normalize_email(email: str) -> str:
    return email.strip().lower()


# --- tenants and users -----------------------------------------------------------------------


def get_tenant_by_code(session: Session, code: str) -> Tenant | None:
    return session.scalar(select(Tenant).where(Tenant.code == code))


def create_tenant(session: Session, *, code: str, name: str, timezone: str = "UTC") -> Tenant:
    tenant = Tenant(code=code, name=name, timezone=timezone, is_active=True)
    session.add(tenant)
    session.flush()
    return tenant


def find_user_by_email(session: Session, email: str) -> User | None:
    """Unscoped on purpose: login does not know the tenant yet."""
    statement = select(User).where(User.email == normalize_email(email))
    return session.scalar(statement.execution_options(**{AUTH_LOOKUP: True}))


def create_user(
    session: Session,
    *,
    tenant: Tenant,
    email: str,
    password: str,
    role: Role,
    actor_id: int | None = None,
) -> User:
    """Add a user (DuplicateEmail if the email is taken, in any tenant); the caller commits."""
    bind_tenant(session, tenant.id)
    user = User(
        tenant_id=tenant.id,
        email=normalize_email(email),
        password_hash=hash_password(password),
        role=role.value,
        is_active=True,
        locale="en",
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise DuplicateEmail(f"a user with email {user.email} already exists") from None
    record_config_change(
        session, tenant_id=tenant.id, actor_id=actor_id, obj=AuditedObject.user,
        object_id=user.id, action=ConfigAction.created,
        changes=changes_between({}, _user_view(user)),
    )
    return user


def _user_view(user: User) -> dict[str, object]:
    """What the audit records of a user: never the password (or its hash)."""
    return {"email": user.email, "role": user.role, "is_active": user.is_active}


def list_users(session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.email)).all()


def get_user(session: Session, user_id: int) -> User:
    user = session.scalar(select(User).where(User.id == user_id))
    if user is None:
        raise NotFound(f"User {user_id} not found")
    return user


def update_user(
    session: Session, user_id: int, *, actor: User, role: Role | None, is_active: bool | None
) -> User:
    """Change a user's role or active flag; deactivating revokes every session and token, so
    their open streams end at the hub's next check."""
    user = get_user(session, user_id)
    if ROLE_RANK[Role(user.role)] > ROLE_RANK[Role(actor.role)]:
        raise SelfLockout(f"user {user_id} has a higher role than yours; you cannot change it")
    if role is not None and ROLE_RANK[role] > ROLE_RANK[Role(actor.role)]:
        raise SelfLockout("you cannot grant a role higher than your own")
    if user.id == actor.id and (
        is_active is False or (role is not None and ROLE_RANK[role] < ROLE_RANK[Role(user.role)])
    ):
        raise SelfLockout(
            "you cannot deactivate or demote your own account; another tenant admin can"
        )
    before = _user_view(user)
    if role is not None:
        user.role = role.value
    if is_active is not None:
        user.is_active = is_active
    changes = changes_between(before, _user_view(user))
    if changes:
        record_config_change(
            session, tenant_id=user.tenant_id, actor_id=actor.id, obj=AuditedObject.user,
            object_id=user.id, action=ConfigAction.updated, changes=changes,
        )
    if before["is_active"] and not user.is_active:
        revoke_credentials(session, user.id, actor_id=actor.id)
    session.commit()
    return user


def revoke_credentials(session: Session, user_id: int, *, actor_id: int | None) -> None:
    """Revoke every live session and API token of a user (the caller commits)."""
    now = utcnow()
    session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    tokens = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    ).all()
    for token in tokens:
        _revoke_token(session, token, now=now, actor_id=actor_id)


def _revoke_token(
    session: Session, token: ApiToken, *, now: datetime, actor_id: int | None
) -> None:
    token.revoked_at = now
    record_config_change(
        session, tenant_id=token.tenant_id, actor_id=actor_id, obj=AuditedObject.token,
        object_id=token.id, action=ConfigAction.revoked,
        changes={"revoked_at": [None, ns_to_iso(datetime_to_ns(now))]},
    )


def revoke_api_token(session: Session, raw_token: str, *, actor_id: int) -> None:
    """Revoke the presented bearer token (its owner's session is bound)."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(raw_token)))
    if token is not None and token.revoked_at is None:
        _revoke_token(session, token, now=utcnow(), actor_id=actor_id)
    session.commit()


# --- login with throttling -------------------------------------------------------------------


def _retry_after(session: Session, column: object, key: str, limit: int) -> int | None:
    """Seconds until fewer than `limit` failures for `key` remain in the window, else None."""
    window_start = utcnow() - FAILURE_WINDOW
    recent = (
        select(LoginFailure.attempted_at)
        .where(column == key, LoginFailure.attempted_at >= window_start)  # type: ignore[operator]
        .order_by(LoginFailure.attempted_at.desc())
        .limit(limit)
    )
    times = session.scalars(recent).all()
    if len(times) < limit:
        return None
    frees_at = times[-1] + FAILURE_WINDOW
    return max(1, math.ceil((frees_at - utcnow()).total_seconds()))


def check_login_throttle(session: Session, *, email: str, client_address: str) -> None:
    email = normalize_email(email)
    for column, key, limit in (
        (LoginFailure.email, email, MAX_FAILURES_PER_EMAIL),
        (LoginFailure.client_address, client_address, MAX_FAILURES_PER_CLIENT),
    ):
        retry_after = _retry_after(session, column, key, limit)
        if retry_after is not None:
            raise LoginThrottled(retry_after)


def _lock_key(text: str) -> int:
    """A stable int4 for an advisory lock (a collision only makes two keys wait for each other)."""
    return zlib.crc32(text.encode()) - 2**31


def _count_attempt(session: Session, *, email: str, client_address: str) -> LoginFailure:
    """Throttle check and counting, atomically, before any password hashing: concurrent
    attempts for one email take turns here, and each one counts as a failure until it
    succeeds. So 20 wrong passwords sent at once get at most 5 answers other than 429."""
    transaction_lock(session, LOGIN_CLIENT_LOCK, _lock_key(client_address))
    transaction_lock(session, LOGIN_EMAIL_LOCK, _lock_key(email))
    try:
        check_login_throttle(session, email=email, client_address=client_address)
    except LoginThrottled:
        session.rollback()  # releases the locks
        raise
    attempt = LoginFailure(email=email[:254], client_address=client_address[:64])
    session.add(attempt)
    # Failures older than the window no longer count: don't keep them.
    session.execute(
        delete(LoginFailure).where(LoginFailure.attempted_at < utcnow() - FAILURE_WINDOW)
    )
    session.commit()  # the attempt is counted, the locks released: now the slow part
    return attempt


def authenticate(session: Session, *, email: str, password: str, client_address: str) -> User:
    """Check throttling and credentials; record the outcome (AUTH event, failure counter).

    Commits, because a failure must be counted even though the request then fails.
    """
    email = normalize_email(email)
    _count_attempt(session, email=email, client_address=client_address)
    user = find_user_by_email(session, email) if email else None
    if user is None:
        burn_password_check(password)
        ok = False
    else:
        ok = (
            verify_password(user.password_hash, password)
            and user.is_active
            and user.tenant.is_active
        )
    if ok:
        # A success resets the email's count, this attempt included.
        session.execute(delete(LoginFailure).where(LoginFailure.email == email))
    if user is not None:
        bind_tenant(session, user.tenant_id)
        record_event(
            session,
            tenant_id=user.tenant_id,
            asset_id=None,
            source_system="OPTRIA_AUTH",
            source_type="LOGIN",
            event_category="AUTH",
            severity="INFO" if ok else "WARNING",
            summary=f"Login {'succeeded' if ok else 'failed'} for {email}",
            payload={"email": email, "client_address": client_address, "success": ok},
        )
    session.commit()
    if not ok:
        raise InvalidCredentials()
    assert user is not None
    return user


# --- browser sessions and API tokens ---------------------------------------------------------


def start_session(
    session: Session, user: User, *, max_age_seconds: int, idle_timeout: timedelta
) -> str:
    """A fresh random id at every login (no fixation); only its digest is stored."""
    raw = new_opaque_token()
    now = utcnow()
    session.add(
        UserSession(
            tenant_id=user.tenant_id,
            user_id=user.id,
            session_hash=token_digest(raw),
            created_at=now,
            expires_at=now + timedelta(seconds=max_age_seconds),
            last_seen_at=now,
        )
    )
    purge_expired_credentials(session, now=now, idle_timeout=idle_timeout)
    session.commit()
    return raw


def issue_api_token(
    session: Session, user: User, *, max_age_seconds: int, idle_timeout: timedelta
) -> str:
    raw = new_opaque_token()
    now = utcnow()
    session.add(
        ApiToken(
            tenant_id=user.tenant_id,
            user_id=user.id,
            token_hash=token_digest(raw),
            created_at=now,
            expires_at=now + timedelta(seconds=max_age_seconds),
        )
    )
    purge_expired_credentials(session, now=now, idle_timeout=idle_timeout)
    session.commit()
    return raw


def purge_expired_credentials(session: Session, *, now: datetime, idle_timeout: timedelta) -> None:
    """Delete the bound tenant's sessions and tokens that can never work again (run at login,
    so the tables stay the size of the tenant's live credentials)."""
    session.execute(
        delete(UserSession).where(
            or_(UserSession.expires_at <= now, session_activity() <= now - idle_timeout)
        )
    )
    session.execute(delete(ApiToken).where(ApiToken.expires_at <= now))


def session_activity() -> ColumnElement[datetime]:
    """When a browser session was last used (sessions older than the column: their start)."""
    return func.coalesce(UserSession.last_seen_at, UserSession.created_at)


@dataclass(frozen=True, slots=True)
class Credential:
    """Who a live session or token belongs to, and until when it can work at the most."""

    user: User
    expires_at: datetime


def user_for_session(
    session: Session, raw_session_id: str, *, idle_timeout: timedelta
) -> Credential | None:
    """The active user behind a live browser session id (not revoked, not past its 12 hours,
    used within the idle timeout), with the session bound to their tenant."""
    now = utcnow()
    found = session.execute(
        _credential_owner(UserSession, UserSession.session_hash, raw_session_id, now)
        .add_columns(UserSession.id, session_activity().label("last_seen"))
        .where(session_activity() > now - idle_timeout)
    ).first()
    if found is None or not found.User.tenant.is_active:
        return None
    user = found.User
    bind_tenant(session, user.tenant_id)
    if found.last_seen <= now - SESSION_TOUCH_INTERVAL:
        session.execute(
            update(UserSession).where(UserSession.id == found.id).values(last_seen_at=now)
        )
    return Credential(user, as_utc(found.expires_at))


def user_for_api_token(session: Session, raw_token: str) -> Credential | None:
    """The active user behind a live bearer token, with the session bound to their tenant."""
    found = session.execute(
        _credential_owner(ApiToken, ApiToken.token_hash, raw_token, utcnow())
    ).first()
    if found is None or not found.User.tenant.is_active:
        return None
    bind_tenant(session, found.User.tenant_id)
    return Credential(found.User, as_utc(found.expires_at))


def _credential_owner(
    model: type[UserSession] | type[ApiToken], digest: ColumnElement[str], raw: str,
    now: datetime,
) -> Select[tuple[User, datetime]]:
    """The one auth lookup: the active user owning a live session or token (and when that
    expires), before a tenant is known (AUTH_LOOKUP)."""
    return (
        select(User, model.expires_at)
        .join(model, model.user_id == User.id)
        # The tenant in the same statement (one round trip, not a lazy load after it).
        .join(User.tenant)
        .options(contains_eager(User.tenant))
        .where(
            digest == token_digest(raw),
            model.revoked_at.is_(None),
            model.expires_at > now,
            User.is_active.is_(True),
        )
        .execution_options(**{AUTH_LOOKUP: True})
    )


def revoke_session(session: Session, raw_session_id: str) -> None:
    """Revoke a browser session whichever tenant (or user state) it belongs to.

    Found through the auth lookup because a re-login may switch tenant, and a deactivated
    user's logout must still kill the session; the caller's tenant binding is kept.
    """
    row = session.scalar(
        select(UserSession)
        .where(UserSession.session_hash == token_digest(raw_session_id))
        .execution_options(**{AUTH_LOOKUP: True})
    )
    if row is None or row.revoked_at is not None:
        return
    previous_tenant = bound_tenant_id(session)
    bind_tenant(session, row.tenant_id)
    row.revoked_at = utcnow()
    session.commit()
    bind_tenant(session, previous_tenant)


def set_locale(session: Session, user: User, locale: str) -> None:
    if user.locale != locale:
        user.locale = locale
        session.commit()


def live_credentials(factory: sessionmaker[Session], digests: set[str]) -> set[str]:
    """Which of these session and token digests still authenticate: one query for all (the
    live hub asks every tick for every open stream). A live stream is activity: its browser
    session's idle clock is refreshed."""
    now = utcnow()

    def live(
        model: type[UserSession] | type[ApiToken], digest: ColumnElement[str],
        last_seen: ColumnElement[datetime | None],
    ) -> Select[tuple[str, int, datetime | None]]:
        return (
            select(digest.label("digest"), model.tenant_id, last_seen.label("last_seen"))
            .join(User, User.id == model.user_id)
            .join(Tenant, Tenant.id == User.tenant_id)
            .where(
                digest.in_(digests),
                model.revoked_at.is_(None),
                model.expires_at > now,
                User.is_active.is_(True),
                Tenant.is_active.is_(True),
            )
        )

    statement = union_all(
        live(UserSession, UserSession.session_hash, session_activity()),
        live(ApiToken, ApiToken.token_hash, literal(None)),
    )
    with factory() as session:
        rows = session.execute(statement.execution_options(**{AUTH_LOOKUP: True})).all()
        touch_before = now - SESSION_TOUCH_INTERVAL
        stale: dict[int, list[str]] = {}
        for row in rows:
            if row.last_seen is not None and as_utc(row.last_seen) <= touch_before:
                stale.setdefault(row.tenant_id, []).append(row.digest)
        for tenant_id, stale_digests in stale.items():
            bind_tenant(session, tenant_id)
            session.execute(
                update(UserSession)
                .where(UserSession.session_hash.in_(stale_digests))
                .values(last_seen_at=now)
            )
        session.commit()
        return {row.digest for row in rows}
