from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.db import Base, TenantMixin, same_tenant, tenant_parent_key, utcnow


class Role(enum.StrEnum):
    """viewer reads; operator also acknowledges and shelves alarms; engineer also edits assets,
    mappings and alarm limits; tenant_admin also manages integrations and users."""

    viewer = "viewer"
    operator = "operator"
    engineer = "engineer"
    tenant_admin = "tenant_admin"
    platform_admin = "platform_admin"


ROLE_RANK = {
    Role.viewer: 1, Role.operator: 2, Role.engineer: 3, Role.tenant_admin: 4,
    Role.platform_admin: 5,
}


class Tenant(Base):
    __tablename__ = "tenant"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Shift start times on the plant's clock, "HH:MM,HH:MM" (DESIGN.md §18, the logbook's shift
    # summary); NULL or malformed means the default (webapp/logbook/shift.py).
    shift_starts: Mapped[str | None] = mapped_column(
        String(64), default="06:00,18:00", server_default="06:00,18:00"
    )


class User(TenantMixin, Base):
    __tablename__ = "user"
    __table_args__ = (tenant_parent_key(),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32), default=Role.viewer.value)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str] = mapped_column(String(8), default="en")

    tenant: Mapped[Tenant] = relationship(lazy="joined", innerjoin=True)



class ApiToken(TenantMixin, Base):
    """Opaque bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_token"
    __table_args__ = (same_tenant("api_token", "user_id", "user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class UserSession(TenantMixin, Base):
    """Server-side browser session; the cookie holds only the random id, stored hashed here."""

    __tablename__ = "user_session"
    __table_args__ = (same_tenant("user_session", "user_id", "user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]  # absolute end (12 h after login)
    revoked_at: Mapped[datetime | None]
    # Idle timeout (DESIGN.md §16): refreshed at most once a minute by requests and by the
    # session's open live streams; NULL (sessions from before it existed) means created_at.
    last_seen_at: Mapped[datetime | None]


class LoginFailure(Base):
    """Failed logins, counted per email and per client address for throttling (DESIGN.md §5).

    Not tenant-owned: an unknown email has no tenant, and a 429 must not reveal which exist.
    """

    __tablename__ = "login_failure"
    __table_args__ = (
        Index("ix_login_failure_email_attempted_at", "email", "attempted_at"),
        Index("ix_login_failure_client_attempted_at", "client_address", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    client_address: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
