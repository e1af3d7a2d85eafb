from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base, TenantMixin, same_tenant, tenant_parent_key, utcnow


class Asset(TenantMixin, Base):
    __tablename__ = "asset"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        tenant_parent_key(),
        same_tenant("asset", "parent_id", "asset"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    asset_type: Mapped[str] = mapped_column(String(64))
    criticality: Mapped[str] = mapped_column(String(16), default="medium")
    location: Mapped[str | None] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("asset.id"), index=True)


class AssetAIScore(TenantMixin, Base):
    __tablename__ = "asset_ai_score"
    __table_args__ = (
        CheckConstraint("score >= 0 AND score <= 100", name="score_range"),
        same_tenant("asset_ai_score", "asset_id", "asset"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("asset.id"), index=True)
    score: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
