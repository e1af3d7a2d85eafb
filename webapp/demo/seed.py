"""The demo tenant ARAMCO_DEMO: users and a realistic set of plant assets. Idempotent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.alarms.evaluation import Level, ordering_problem
from webapp.alarms.models import AlarmLimit
from webapp.alarms.schemas import LevelName, LimitCreate, PriorityName
from webapp.alarms.service import create_limit
from webapp.assets.models import Asset
from webapp.assets.schemas import AssetCreate
from webapp.assets.service import create_asset, get_asset_by_code
from webapp.config import Settings, get_settings
from webapp.db import bind_tenant
from webapp.health.model import ZONE_BOUNDARIES, foundation_of, machine_group_of
from webapp.integrations.models import ExternalSignalMapping, TenantIntegration
from webapp.integrations.schemas import IntegrationCreate, MappingCreate
from webapp.integrations.service import SourceAccess, create_integration, create_mapping
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
    ("operator@aramco.com", Role.operator),
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
            session.commit()  # its CONFIG event holds the chain lock: not over the next hash
            summary.users_created.append(email)
    for code, name, asset_type, criticality, location in DEMO_ASSETS:
        if get_asset_by_code(session, code) is None:
            # The §15 defaults, spelled out: the demo source plays vibration in the zones
            # of exactly these classes (webapp/connectors/demo.py).
            asset = AssetCreate(
                code=code, name=name, asset_type=asset_type, criticality=criticality,
                location=location, machine_group=machine_group_of(asset_type, None),
                foundation=foundation_of(None),
            )
            create_asset(session, asset, actor_id=None)
            summary.assets_created.append(code)
    session.commit()
    return summary


def demo_tenant(session: Session) -> Tenant | None:
    return get_tenant_by_code(session, DEMO_TENANT_CODE)


# --- signal mappings (P2) --------------------------------------------------------------------

# (metric, tag suffix, unit) for every asset, then extras by asset type.
COMMON_SIGNALS = (
    ("vibration_rms", "VIB", "mm/s"),
    ("temperature", "TEMP", "°C"),
    ("pressure", "PRES", "bar"),
)
SIGNALS_BY_TYPE = {
    "centrifugal_pump": (("flow_rate", "FLOW", "m³/h"),),
    "gas_compressor": (("power", "POWER", "kW"), ("shaft_speed", "SPEED", "rpm")),
    "heat_exchanger": (("differential_pressure", "DP", "bar"),),
    "gas_turbine": (("power", "POWER", "kW"), ("shaft_speed", "SPEED", "rpm")),
    "separator": (("liquid_level", "LEVEL", "%"),),
}
DEMO_CONNECTOR_NAME = "Demo ARAMCO Connector"
DEMO_PI_NAME = "Demo ARAMCO PI"


class DemoTenantMissing(LookupError):
    pass


@dataclass
class MappingSeedSummary:
    integration_type: str
    integration_name: str
    integration_created: bool
    created: dict[str, list[str]] = field(default_factory=dict)
    present: dict[str, list[str]] = field(default_factory=dict)
    limits_created: int = 0

    @property
    def created_count(self) -> int:
        return sum(len(metrics) for metrics in self.created.values())

    @property
    def present_count(self) -> int:
        return sum(len(metrics) for metrics in self.present.values())


def pi_answers(settings: Settings) -> bool:
    """The seed maps to PI only when PI Web API really answers with these credentials."""
    if not settings.pi_base_url or not settings.pi_data_server:
        return False
    auth = (
        (settings.pi_username, settings.pi_password or "") if settings.pi_username else None
    )
    try:
        response = httpx.get(
            settings.pi_base_url.rstrip("/") + "/",
            auth=auth,
            verify=settings.pi_verify_tls,
            timeout=settings.connector_timeout_seconds,
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _demo_integration(session: Session, settings: Settings) -> tuple[TenantIntegration, bool]:
    if pi_answers(settings):
        integration_type, name = "pi", DEMO_PI_NAME
        config: dict[str, Any] = {
            "base_url": settings.pi_base_url,
            "data_server": settings.pi_data_server,
            "username": settings.pi_username,
            "password": settings.pi_password,
            "verify_tls": settings.pi_verify_tls,
        }
    else:
        integration_type, name, config = "demo", DEMO_CONNECTOR_NAME, {"mode": "demo"}
    existing = session.scalar(
        select(TenantIntegration).where(
            TenantIntegration.type == integration_type, TenantIntegration.name == name
        )
    )
    if existing is not None:
        return existing, False
    integration = create_integration(
        session,
        IntegrationCreate(type=integration_type, name=name, config=config),
        access=SourceAccess.from_settings(settings),
        actor_id=None,
    )
    return integration, True


def seed_demo_signal_mappings(
    db_session: Session, settings: Settings | None = None
) -> MappingSeedSummary:
    """Map every demo asset's standard and type-specific signals. Idempotent."""
    settings = settings or get_settings()
    tenant = demo_tenant(db_session)
    if tenant is None:
        raise DemoTenantMissing(
            f"tenant {DEMO_TENANT_CODE} does not exist; run `optria-iq seed-demo` first"
        )
    bind_tenant(db_session, tenant.id)
    mapped_to = {
        (mapping.asset_id, mapping.internal_metric_name): mapping.integration_id
        for mapping in db_session.scalars(select(ExternalSignalMapping))
    }
    wanted = [
        (asset, metric, suffix, unit)
        for asset in db_session.scalars(select(Asset).order_by(Asset.code))
        for metric, suffix, unit in COMMON_SIGNALS + SIGNALS_BY_TYPE.get(asset.asset_type, ())
    ]
    if mapped_to and all((asset.id, metric) in mapped_to for asset, metric, _, _ in wanted):
        # Nothing to add: report the integration in use, and create none (idempotent even
        # when the PI settings changed since the first run).
        integration = db_session.get(TenantIntegration, next(iter(mapped_to.values())))
        assert integration is not None
        integration_created = False
    else:
        integration, integration_created = _demo_integration(db_session, settings)
    summary = MappingSeedSummary(integration.type, integration.name, integration_created)
    for asset, metric, suffix, unit in wanted:
        created = summary.created.setdefault(asset.code, [])
        present = summary.present.setdefault(asset.code, [])
        if (asset.id, metric) in mapped_to:
            present.append(metric)
            continue
        mapping = MappingCreate(
            asset_id=asset.id,
            integration_id=integration.id,
            internal_metric_name=metric,
            external_tag=f"PI:{asset.code}.{suffix}",
            unit=unit,
        )
        create_mapping(db_session, mapping, actor_id=None)
        created.append(metric)
    db_session.commit()
    summary.limits_created = seed_demo_alarm_limits(
        db_session, [(asset, metric) for asset, metric, _, _ in wanted]
    )
    return summary


# --- alarm limits (P4) -----------------------------------------------------------------------

# Every limit waits ON_DELAY before activating: longer than any one-minute spike of the demo
# source stays beyond a limit (under 2 minutes), shorter than any of its episodes. It waits
# OFF_DELAY before clearing, so a spike back into the normal band does not end an alarm.
ON_DELAY_SECONDS = 180
OFF_DELAY_SECONDS = 120
PRIORITY_BY_LEVEL: dict[LevelName, PriorityName] = {
    "hihi": "high", "hi": "medium", "lo": "medium", "lolo": "high",
}
LOW_TO_HIGH: tuple[LevelName, ...] = ("lolo", "lo", "hi", "hihi")

# metric → (deadband, {level: threshold}), in the metric's unit. The thresholds frame the normal
# band the demo source plays (webapp/connectors/demo.py, in the comments) with room to spare;
# each deadband is ≥ 3 noise amplitudes of the demo signal, so noise at a limit cannot toggle
# it. Vibration is apart: its thresholds are the asset's ISO 20816-3 boundaries.
DEMO_LIMITS: dict[str, tuple[float, dict[LevelName, float]]] = {
    "temperature": (2.0, {"hi": 95.0, "hihi": 105.0}),  # band 41–87 °C
    "pressure": (1.0, {"lolo": 4.0, "lo": 6.0, "hi": 28.0, "hihi": 32.0}),  # 9–25 bar
    "flow_rate": (15.0, {"lolo": 60.0, "lo": 100.0, "hi": 400.0}),  # 131–349 m³/h
    "power": (25.0, {"hi": 650.0, "hihi": 750.0}),  # 260–580 kW
    "shaft_speed": (10.0, {"lo": 2850.0, "hi": 3100.0, "hihi": 3200.0}),  # 2903–3017 rpm
    "differential_pressure": (0.1, {"hi": 2.0, "hihi": 2.5}),  # 0.5–1.7 bar
    "liquid_level": (3.0, {"lolo": 10.0, "lo": 20.0, "hi": 85.0, "hihi": 92.0}),  # 34–77 %
}
# Vibration: hi at the B/C boundary (zone C: restricted operation), hihi at C/D (zone D: damage);
# the deadband is 10 % of the B/C boundary, ≥ 3 noise amplitudes of the demo vibration.
VIBRATION_DEADBAND_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class DemoLimit:
    level: LevelName
    threshold: float
    deadband: float
    priority: PriorityName
    on_delay_seconds: int = ON_DELAY_SECONDS
    off_delay_seconds: int = OFF_DELAY_SECONDS


def demo_limits(
    metric: str, asset_type: str, machine_group: int | None = None, foundation: str | None = None
) -> tuple[DemoLimit, ...]:
    """The seeded limits of one demo signal, lolo to hihi (none for an unknown metric)."""
    if metric == "vibration_rms":
        group = machine_group_of(asset_type, machine_group)
        _, b_c, c_d = ZONE_BOUNDARIES[group, foundation_of(foundation)]
        deadband = round(VIBRATION_DEADBAND_SHARE * b_c, 3)
        thresholds: dict[LevelName, float] = {"hi": b_c, "hihi": c_d}
    elif metric in DEMO_LIMITS:
        deadband, thresholds = DEMO_LIMITS[metric]
    else:
        return ()
    return tuple(
        DemoLimit(level, thresholds[level], deadband, PRIORITY_BY_LEVEL[level])
        for level in LOW_TO_HIGH
        if level in thresholds
    )


def seed_demo_alarm_limits(db_session: Session, signals: list[tuple[Asset, str]]) -> int:
    """Give each (asset, metric) demo signal its limits; returns how many were created.

    Idempotent, and it fills gaps only: a level the signal already has (whatever an engineer
    made of it) is left alone, and so is a missing level that would no longer fit between the
    engineer's thresholds (lolo < lo < hi < hihi)."""
    mappings = {
        (mapping.asset_id, mapping.internal_metric_name): mapping.id
        for mapping in db_session.scalars(select(ExternalSignalMapping))
    }
    existing: dict[int, dict[str, tuple[float, bool]]] = {}
    for limit in db_session.scalars(select(AlarmLimit)):
        existing.setdefault(limit.mapping_id, {})[limit.level] = (limit.threshold, limit.is_active)
    created = 0
    for asset, metric in signals:
        mapping_id = mappings.get((asset.id, metric))
        if mapping_id is None:
            continue
        present = existing.setdefault(mapping_id, {})
        for spec in demo_limits(metric, asset.asset_type, asset.machine_group, asset.foundation):
            if spec.level in present:
                continue
            thresholds = {Level(level): value for level, (value, active) in present.items()
                          if active}  # fmt: skip
            if ordering_problem({**thresholds, Level(spec.level): spec.threshold}):
                continue
            create_limit(
                db_session,
                LimitCreate(
                    mapping_id=mapping_id, level=spec.level, threshold=spec.threshold,
                    deadband=spec.deadband, on_delay_seconds=spec.on_delay_seconds,
                    off_delay_seconds=spec.off_delay_seconds, priority=spec.priority,
                ),
                actor_id=None,
            )
            present[spec.level] = (spec.threshold, True)
            created += 1
    return created
