from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base, TenantMixin, same_tenant, utcnow

MAX_TEXT_LENGTH = 4000


class LogbookEntry(TenantMixin, Base):
    """One note of the shift logbook (DESIGN.md §18). Append-only: never edited or deleted (a
    correction is a new entry); on PostgreSQL the app role may not UPDATE or DELETE it."""

    __tablename__ = "logbook_entry"
    __table_args__ = (
        # Newest first, per tenant: the list, `since`, and the shift summary.
        Index("ix_logbook_entry_tenant_id_created_at", "tenant_id", "created_at"),
        same_tenant("logbook_entry", "author_id", "user"),
        same_tenant("logbook_entry", "asset_id", "asset"),
        same_tenant("logbook_entry", "alarm_id", "blackbox_incident"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    text: Mapped[str] = mapped_column(String(MAX_TEXT_LENGTH))
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("asset.id"), index=True)
    # An alarm occurrence (§14): the alarm's id is its incident's id.
    alarm_id: Mapped[int | None] = mapped_column(ForeignKey("blackbox_incident.id"), index=True)

