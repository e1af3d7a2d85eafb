from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base, TenantMixin, same_tenant, tenant_parent_key, utcnow

LEVELS = ("hihi", "hi", "lo", "lolo")
PRIORITIES = ("high", "medium", "low")
MAX_DELAY_SECONDS = 3600


class AlarmLimit(TenantMixin, Base):
    """A limit on one mapped signal. Never deleted: deactivate it, so history stays explainable."""

    __tablename__ = "alarm_limit"
    __table_args__ = (
        UniqueConstraint("tenant_id", "mapping_id", "level"),
        tenant_parent_key(),  # occurrences (blackbox_incident) point at limits
        same_tenant("alarm_limit", "mapping_id", "external_signal_mapping"),
        CheckConstraint("level IN ('hihi', 'hi', 'lo', 'lolo')", name="level"),
        CheckConstraint("priority IN ('high', 'medium', 'low')", name="priority"),
        CheckConstraint("deadband >= 0", name="deadband"),
        CheckConstraint(
            f"on_delay_seconds BETWEEN 0 AND {MAX_DELAY_SECONDS} "
            f"AND off_delay_seconds BETWEEN 0 AND {MAX_DELAY_SECONDS}",
            name="delays",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mapping_id: Mapped[int] = mapped_column(ForeignKey("external_signal_mapping.id"), index=True)
    level: Mapped[str] = mapped_column(String(8))
    threshold: Mapped[float] = mapped_column(Float)
    deadband: Mapped[float] = mapped_column(Float, default=0.0)
    on_delay_seconds: Mapped[int] = mapped_column(Integer, default=0)
    off_delay_seconds: Mapped[int] = mapped_column(Integer, default=0)
    priority: Mapped[str] = mapped_column(String(8))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    out_of_service: Mapped[bool] = mapped_column(Boolean, default=False)
    shelved_until: Mapped[datetime | None]
    shelve_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
