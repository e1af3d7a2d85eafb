from __future__ import annotations

import gc

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import TenantWorld, bearer_headers, browser_login


def test_health_checks_the_database(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_asset_list_shows_only_own_tenant(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    headers = bearer_headers(client, tenant_a.admin.email)
    response = client.get("/api/twins/assets", headers=headers)
    assert response.status_code == 200
    ids = {asset["id"] for asset in response.json()["assets"]}
    assert ids == {asset.id for asset in tenant_a.assets}


def test_browser_login_then_twin_grid(client: TestClient, tenant_a: TenantWorld) -> None:
    browser_login(client, tenant_a.users["viewer"].email)
    page = client.get("/twins")
    assert page.status_code == 200
    assert page.text.count('data-role="asset-card"') == len(tenant_a.assets)


def test_serving_keeps_what_startup_built_from_the_cycle_collector_until_shutdown(
    app: FastAPI,
) -> None:
    """DESIGN.md §17: full collections must not walk the app's own modules, mappers and
    routes again and again under load; nothing stays frozen once the app has stopped."""
    with TestClient(app) as serving:
        assert serving.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
