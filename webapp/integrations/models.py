from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base, TenantMixin, same_tenant, tenant_parent_key


class TenantIntegration(TenantMixin, Base):
    __tablename__ = "tenant_integration"
    __table_args__ = (tenant_parent_key(),)

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class ExternalSignalMapping(TenantMixin, Base):
    __tablename__ = "external_signal_mapping"
    __table_args__ = (
        UniqueConstraint("tenant_id", "asset_id", "internal_metric_name"),
        tenant_parent_key(),  # alarm limits point at mappings
        same_tenant("external_signal_mapping", "asset_id", "asset"),
        same_tenant("external_signal_mapping", "integration_id", "tenant_integration"),
        # NULL (an unset end) passes: the axis then comes from limits or history (§18).
        CheckConstraint("range_low < range_high", name="range_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("tenant_integration.id"), index=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("asset.id"), index=True)
    internal_metric_name: Mapped[str] = mapped_column(String(64))
    external_tag: Mapped[str] = mapped_column(String(512))
    scaling_factor: Mapped[float] = mapped_column(Float, default=1.0)
    offset_value: Mapped[float] = mapped_column(Float, default=0.0)
    unit: Mapped[str | None] = mapped_column(String(32))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The signal's engineering range, in scaled units: the trend's value axis (§18).
    range_low: Mapped[float | None] = mapped_column(Float)
    range_high: Mapped[float | None] = mapped_column(Float)
