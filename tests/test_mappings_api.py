"""Signal mappings API (DESIGN.md §5): list (viewer+), create and PATCH (engineer+), 409 on a
duplicate (asset, metric), 404 for ids the tenant does not own, metric-name rule, no DELETE."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers
from tests.peers import (
    MINUTE,
    add_integration,
    add_mapping,
    floor_minute,
    iso,
    mapping_rows,
    minute_range,
    response_ns,
    same_floats,
    utcnow,
)
from webapp.connectors.demo import demo_values

MAPPING_FIELDS = (
    "id", "asset_id", "integration_id", "internal_metric_name", "external_tag",
    "scaling_factor", "offset_value", "unit", "is_active", "range_low", "range_high",
)


@dataclass
class World:
    a: TenantWorld
    b: TenantWorld
    a_integration: int
    b_integration: int


@pytest.fixture
def world(
    session_factory: sessionmaker[Session], tenant_a: TenantWorld, tenant_b: TenantWorld
) -> World:
    a_integration = add_integration(
        session_factory, tenant_a.tenant.id, type="demo", name="A demo", config={}
    )
    b_integration = add_integration(
        session_factory, tenant_b.tenant.id, type="demo", name="B demo", config={}
    )
    return World(tenant_a, tenant_b, a_integration, b_integration)


def as_api(row: dict[str, Any]) -> dict[str, Any]:
    return {field: row[field] for field in MAPPING_FIELDS}


def new_mapping(world: World, **overrides: Any) -> dict[str, Any]:
    body = {
        "asset_id": world.a.assets[0].id,
        "integration_id": world.a_integration,
        "internal_metric_name": "vibration_rms",
        "external_tag": "PI:P-101.VIB",
    }
    body.update(overrides)
    return body


def test_viewers_list_the_tenants_mappings_optionally_by_asset(
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    world: World,
) -> None:
    a, b = world.a, world.b
    for asset, metric, active in (
        (a.assets[0], "vibration_rms", True),
        (a.assets[1], "temperature", True),
        (a.assets[0], "pressure", False),
    ):
        add_mapping(
            session_factory, a.tenant.id, asset_id=asset.id, integration_id=world.a_integration,
            metric=metric, tag=f"PI:{asset.code}.{metric}", unit="u", scaling_factor=1.5,
            offset_value=-2.0, is_active=active,
        )
    add_mapping(
        session_factory, b.tenant.id, asset_id=b.assets[0].id, integration_id=world.b_integration,
        metric="vibration_rms", tag="PI:B.VIB",
    )
    a_rows = [as_api(r) for r in mapping_rows(owner_engine) if r["tenant_id"] == a.tenant.id]
    viewer = bearer_headers(client, a.users["viewer"].email)

    listed = client.get("/api/mappings", headers=viewer)
    assert listed.status_code == 200
    assert listed.json() == {"mappings": a_rows}  # inactive ones too: it is the admin view

    for asset in a.assets:
        filtered = client.get("/api/mappings", params={"asset_id": asset.id}, headers=viewer)
        assert filtered.json() == {
            "mappings": [r for r in a_rows if r["asset_id"] == asset.id]
        }
    unknown = client.get("/api/mappings", params={"asset_id": 999_999}, headers=viewer)
    assert unknown.status_code == 200 and unknown.json() == {"mappings": []}
    for bad in ("0", str(2**31), "x"):
        response = client.get("/api/mappings", params={"asset_id": bad}, headers=viewer)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][-1] == "asset_id"


def test_engineers_and_admins_create_mappings(
    client: TestClient, owner_engine: Engine, world: World
) -> None:
    headers = bearer_headers(client, world.a.users["engineer"].email)
    response = client.post("/api/mappings", json=new_mapping(world), headers=headers)

    assert response.status_code == 201, response.text
    (row,) = mapping_rows(owner_engine)
    assert row["tenant_id"] == world.a.tenant.id
    assert response.json() == as_api(row) == {
        "id": row["id"],
        **new_mapping(world),
        "scaling_factor": 1.0,
        "offset_value": 0.0,
        "unit": None,
        "is_active": True,
        "range_low": None,
        "range_high": None,
    }

    full = new_mapping(
        world, asset_id=world.a.assets[1].id, internal_metric_name="discharge_pressure",
        external_tag="ns=2;s=C-301.PD", scaling_factor=0.001, offset_value=1.01325,
        unit="bar", is_active=False,
    )
    admin = bearer_headers(client, world.a.admin.email)
    response = client.post("/api/mappings", json=full, headers=admin)
    assert response.status_code == 201
    assert response.json() == {
        "id": response.json()["id"], **full, "range_low": None, "range_high": None
    }
    assert as_api(mapping_rows(owner_engine)[-1]) == response.json()


def test_viewers_may_not_create_or_patch_mappings(
    client: TestClient, owner_engine: Engine, session_factory: sessionmaker[Session], world: World
) -> None:
    mapping_id = add_mapping(
        session_factory, world.a.tenant.id, asset_id=world.a.assets[0].id,
        integration_id=world.a_integration, metric="temperature", tag="T",
    )
    before = mapping_rows(owner_engine)
    viewer = bearer_headers(client, world.a.users["viewer"].email)
    assert client.post("/api/mappings", json=new_mapping(world), headers=viewer).status_code == 403
    patch = client.patch(f"/api/mappings/{mapping_id}", json={"unit": "K"}, headers=viewer)
    assert patch.status_code == 403
    assert mapping_rows(owner_engine) == before


def test_the_same_asset_and_metric_twice_is_409(
    client: TestClient, owner_engine: Engine, world: World
) -> None:
    headers = bearer_headers(client, world.a.users["engineer"].email)
    first = client.post("/api/mappings", json=new_mapping(world, is_active=False),
                        headers=headers)
    assert first.status_code == 201
    before = mapping_rows(owner_engine)

    # Even against an inactive mapping, and through another integration or tag.
    other = add_integration_via_api(client, world)
    again = client.post(
        "/api/mappings",
        json=new_mapping(world, integration_id=other, external_tag="OTHER.TAG"),
        headers=headers,
    )
    assert again.status_code == 409, again.text
    assert "vibration_rms" in again.json()["detail"]
    assert mapping_rows(owner_engine) == before

    # The same metric on another asset, and the same pair in another tenant, are fine.
    elsewhere = client.post(
        "/api/mappings", json=new_mapping(world, asset_id=world.a.assets[1].id), headers=headers
    )
    assert elsewhere.status_code == 201
    b_headers = bearer_headers(client, world.b.users["engineer"].email)
    in_b = client.post(
        "/api/mappings",
        json={**new_mapping(world), "asset_id": world.b.assets[0].id,
              "integration_id": world.b_integration},
        headers=b_headers,
    )
    assert in_b.status_code == 201


def add_integration_via_api(client: TestClient, world: World) -> int:
    admin = bearer_headers(client, world.a.admin.email)
    response = client.post(
        "/api/integrations", json={"type": "demo", "name": "second", "config": {}}, headers=admin
    )
    assert response.status_code == 201
    return response.json()["id"]


def test_ids_the_tenant_does_not_own_are_404(
    client: TestClient, owner_engine: Engine, world: World
) -> None:
    headers = bearer_headers(client, world.a.users["engineer"].email)
    for overrides in (
        {"asset_id": world.b.assets[0].id},
        {"integration_id": world.b_integration},
        {"asset_id": 999_999},
        {"integration_id": 999_999},
    ):
        response = client.post("/api/mappings", json=new_mapping(world, **overrides),
                               headers=headers)
        assert response.status_code == 404, (overrides, response.text)
    assert mapping_rows(owner_engine) == []


def test_metric_names_must_match_the_rule(
    client: TestClient, owner_engine: Engine, world: World
) -> None:
    headers = bearer_headers(client, world.a.users["engineer"].email)
    invalid = ["", "Vibration", "1st_stage", "_hidden", "vib-rms", "vib rms", "vib.rms",
               "température", "a" * 65, "x" * 64 + "y"]
    for name in invalid:
        response = client.post(
            "/api/mappings", json=new_mapping(world, internal_metric_name=name), headers=headers
        )
        assert response.status_code == 422, name
        assert response.json()["detail"][0]["loc"][-1] == "internal_metric_name", name
    assert mapping_rows(owner_engine) == []

    valid = ["a", "x9", "stage_2_temp", "z" + "_" * 63]
    for asset, name in zip(world.a.assets * 2, valid, strict=True):
        response = client.post(
            "/api/mappings",
            json=new_mapping(world, asset_id=asset.id, internal_metric_name=name),
            headers=headers,
        )
        assert response.status_code == 201, (name, response.text)
    assert sorted(r["internal_metric_name"] for r in mapping_rows(owner_engine)) == sorted(valid)


def test_malformed_mapping_bodies_are_422_naming_the_field(
    client: TestClient, owner_engine: Engine, world: World
) -> None:
    headers = bearer_headers(client, world.a.users["engineer"].email)
    for body, field in (
        ({"external_tag": ""}, "external_tag"),
        ({"external_tag": "x" * 513}, "external_tag"),
        ({"scaling_factor": "lots"}, "scaling_factor"),
        ({"unit": "u" * 33}, "unit"),
        ({"asset_id": 0}, "asset_id"),
        ({"integration_id": 2**31}, "integration_id"),
        ({"tenant_id": 1}, "tenant_id"),
    ):
        response = client.post("/api/mappings", json=new_mapping(world, **body), headers=headers)
        assert response.status_code == 422, (body, response.text)
        assert any(error["loc"][-1] == field for error in response.json()["detail"]), body
    assert mapping_rows(owner_engine) == []

    # JSON's non-standard NaN/Infinity literals would poison every scaled value.
    headers["Content-Type"] = "application/json"
    template = (
        '{{"asset_id": {a}, "integration_id": {i}, "internal_metric_name": "m", '
        '"external_tag": "T", "{field}": {value}}}'
    )
    for field in ("scaling_factor", "offset_value"):
        for value in ("NaN", "Infinity", "-Infinity"):
            content = template.format(
                a=world.a.assets[0].id, i=world.a_integration, field=field, value=value
            )
            response = client.post("/api/mappings", content=content, headers=headers)
            assert response.status_code == 422, (field, value)
    assert mapping_rows(owner_engine) == []


def test_patch_updates_each_field_and_the_series_follows(
    client: TestClient, owner_engine: Engine, session_factory: sessionmaker[Session], world: World
) -> None:
    asset_id = world.a.assets[0].id
    mapping_id = add_mapping(
        session_factory, world.a.tenant.id, asset_id=asset_id,
        integration_id=world.a_integration, metric="vibration_rms", tag="PI:P-101.VIB",
        unit="mm/s",
    )
    headers = bearer_headers(client, world.a.users["engineer"].email)
    steps: list[dict[str, Any]] = [
        {"external_tag": "PI:P-102.VIB"},
        {"scaling_factor": 2.5},
        {"offset_value": -0.75},
        {"unit": "in/s"},
        {"unit": None},
        {"is_active": False},
        {"is_active": True, "unit": "mm/s", "external_tag": "PI:P-201.VIB"},
    ]
    expected = as_api(mapping_rows(owner_engine)[0])
    for change in steps:
        response = client.patch(f"/api/mappings/{mapping_id}", json=change, headers=headers)
        assert response.status_code == 200, response.text
        expected.update(change)
        assert response.json() == expected
        assert as_api(mapping_rows(owner_engine)[0]) == expected

    end = floor_minute(utcnow()) - timedelta(hours=1)
    start = end - 9 * MINUTE
    series = client.get(
        f"/api/twins/assets/{asset_id}/metrics/vibration_rms/series",
        params={"from_time": iso(start), "to_time": iso(end)},
        headers=headers,
    ).json()
    stamps = minute_range(start, end)
    assert list(response_ns(series["points"])) == list(stamps)
    raw = demo_values("PI:P-201.VIB", stamps)
    assert same_floats([p["value"] for p in series["points"]], (raw * 2.5 + -0.75).tolist())
    assert series["unit"] == "mm/s"


def test_patch_rejects_bad_values_and_fields_that_would_move_the_mapping(
    client: TestClient, owner_engine: Engine, session_factory: sessionmaker[Session], world: World
) -> None:
    mapping_id = add_mapping(
        session_factory, world.a.tenant.id, asset_id=world.a.assets[0].id,
        integration_id=world.a_integration, metric="vibration_rms", tag="T",
    )
    before = mapping_rows(owner_engine)
    headers = bearer_headers(client, world.a.users["engineer"].email)
    for body in (
        {"external_tag": ""},
        {"scaling_factor": "x"},
        {"internal_metric_name": "renamed"},
        {"asset_id": world.a.assets[1].id},
        {"integration_id": world.a_integration},
        {"tenant_id": world.b.tenant.id},
        {"scaling_factor": None},
        {"is_active": None},
    ):
        response = client.patch(f"/api/mappings/{mapping_id}", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
    assert client.patch("/api/mappings/999999", json={"unit": "x"}, headers=headers) \
        .status_code == 404
    assert mapping_rows(owner_engine) == before


def test_nothing_is_deleted(
    client: TestClient, owner_engine: Engine, session_factory: sessionmaker[Session], world: World
) -> None:
    mapping_id = add_mapping(
        session_factory, world.a.tenant.id, asset_id=world.a.assets[0].id,
        integration_id=world.a_integration, metric="vibration_rms", tag="T",
    )
    before = mapping_rows(owner_engine)
    admin = bearer_headers(client, world.a.admin.email)
    for path in (f"/api/mappings/{mapping_id}", "/api/mappings",
                 f"/api/integrations/{world.a_integration}"):
        response = client.delete(path, headers=admin)
        assert response.status_code == 405, (path, response.text)
    assert mapping_rows(owner_engine) == before
