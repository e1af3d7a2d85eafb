"""The demo tenant ARAMCO_DEMO: users and a realistic set of plant assets. Idempotent."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from webapp.assets.models import Asset
from webapp.assets.service import get_asset_by_code
from webapp.db import bind_tenant
from webapp.tenancy.models import Role, Tenant
from webapp.tenancy.service import (
    create_tenant,
    create_user,
    find_user_by_email,
    get_tenant_by_code,
)

DEMO_TENANT_CODE = "ARAMCO_DEMO"
DEMO_TENANT_NAME = "Aramco Demo Plant"
DEMO_TIMEZONE = "Asia/Riyadh"
DEMO_USERS = (
    ("demo@aramco.com", Role.tenant_admin),
    ("engineer@aramco.com", Role.engineer),
    ("viewer@aramco.com", Role.viewer),
)
# (code, name, asset_type, criticality, location)
DEMO_ASSETS = (
    ("P-101", "Crude Transfer Pump A", "centrifugal_pump", "high", "Ras Tanura · Tank Farm 3"),
    ("P-102", "Crude Transfer Pump B", "centrifugal_pump", "high", "Ras Tanura · Tank Farm 3"),
    ("P-201", "Seawater Injection Pump", "centrifugal_pump", "medium", "Abqaiq · Injection Plant"),
    ("C-301", "Gas Export Compressor", "gas_compressor", "high", "Abqaiq · Compression Train 1"),
    ("C-302", "Booster Compressor", "gas_compressor", "medium", "Abqaiq · Compression Train 2"),
    ("E-401", "Crude Preheat Exchanger", "heat_exchanger", "medium", "Ras Tanura · Crude Unit"),
    ("E-402", "Gas Aftercooler", "heat_exchanger", "low", "Abqaiq · Compression Train 1"),
    ("GT-501", "Power Generation Turbine", "gas_turbine", "high", "Abqaiq · Utilities"),
    ("V-601", "HP Production Separator", "separator", "medium", "Khurais · GOSP 1"),
    ("V-602", "Test Separator", "separator", "low", "Khurais · GOSP 1"),
)


@dataclass
class DemoSeedSummary:
    tenant_created: bool = False
    users_created: list[str] = field(default_factory=list)
    assets_created: list[str] = field(default_factory=list)


def seed_demo_tenant(session: Session, *, password: str) -> DemoSeedSummary:
    summary = DemoSeedSummary()
    tenant = get_tenant_by_code(session, DEMO_TENANT_CODE)
    if tenant is None:
        tenant = create_tenant(
            session, code=DEMO_TENANT_CODE, name=DEMO_TENANT_NAME, timezone=DEMO_TIMEZONE
        )
        summary.tenant_created = True
    bind_tenant(session, tenant.id)
    for email, role in DEMO_USERS:
        if find_user_by_email(session, email) is None:
            create_user(session, tenant=tenant, email=email, password=password, role=role)
            summary.users_created.append(email)
    for code, name, asset_type, criticality, location in DEMO_ASSETS:
        if get_asset_by_code(session, code) is None:
            session.add(
                Asset(
                    code=code,
                    name=name,
                    asset_type=asset_type,
                    criticality=criticality,
                    location=location,
                )
            )
            summary.assets_created.append(code)
    session.commit()
    return summary


def demo_tenant(session: Session) -> Tenant | None:
    return get_tenant_by_code(session, DEMO_TENANT_CODE)
