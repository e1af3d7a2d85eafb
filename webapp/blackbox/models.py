from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base, TenantMixin, same_tenant, tenant_parent_key, utcnow

SEVERITIES = ("INFO", "WARNING", "CRITICAL")


class BlackBoxEvent(TenantMixin, Base):
    __tablename__ = "blackbox_event"
    __table_args__ = (
        Index("ix_blackbox_event_tenant_id_event_time", "tenant_id", "event_time"),
        # The chain head lookup (newest id of a tenant), and the parent key of the
        # incidents' tenant keys (DESIGN.md §16).
        tenant_parent_key(),
        same_tenant("blackbox_event", "asset_id", "asset"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("asset.id"), index=True)
    source_system: Mapped[str] = mapped_column(String(64))
    source_type: Mapped[str] = mapped_column(String(64))
    event_category: Mapped[str] = mapped_column(String(32))
    event_time: Mapped[datetime] = mapped_column(default=utcnow)
    severity: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The tenant's hash chain (webapp.blackbox.chain), hex SHA-256; set by record_event.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class BlackBoxIncident(TenantMixin, Base):
    """An incident; an alarm occurrence (DESIGN.md §14) is one whose alarm_limit_id is set."""

    __tablename__ = "blackbox_incident"
    __table_args__ = (
        tenant_parent_key(),  # logbook entries point at alarms (migration 0006)
        same_tenant("blackbox_incident", "asset_id", "asset"),
        same_tenant("blackbox_incident", "first_event_id", "blackbox_event"),
        same_tenant("blackbox_incident", "last_event_id", "blackbox_event"),
        same_tenant("blackbox_incident", "alarm_limit_id", "alarm_limit"),
        same_tenant("blackbox_incident", "acknowledged_by", "user"),
        # At most one occurrence of a limit that is not closed: two scanners (a failover)
        # or a restart can never open a second one.
        Index(
            "uq_blackbox_incident_open_alarm",
            "alarm_limit_id",
            unique=True,
            postgresql_where=text("closed_at IS NULL AND alarm_limit_id IS NOT NULL"),
            sqlite_where=text("closed_at IS NULL AND alarm_limit_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("asset.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    first_event_id: Mapped[int | None] = mapped_column(ForeignKey("blackbox_event.id"))
    last_event_id: Mapped[int | None] = mapped_column(ForeignKey("blackbox_event.id"))
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    # Alarm occurrences (§14): NULL on other incidents.
    alarm_limit_id: Mapped[int | None] = mapped_column(ForeignKey("alarm_limit.id"), index=True)
    priority: Mapped[str | None] = mapped_column(String(8))
    trigger_value: Mapped[float | None] = mapped_column(Float)
    cleared_at: Mapped[datetime | None]
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
