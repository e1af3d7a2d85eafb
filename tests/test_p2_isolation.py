"""Cross-tenant matrix for every P2 route (DESIGN.md §4): another tenant's id behaves exactly like
a missing id — 404 (an empty list for filters), none of its data in the body, no BlackBox event
in either tenant, no row changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers
from tests.peers import add_integration, add_mapping, event_count, snapshot

# Strings that exist only in the victim tenant: none may ever reach the intruder.
VICTIM_SECRETS = (
    "victim-historian", "VICTIM.ONLY.TAG", "victim_only_metric", "v1ct1m-pw", "victim-db",
    "victim-unit",
)


@dataclass
class Side:
    world: TenantWorld
    integration_id: int
    mapping_ids: list[int]


def arrange(factory: sessionmaker[Session], intruder: TenantWorld, victim: TenantWorld) -> tuple[
    Side, Side
]:
    own_integration = add_integration(
        factory, intruder.tenant.id, type="demo", name="Own demo", config={}
    )
    own_mapping = add_mapping(
        factory, intruder.tenant.id, asset_id=intruder.assets[0].id,
        integration_id=own_integration, metric="vibration_rms", tag="PI:P-101.VIB", unit="mm/s",
    )
    victim_integration = add_integration(
        factory, victim.tenant.id, type="sql", name="victim-historian",
        config={"url": "postgresql+psycopg2://victim:v1ct1m-pw@victim-db/h", "table": "h",
                "fallback": "synthetic"},
    )
    victim_mappings = [
        add_mapping(
            factory, victim.tenant.id, asset_id=victim.assets[0].id,
            integration_id=victim_integration, metric=metric, tag="VICTIM.ONLY.TAG",
            unit="victim-unit",
        )
        # A metric name the intruder also uses, and one only the victim has.
        for metric in ("vibration_rms", "victim_only_metric")
    ]
    return (
        Side(intruder, own_integration, [own_mapping]),
        Side(victim, victim_integration, victim_mappings),
    )


def matrix(own: Side, victim: Side) -> list[tuple[str, str, dict[str, Any], int, Any]]:
    """(method, path, kwargs, expected status, expected body or None) for every P2 route."""
    v_asset, o_asset = victim.world.assets[0].id, own.world.assets[0].id
    v_mapping = victim.mapping_ids[0]
    series = "/api/twins/assets/{}/metrics/{}/series"
    return [
        ("GET", f"/api/twins/assets/{v_asset}/metrics", {}, 404, None),
        ("GET", series.format(v_asset, "vibration_rms"), {}, 404, None),
        ("GET", series.format(v_asset, "victim_only_metric"), {}, 404, None),
        ("GET", series.format(v_asset, "vibration_rms"), {"params": {"mode": "plot"}}, 404, None),
        ("GET", series.format(o_asset, "victim_only_metric"), {}, 404, None),
        ("GET", series.format(v_asset, "vibration_rms") + ".csv", {}, 404, None),
        ("GET", series.format(o_asset, "victim_only_metric") + ".csv", {}, 404, None),
        ("PATCH", f"/api/integrations/{victim.integration_id}",
         {"json": {"name": "pwned", "is_active": False}}, 404, None),
        ("PATCH", f"/api/integrations/{victim.integration_id}",
         {"json": {"config": {"url": "sqlite:///x.db", "table": "t"}}}, 404, None),
        ("POST", f"/api/integrations/{victim.integration_id}/test", {}, 404, None),
        ("PATCH", f"/api/mappings/{v_mapping}", {"json": {"scaling_factor": 99.0}}, 404, None),
        ("PATCH", f"/api/mappings/{v_mapping}", {"json": {"is_active": False}}, 404, None),
        ("POST", "/api/mappings",
         {"json": {"asset_id": v_asset, "integration_id": own.integration_id,
                   "internal_metric_name": "stolen", "external_tag": "X"}}, 404, None),
        ("POST", "/api/mappings",
         {"json": {"asset_id": o_asset, "integration_id": victim.integration_id,
                   "internal_metric_name": "stolen", "external_tag": "X"}}, 404, None),
        ("GET", "/api/mappings", {"params": {"asset_id": v_asset}}, 200, {"mappings": []}),
    ]


@pytest.mark.parametrize("direction", ["a-reads-b", "b-reads-a"])
def test_another_tenants_ids_behave_like_missing_ids(
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
    direction: str,
) -> None:
    intruder, victim = (tenant_a, tenant_b) if direction == "a-reads-b" else (tenant_b, tenant_a)
    own, target = arrange(session_factory, intruder, victim)
    # The tenant admin holds every permission, so a refusal can only be the tenant boundary.
    headers = bearer_headers(client, intruder.admin.email)
    events_before = {
        t.tenant.id: event_count(owner_engine, tenant_id=t.tenant.id) for t in (tenant_a, tenant_b)
    }
    rows_before = snapshot(owner_engine)

    for method, path, kwargs, status, body in matrix(own, target):
        response = client.request(method, path, headers=headers, **kwargs)
        assert response.status_code == status, (method, path, response.text)
        if body is not None:
            assert response.json() == body
        # (A 404 may echo what the intruder itself sent, e.g. a metric name in the path.)
        leaked = [s for s in VICTIM_SECRETS if s in response.text and s not in path]
        assert not leaked, (method, path, leaked)

    # The intruder's own listings hold only its own rows.
    integrations = client.get("/api/integrations", headers=headers).json()["integrations"]
    assert [i["id"] for i in integrations] == [own.integration_id]
    mappings = client.get("/api/mappings", headers=headers).json()["mappings"]
    assert [m["id"] for m in mappings] == own.mapping_ids
    for response_text in (str(integrations), str(mappings)):
        assert not any(s in response_text for s in VICTIM_SECRETS)

    events_after = {
        t.tenant.id: event_count(owner_engine, tenant_id=t.tenant.id) for t in (tenant_a, tenant_b)
    }
    assert events_after == events_before, "no BlackBox event in either tenant"
    assert snapshot(owner_engine) == rows_before, "no row written or changed anywhere"


def test_the_same_requests_on_own_ids_succeed(
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    """The matrix's 404s are the boundary, not broken routes: own ids answer normally."""
    own, _ = arrange(session_factory, tenant_a, tenant_b)
    headers = bearer_headers(client, tenant_a.admin.email)
    asset = tenant_a.assets[0].id
    series = f"/api/twins/assets/{asset}/metrics/vibration_rms/series"
    assert client.get(f"/api/twins/assets/{asset}/metrics", headers=headers).status_code == 200
    assert client.get(series, headers=headers).status_code == 200
    assert client.get(series, params={"mode": "plot"}, headers=headers).status_code == 200
    assert client.patch(f"/api/integrations/{own.integration_id}", json={"name": "renamed"},
                        headers=headers).status_code == 200
    assert client.post(f"/api/integrations/{own.integration_id}/test",
                       headers=headers).json()["ok"] is True
    assert client.patch(f"/api/mappings/{own.mapping_ids[0]}", json={"scaling_factor": 2.0},
                        headers=headers).status_code == 200
    created = client.post(
        "/api/mappings",
        json={"asset_id": asset, "integration_id": own.integration_id,
              "internal_metric_name": "temperature", "external_tag": "PI:P-101.TEMP"},
        headers=headers,
    )
    assert created.status_code == 201
    listed = client.get("/api/mappings", params={"asset_id": asset}, headers=headers).json()
    assert [m["id"] for m in listed["mappings"]] == [*own.mapping_ids, created.json()["id"]]
    # Two series reads: two SENSOR events, all in tenant A.
    assert event_count(owner_engine, tenant_id=tenant_a.tenant.id, category="SENSOR") == 2
    assert event_count(owner_engine, tenant_id=tenant_b.tenant.id, category="SENSOR") == 0
