"""BlackBox events of series reads (DESIGN.md §6): exactly one SENSOR event per successful fetch,
a CONNECTOR warning when the source fails, nothing for a refused request.

Events are counted through the owner engine (every tenant, no scoping) after the login, so the
login's own AUTH event never blurs a count.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import PASSWORD, TenantWorld, bearer_headers
from tests.peers import (
    MINUTE,
    add_integration,
    add_mapping,
    closed_port_url,
    event_count,
    events,
    floor_minute,
    iso,
    pi_config,
    served,
    utcnow,
)

TAG = "PI:P-101.VIB"
METRIC = "vibration_rms"


def arrange(
    factory: sessionmaker[Session],
    world: TenantWorld,
    integration_type: str = "demo",
    config: dict[str, Any] | None = None,
) -> str:
    """Map the world's first asset's vibration to a new integration; the series URL."""
    tenant_id, asset_id = world.tenant.id, world.assets[0].id
    integration_id = add_integration(
        factory, tenant_id, type=integration_type, name="Source", config=config or {}
    )
    add_mapping(
        factory, tenant_id, asset_id=asset_id, integration_id=integration_id, metric=METRIC,
        tag=TAG, unit="mm/s",
    )
    return f"/api/twins/assets/{asset_id}/metrics/{METRIC}/series"


def new_events(engine: Engine, seen: int) -> list[dict[str, Any]]:
    return events(engine)[seen:]


def assert_sensor_event(
    event: dict[str, Any],
    world: TenantWorld,
    *,
    user_id: int,
    points_count: int,
    integration_type: str = "demo",
    source: str = "live",
) -> None:
    assert {k: event[k] for k in (
        "tenant_id", "asset_id", "source_system", "source_type", "event_category", "severity",
        "summary", "payload",
    )} == {
        "tenant_id": world.tenant.id,
        "asset_id": world.assets[0].id,
        "source_system": "OPTRIA_TWIN",
        "source_type": "TAG_READING",
        "event_category": "SENSOR",
        "severity": "INFO",
        "summary": f"Time-series fetched for {METRIC} via Digital Twin",
        "payload": {
            "metric": METRIC,
            "points_count": points_count,
            "integration_type": integration_type,
            "external_tag": TAG,
            "source": source,
            "user_id": user_id,
        },
    }


def assert_connector_warning(event: dict[str, Any], world: TenantWorld, user_id: int) -> None:
    assert event["tenant_id"] == world.tenant.id
    assert event["asset_id"] == world.assets[0].id
    assert (event["event_category"], event["severity"]) == ("CONNECTOR", "WARNING")
    assert event["source_system"] == "OPTRIA_TWIN"
    assert METRIC in event["summary"]
    assert event["payload"]["metric"] == METRIC
    assert event["payload"]["external_tag"] == TAG
    assert event["payload"]["user_id"] == user_id
    assert "s3cret" not in str(event)  # the PI password stays out of the flight recorder


def test_each_successful_fetch_writes_exactly_one_sensor_event(
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
) -> None:
    url = arrange(session_factory, tenant_a)
    viewer = tenant_a.users["viewer"]
    headers = bearer_headers(client, viewer.email)
    end = floor_minute(utcnow()) - timedelta(hours=2)
    later = utcnow() + timedelta(hours=1)
    requests = [
        {"from_time": iso(end - 36 * MINUTE), "to_time": iso(end)},  # 37 points
        {"to_time": iso(end), "limit": 5},
        {"mode": "plot", "limit": 50},
        {"mode": "plot", "from_time": iso(end - 10 * MINUTE), "to_time": iso(end)},
        {"from_time": iso(later), "to_time": iso(later + MINUTE)},  # no points, still a read
        {},
    ]
    for params in requests:
        seen = event_count(owner_engine)
        response = client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        written = new_events(owner_engine, seen)
        assert len(written) == 1, (params, written)
        assert_sensor_event(
            written[0], tenant_a, user_id=viewer.id, points_count=len(response.json()["points"])
        )


def test_a_fallback_writes_its_sensor_event_and_one_connector_warning(
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
) -> None:
    url = arrange(
        session_factory, tenant_a, "pi", pi_config(closed_port_url(), fallback="synthetic")
    )
    engineer = tenant_a.users["engineer"]
    headers = bearer_headers(client, engineer.email)
    seen = event_count(owner_engine)

    response = client.get(url, headers=headers)

    assert response.status_code == 200 and response.json()["source"] == "fallback"
    written = new_events(owner_engine, seen)
    assert sorted(e["event_category"] for e in written) == ["CONNECTOR", "SENSOR"]
    sensor = next(e for e in written if e["event_category"] == "SENSOR")
    warning = next(e for e in written if e["event_category"] == "CONNECTOR")
    assert_sensor_event(
        sensor, tenant_a, user_id=engineer.id, points_count=len(response.json()["points"]),
        integration_type="pi", source="fallback",
    )
    assert_connector_warning(warning, tenant_a, engineer.id)


def test_an_unreachable_source_without_fallback_writes_only_a_connector_warning(
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
) -> None:
    url = arrange(session_factory, tenant_a, "pi", pi_config(closed_port_url()))
    viewer = tenant_a.users["viewer"]
    headers = bearer_headers(client, viewer.email)
    seen = event_count(owner_engine)

    response = client.get(url, headers=headers)

    assert response.status_code == 503
    written = new_events(owner_engine, seen)
    assert len(written) == 1
    assert_connector_warning(written[0], tenant_a, viewer.id)


def test_refused_requests_write_no_event(
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
) -> None:
    url = arrange(session_factory, tenant_a)
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    asset_id = tenant_a.assets[0].id
    refused = [
        (f"/api/twins/assets/{asset_id}/metrics/temperature/series", {}, 404),
        (f"/api/twins/assets/999999/metrics/{METRIC}/series", {}, 404),
        (f"/api/twins/assets/{tenant_a.assets[1].id}/metrics/{METRIC}/series", {}, 404),
        (url, {"limit": "0"}, 422),
        (url, {"mode": "bogus"}, 422),
        (url, {"mode": "plot", "limit": "2"}, 422),
        (url, {"from_time": "2026-01-02T00:00:00Z", "to_time": "2026-01-01T00:00:00Z"}, 422),
        (url, {"from_time": "2024-01-01T00:00:00Z", "to_time": "2026-01-01T00:00:00Z"}, 422),
        (url, {"from_time": "not-a-time"}, 422),
    ]
    seen = event_count(owner_engine)
    for path, params, status in refused:
        response = client.get(path, params=params, headers=headers)
        assert response.status_code == status, (path, params, response.text)
    assert client.get(url).status_code == 401  # no credentials at all
    assert new_events(owner_engine, seen) == []


def test_fifty_concurrent_fetches_write_exactly_fifty_sensor_events(
    app: FastAPI,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
) -> None:
    url = arrange(session_factory, tenant_a)
    viewer = tenant_a.users["viewer"]

    async def fetch_all(base_url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            token = await http.post(
                "/api/auth/token", data={"username": viewer.email, "password": PASSWORD}
            )
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            seen.append(event_count(owner_engine))
            return await asyncio.gather(
                *(http.get(url, params={"limit": 10 + i}, headers=headers) for i in range(50))
            )

    seen: list[int] = []
    with served(app) as base_url:
        responses = asyncio.run(fetch_all(base_url))

    assert [r.status_code for r in responses] == [200] * 50
    written = new_events(owner_engine, seen[0])
    assert len(written) == 50
    assert sorted(e["payload"]["points_count"] for e in written) == [10 + i for i in range(50)]
    for event in written:
        assert_sensor_event(
            event, tenant_a, user_id=viewer.id, points_count=event["payload"]["points_count"]
        )


def test_every_role_may_read_a_series_and_is_recorded_as_itself(
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
) -> None:
    url = arrange(session_factory, tenant_a)
    for role in ("viewer", "engineer", "tenant_admin"):
        user = tenant_a.users[role]
        headers = bearer_headers(client, user.email)
        seen = event_count(owner_engine)
        response = client.get(url, params={"limit": 3}, headers=headers)
        assert response.status_code == 200
        (event,) = new_events(owner_engine, seen)
        assert_sensor_event(event, tenant_a, user_id=user.id, points_count=3)
