"""Configuration audit (DESIGN.md §16): every create or change of an integration, mapping, asset
or user leaves one CONFIG event with who, what and field-by-field before/after, secrets
masked; a refused change leaves none. Both backends."""

from __future__ import annotations

from typing import Any

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers, browser_login
from tests.peers import events
from webapp.cli import main
from webapp.config import Settings, get_settings
from webapp.db import tenant_session
from webapp.demo.seed import seed_demo_signal_mappings, seed_demo_tenant

PI = {
    "base_url": "https://pi.example.com/piwebapi", "data_server": "PISRV01",
    "username": "svc", "password": "first-pw", "verify_tls": True,
}


def config_events(engine: Engine, tenant_id: int) -> list[dict[str, Any]]:
    return events(engine, tenant_id=tenant_id, category="CONFIG")


def new_events(engine: Engine, tenant_id: int, before: int) -> list[dict[str, Any]]:
    return config_events(engine, tenant_id)[before:]


def test_integration_create_and_changes_are_recorded_with_secrets_masked(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    a = tenant_a.tenant.id
    headers = bearer_headers(client, tenant_a.admin.email)
    start = len(config_events(owner_engine, a))
    created = client.post("/api/integrations", json={"type": "pi", "name": "PI", "config": PI},
                          headers=headers)
    pi_id = created.json()["id"]
    (event,) = new_events(owner_engine, a, start)
    assert (event["source_system"], event["source_type"], event["severity"]) == (
        "OPTRIA_ADMIN", "INTEGRATION_CREATED", "INFO"
    )
    assert event["asset_id"] is None
    assert event["payload"] == {
        "user_id": tenant_a.admin.id, "object": "integration", "object_id": pi_id,
        "changes": {
            "type": [None, "pi"], "name": [None, "PI"], "is_active": [None, True],
            "config.base_url": [None, PI["base_url"]], "config.data_server": [None, "PISRV01"],
            "config.username": [None, "svc"], "config.password": [None, "***"],
            "config.verify_tls": [None, True],
        },
    }

    masked = created.json()["config"]
    start = len(config_events(owner_engine, a))
    changed = client.patch(
        f"/api/integrations/{pi_id}",
        json={"name": "PI north", "config": {**masked, "password": "second-pw"}},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    (event,) = new_events(owner_engine, a, start)
    assert event["source_type"] == "INTEGRATION_UPDATED"
    # The password changed: the record says so, and never what it was or is.
    assert event["payload"]["changes"] == {
        "name": ["PI", "PI north"], "config.password": ["***", "***"],
    }
    assert "first-pw" not in str(event) and "second-pw" not in str(event)


def test_no_change_no_event_and_a_refused_change_leaves_nothing(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    a = tenant_a.tenant.id
    headers = bearer_headers(client, tenant_a.admin.email)
    created = client.post("/api/integrations", json={"type": "pi", "name": "PI", "config": PI},
                          headers=headers).json()
    start = len(config_events(owner_engine, a))
    same = client.patch(f"/api/integrations/{created['id']}",
                        json={"name": "PI", "config": created["config"]}, headers=headers)
    assert same.status_code == 200
    refused = client.patch(f"/api/integrations/{created['id']}",
                           json={"config": {**created["config"], "fallback": "maybe"}},
                           headers=headers)
    assert refused.status_code == 422
    assert new_events(owner_engine, a, start) == []


def test_mappings_and_assets_are_recorded_against_their_asset(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    a = tenant_a.tenant.id
    headers = bearer_headers(client, tenant_a.users["engineer"].email)
    admin = bearer_headers(client, tenant_a.admin.email)
    integration = client.post("/api/integrations",
                              json={"type": "demo", "name": "Demo", "config": {}},
                              headers=admin).json()
    start = len(config_events(owner_engine, a))
    asset = client.post(
        "/api/assets",
        json={"code": "K-900", "name": "Spare compressor", "asset_type": "gas_compressor",
              "criticality": "low", "location": "Yard"},
        headers=headers,
    ).json()
    mapping = client.post(
        "/api/mappings",
        json={"asset_id": asset["id"], "integration_id": integration["id"],
              "internal_metric_name": "temperature", "external_tag": "PI:K-900.TEMP",
              "unit": "°C"},
        headers=headers,
    ).json()
    client.patch(f"/api/mappings/{mapping['id']}",
                 json={"scaling_factor": 1.8, "offset_value": 32.0, "unit": "°F"},
                 headers=headers)
    asset_event, mapping_event, mapping_change = new_events(owner_engine, a, start)
    engineer = tenant_a.users["engineer"].id
    assert asset_event["source_type"] == "ASSET_CREATED"
    assert asset_event["asset_id"] == asset["id"]
    assert asset_event["payload"]["user_id"] == engineer
    assert asset_event["payload"]["changes"]["code"] == [None, "K-900"]
    assert mapping_event["source_type"] == "MAPPING_CREATED"
    assert mapping_event["asset_id"] == asset["id"]
    assert mapping_event["payload"]["changes"]["external_tag"] == [None, "PI:K-900.TEMP"]
    assert mapping_change["source_type"] == "MAPPING_UPDATED"
    assert mapping_change["payload"] == {
        "user_id": engineer, "object": "mapping", "object_id": mapping["id"],
        "changes": {"scaling_factor": [1.0, 1.8], "offset_value": [0.0, 32.0],
                    "unit": ["°C", "°F"]},
    }


def test_config_events_are_the_tenants_own(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    client.post("/api/integrations", json={"type": "demo", "name": "A's", "config": {}},
                headers=bearer_headers(client, tenant_a.admin.email))
    theirs = client.get("/api/blackbox/events?category=CONFIG",
                        headers=bearer_headers(client, tenant_b.admin.email)).json()["events"]
    assert theirs and all(e["payload"]["object"] == "user" for e in theirs), "only B's users"
    assert not any(e["source_type"] == "INTEGRATION_CREATED" for e in theirs)


def test_the_seed_and_the_cli_act_as_nobody(
    session_factory: sessionmaker[Session], owner_engine: Engine, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with tenant_session(session_factory, None) as session:
        seed_demo_tenant(session, password="demo-password")
        seed_demo_signal_mappings(session, settings.model_copy(update={"pi_base_url": None}))
    monkeypatch.setenv("OPTRIA_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        assert main(["create-user", "--tenant", "ARAMCO_DEMO", "--email", "ops@aramco.example",
                     "--password", "long enough pw", "--role", "viewer"]) == 0
    finally:
        get_settings.cache_clear()
    recorded = events(owner_engine, category="CONFIG")
    kinds = {event["source_type"] for event in recorded}
    assert {"USER_CREATED", "ASSET_CREATED", "INTEGRATION_CREATED", "MAPPING_CREATED"} <= kinds
    assert {event["payload"]["user_id"] for event in recorded} == {None}
    assert recorded[-1]["payload"]["changes"]["email"] == [None, "ops@aramco.example"]


def test_the_blackbox_screen_shows_configuration_changes_in_the_viewers_language(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    headers = bearer_headers(client, tenant_a.admin.email)
    created = client.post("/api/integrations", json={"type": "pi", "name": "PI", "config": PI},
                          headers=headers).json()
    browser_login(client, tenant_a.admin.email)
    for lang, words in (("en", "Integration created"), ("ar", "تم إنشاء تكامل")):
        page = client.get(f"/blackbox?category=CONFIG&lang={lang}", headers={"HX-Request": "true"})
        rows = BeautifulSoup(page.text, "html.parser").select("[data-role=event-row]")
        assert {row["data-category"] for row in rows} == {"CONFIG"}
        texts = [row.get_text(" ", strip=True) for row in rows]
        (shown,) = [text for text in texts if f"#{created['id']}" in text and words in text]
        assert "config.password" in shown and "first-pw" not in page.text
