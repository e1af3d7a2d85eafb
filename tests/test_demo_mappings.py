"""Demo signal mappings (DESIGN.md §3, §9): seed_demo_signal_mappings, its script, app startup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import tests.conftest as shared
from tests.connectors.fake_pi import DATA_SERVER, PASSWORD, USERNAME
from tests.peers import closed_port_url, fake_pi_server, integration_rows, mapping_rows
from webapp.assets.models import Asset
from webapp.cli import migrate
from webapp.config import PROJECT_ROOT, Settings
from webapp.db import create_db_engine, create_session_factory, tenant_session
from webapp.demo.seed import (
    COMMON_SIGNALS,
    DEMO_ASSETS,
    DEMO_CONNECTOR_NAME,
    DEMO_PI_NAME,
    DEMO_TENANT_CODE,
    SIGNALS_BY_TYPE,
    DemoTenantMissing,
    seed_demo_signal_mappings,
    seed_demo_tenant,
)
from webapp.integrations.models import ExternalSignalMapping
from webapp.integrations.secrets import SecretVault
from webapp.main import create_app
from webapp.tenancy.models import Tenant

DEMO_PASSWORD = "cheap-demo-pw"
NO_PI: dict[str, Any] = {
    "pi_base_url": None, "pi_data_server": None, "pi_username": None, "pi_password": None,
}


def settings_for(database_url: str, **overrides: Any) -> Settings:
    return shared.test_settings(database_url, **{**NO_PI, **overrides})


def seed_tenant(factory: sessionmaker[Session]) -> int:
    with tenant_session(factory, None) as session:
        seed_demo_tenant(session, password=DEMO_PASSWORD)
    with tenant_session(factory, None) as session:
        return session.query(Tenant).filter_by(code=DEMO_TENANT_CODE).one().id


def seed_mappings(factory: sessionmaker[Session], settings: Settings) -> Any:
    with tenant_session(factory, None) as session:
        return seed_demo_signal_mappings(session, settings)


def expected_signals() -> set[tuple[str, str, str, str]]:
    """(asset code, metric, tag, unit) for every demo asset, from the seed's own tables."""
    expected = set()
    for code, _name, asset_type, *_ in DEMO_ASSETS:
        for metric, suffix, unit in COMMON_SIGNALS + SIGNALS_BY_TYPE.get(asset_type, ()):
            expected.add((code, metric, f"PI:{code}.{suffix}", unit))
    return expected


def seeded_signals(engine: Engine, integration_id: int) -> set[tuple[str, str, str, str]]:
    with engine.connect() as connection:
        codes = dict(connection.execute(Asset.__table__.select().with_only_columns(
            Asset.__table__.c.id, Asset.__table__.c.code)).all())
    rows = mapping_rows(engine)
    for row in rows:
        assert (row["scaling_factor"], row["offset_value"], row["is_active"]) == (1.0, 0.0, True)
        assert row["integration_id"] == integration_id
    return {
        (codes[r["asset_id"]], r["internal_metric_name"], r["external_tag"], r["unit"])
        for r in rows
    }


def test_the_seed_maps_every_demo_signal_to_the_demo_connector(
    database_url: str, owner_engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    tenant_id = seed_tenant(session_factory)
    summary = seed_mappings(session_factory, settings_for(database_url))

    (integration,) = integration_rows(owner_engine)
    assert {k: integration[k] for k in ("tenant_id", "type", "name", "config", "is_active")} == {
        "tenant_id": tenant_id, "type": "demo", "name": DEMO_CONNECTOR_NAME,
        "config": {"mode": "demo"}, "is_active": True,
    }
    seeded = seeded_signals(owner_engine, integration["id"])
    assert seeded == expected_signals()
    assert all(r["tenant_id"] == tenant_id for r in mapping_rows(owner_engine))
    # The contract's three signals on every asset, spelled out.
    for code, *_ in DEMO_ASSETS:
        assert {(code, "vibration_rms", f"PI:{code}.VIB", "mm/s"),
                (code, "temperature", f"PI:{code}.TEMP", "°C"),
                (code, "pressure", f"PI:{code}.PRES", "bar")} <= seeded
    assert len(DEMO_ASSETS) >= 8 and len({a[2] for a in DEMO_ASSETS}) >= 4
    assert len(seeded) > 3 * len(DEMO_ASSETS), "type-specific extras exist"
    assert (summary.integration_type, summary.integration_name) == ("demo", DEMO_CONNECTOR_NAME)
    assert summary.integration_created is True
    assert summary.created_count == len(seeded) and summary.present_count == 0


def test_the_seed_gives_every_demo_asset_its_vibration_class(
    owner_engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    seed_tenant(session_factory)
    table = Asset.__table__
    with owner_engine.connect() as connection:
        classes = {code: (group, foundation) for code, group, foundation in connection.execute(
            table.select().with_only_columns(table.c.code, table.c.machine_group,
                                             table.c.foundation))}
    # ISO 20816-3: compressors and the turbine are large machines (group 1), the rest group 2;
    # every demo skid sits on a rigid foundation.
    assert classes == {
        "P-101": (2, "rigid"), "P-102": (2, "rigid"), "P-201": (2, "rigid"),
        "C-301": (1, "rigid"), "C-302": (1, "rigid"), "E-401": (2, "rigid"),
        "E-402": (2, "rigid"), "GT-501": (1, "rigid"), "V-601": (2, "rigid"),
        "V-602": (2, "rigid"),
    }


def test_the_demo_users_see_the_seeded_metrics_and_series(
    client: TestClient, database_url: str, session_factory: sessionmaker[Session]
) -> None:
    seed_tenant(session_factory)
    seed_mappings(session_factory, settings_for(database_url))
    token = client.post(
        "/api/auth/token", data={"username": "viewer@aramco.com", "password": DEMO_PASSWORD}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assets = client.get("/api/twins/assets", headers=headers).json()["assets"]
    by_type = {a["code"]: a for a in assets}
    for code, _name, asset_type, *_ in DEMO_ASSETS:
        asset_id = by_type[code]["id"]
        metrics = client.get(f"/api/twins/assets/{asset_id}/metrics", headers=headers).json()
        signals = COMMON_SIGNALS + SIGNALS_BY_TYPE.get(asset_type, ())
        assert metrics["metrics"] == [metric for metric, _, _ in signals]
        assert {d["integration_type"] for d in metrics["details"]} == {"demo"}
    first = by_type[DEMO_ASSETS[0][0]]["id"]
    series = client.get(
        f"/api/twins/assets/{first}/metrics/vibration_rms/series", headers=headers
    )
    assert series.status_code == 200 and len(series.json()["points"]) == 100


def test_a_second_run_creates_and_changes_nothing(
    database_url: str, owner_engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    seed_tenant(session_factory)
    settings = settings_for(database_url)
    first = seed_mappings(session_factory, settings)
    before = (integration_rows(owner_engine), mapping_rows(owner_engine))

    second = seed_mappings(session_factory, settings)

    assert (integration_rows(owner_engine), mapping_rows(owner_engine)) == before
    assert second.integration_created is False
    assert second.created_count == 0 and second.present_count == first.created_count


def test_an_edited_mapping_survives_a_reseed(
    database_url: str, owner_engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    """Idempotent means "fill the gaps": operators' changes to seeded rows are kept."""
    tenant_id = seed_tenant(session_factory)
    settings = settings_for(database_url)
    seed_mappings(session_factory, settings)
    with tenant_session(session_factory, tenant_id) as session:
        mapping = session.query(ExternalSignalMapping).order_by(ExternalSignalMapping.id).first()
        assert mapping is not None
        mapping.scaling_factor, mapping.is_active = 0.5, False
        session.commit()
    before = mapping_rows(owner_engine)
    summary = seed_mappings(session_factory, settings)
    assert summary.created_count == 0 and mapping_rows(owner_engine) == before


def test_a_missing_demo_tenant_is_reported_and_nothing_is_written(
    database_url: str, owner_engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    with pytest.raises(DemoTenantMissing, match=DEMO_TENANT_CODE):
        seed_mappings(session_factory, settings_for(database_url))
    assert integration_rows(owner_engine) == [] and mapping_rows(owner_engine) == []


def test_a_reachable_pi_web_api_gets_the_demo_signals(
    database_url: str, owner_engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    seed_tenant(session_factory)
    with fake_pi_server() as pi:
        settings = settings_for(
            database_url, pi_base_url=pi.base_url, pi_data_server=DATA_SERVER,
            pi_username=USERNAME, pi_password=PASSWORD, pi_verify_tls=False,
        )
        summary = seed_mappings(session_factory, settings)
        asked = [path for path, _ in pi.requests]

    assert asked == ["/piwebapi/"], "the seed checked PI's root with the credentials"
    (integration,) = integration_rows(owner_engine)
    assert (integration["type"], integration["name"]) == ("pi", DEMO_PI_NAME)
    stored = integration["config"]
    assert stored["password"].startswith("enc:v1:"), "the PI password is sealed at rest"
    assert SecretVault.from_settings(settings).reveal(stored) == {
        "base_url": settings.pi_base_url, "data_server": DATA_SERVER, "username": USERNAME,
        "password": PASSWORD, "verify_tls": False,
    }
    assert "fallback" not in integration["config"]
    assert seeded_signals(owner_engine, integration["id"]) == expected_signals()
    assert (summary.integration_type, summary.integration_name) == ("pi", DEMO_PI_NAME)


def test_an_unusable_pi_web_api_falls_back_to_the_demo_connector(
    database_url: str, owner_engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    seed_tenant(session_factory)
    pi_settings = {
        "pi_data_server": DATA_SERVER, "pi_username": USERNAME, "pi_verify_tls": False,
    }
    with fake_pi_server() as pi:
        for base_url, password in ((pi.base_url, "wrong"), (closed_port_url(), PASSWORD)):
            settings = settings_for(
                database_url, pi_base_url=base_url, pi_password=password, **pi_settings
            )
            seed_mappings(session_factory, settings)  # the second run finds the first's rows
    (integration,) = integration_rows(owner_engine)
    assert (integration["type"], integration["name"]) == ("demo", DEMO_CONNECTOR_NAME)
    assert seeded_signals(owner_engine, integration["id"]) == expected_signals()


# --- the script and app startup --------------------------------------------------------------


def start_script(database_url: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTRIA_")}
    env["OPTRIA_DATABASE_URL"] = database_url
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "seed_demo_mappings.py")],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_the_script_prints_a_summary_and_fails_without_the_tenant(tmp_path: Path) -> None:
    empty_url = f"sqlite:///{tmp_path / 'empty.db'}"
    seeded_url = f"sqlite:///{tmp_path / 'seeded.db'}"
    for url in (empty_url, seeded_url):
        migrate(shared.test_settings(url))
    engine = create_db_engine(seeded_url)
    try:
        seed_tenant(create_session_factory(engine))
    finally:
        engine.dispose()

    # Both runs at once: each pays the interpreter's start-up, the suite pays it once.
    missing, seeding = start_script(empty_url), start_script(seeded_url)
    missing_out, missing_err = missing.communicate(timeout=60)
    out, err = seeding.communicate(timeout=60)

    assert missing.returncode != 0
    assert "error" in missing_err.lower() and DEMO_TENANT_CODE in missing_err
    assert "Traceback" not in missing_err and missing_out == ""

    assert seeding.returncode == 0, err
    lines = out.splitlines()
    for code, _name, asset_type, *_ in DEMO_ASSETS:
        (line,) = [line for line in lines if line.split()[:1] == [code]]
        for metric, _, _ in COMMON_SIGNALS + SIGNALS_BY_TYPE.get(asset_type, ()):
            assert metric in line
    assert DEMO_CONNECTOR_NAME in out
    assert f"{len(expected_signals())} created, 0 already present" in out
    engine = create_db_engine(seeded_url)
    try:
        assert len(mapping_rows(engine)) == len(expected_signals())
    finally:
        engine.dispose()


def test_startup_in_demo_mode_seeds_mappings_only_when_the_tenant_exists(
    database_url: str, owner_engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    settings = settings_for(database_url, demo_mode=True)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
    assert integration_rows(owner_engine) == [] and mapping_rows(owner_engine) == []

    seed_tenant(session_factory)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
    (integration,) = integration_rows(owner_engine)
    assert integration["name"] == DEMO_CONNECTOR_NAME
    assert seeded_signals(owner_engine, integration["id"]) == expected_signals()

    # Outside demo mode startup leaves the database alone.
    before = mapping_rows(owner_engine)
    with TestClient(create_app(settings_for(database_url, demo_mode=False))) as client:
        assert client.get("/healthz").status_code == 200
    assert mapping_rows(owner_engine) == before
