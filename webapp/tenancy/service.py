"""Tenants, users, login throttling, browser sessions and API tokens.

Reads before a tenant is known go through `AUTH_LOOKUP` (webapp.db); everything after them is
tenant-scoped by the usual hook.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from webapp.blackbox.service import record_event
from webapp.db import AUTH_LOOKUP, bind_tenant, bound_tenant_id, utcnow
from webapp.security import (
    burn_password_check,
    hash_password,
    new_opaque_token,
    token_digest,
    verify_password,
)
from webapp.tenancy.models import ApiToken, LoginFailure, Role, Tenant, User, UserSession

FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_CLIENT = 100


class InvalidCredentials(Exception):
    """Wrong password, unknown email, or an inactive user or tenant: one generic answer."""


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
    session: Session, *, tenant: Tenant, email: str, password: str, role: Role
) -> User:
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
    session.flush()
    return user


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


def authenticate(session: Session, *, email: str, password: str, client_address: str) -> User:
    """Check throttling and credentials; record the outcome (AUTH event, failure counter).

    Commits, because a failure must be counted even though the request then fails.
    """
    email = normalize_email(email)
    check_login_throttle(session, email=email, client_address=client_address)
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
        assert user is not None
        session.execute(delete(LoginFailure).where(LoginFailure.email == email))
    else:
        session.add(LoginFailure(email=email[:254], client_address=client_address[:64]))
        # Failures older than the window no longer count: don't keep them.
        session.execute(
            delete(LoginFailure).where(LoginFailure.attempted_at < utcnow() - FAILURE_WINDOW)
        )
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


def start_session(session: Session, user: User, *, max_age_seconds: int) -> str:
    """A fresh random id at every login (no fixation); only its digest is stored."""
    raw = new_opaque_token()
    session.add(
        UserSession(
            tenant_id=user.tenant_id,
            user_id=user.id,
            session_hash=token_digest(raw),
            expires_at=utcnow() + timedelta(seconds=max_age_seconds),
        )
    )
    session.commit()
    return raw


def issue_api_token(session: Session, user: User, *, max_age_seconds: int) -> str:
    raw = new_opaque_token()
    session.add(
        ApiToken(
            tenant_id=user.tenant_id,
            user_id=user.id,
            token_hash=token_digest(raw),
            expires_at=utcnow() + timedelta(seconds=max_age_seconds),
        )
    )
    session.commit()
    return raw


def _resolve(session: Session, model: type[UserSession] | type[ApiToken], raw: str) -> User | None:
    digest_column = model.session_hash if model is UserSession else model.token_hash  # type: ignore[union-attr]
    statement = (
        select(User)
        .join(model, model.user_id == User.id)
        .where(
            digest_column == token_digest(raw),
            model.revoked_at.is_(None),
            model.expires_at > utcnow(),
            User.is_active.is_(True),
        )
        .execution_options(**{AUTH_LOOKUP: True})
    )
    user = session.scalar(statement)
    if user is None or not user.tenant.is_active:
        return None
    bind_tenant(session, user.tenant_id)
    return user


def user_for_session(session: Session, raw_session_id: str) -> User | None:
    """The active user behind a browser session id, with the session bound to their tenant."""
    return _resolve(session, UserSession, raw_session_id)


def user_for_api_token(session: Session, raw_token: str) -> User | None:
    return _resolve(session, ApiToken, raw_token)


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
