from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base, TenantMixin, same_tenant, tenant_parent_key, utcnow


class Asset(TenantMixin, Base):
    __tablename__ = "asset"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        tenant_parent_key(),
        same_tenant("asset", "parent_id", "asset"),
        CheckConstraint("machine_group IN (1, 2)", name="machine_group"),
        CheckConstraint("foundation IN ('rigid', 'flexible')", name="foundation"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    asset_type: Mapped[str] = mapped_column(String(64))
    criticality: Mapped[str] = mapped_column(String(16), default="medium")
    location: Mapped[str | None] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("asset.id"), index=True)
    # ISO 20816-3 classification (DESIGN.md §15); unset: group 1 for compressors and turbines,
    # 2 otherwise, on a rigid foundation.
    machine_group: Mapped[int | None] = mapped_column(Integer)
    foundation: Mapped[str | None] = mapped_column(String(8))


class AssetAIScore(TenantMixin, Base):
    __tablename__ = "asset_ai_score"
    __table_args__ = (
        CheckConstraint("score >= 0 AND score <= 100", name="score_range"),
        same_tenant("asset_ai_score", "asset_id", "asset"),
        Index("ix_asset_ai_score_asset_id_computed_at", "asset_id", "computed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("asset.id"), index=True)
    score: Mapped[float | None] = mapped_column(Float)  # NULL: no data (§15)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
