from __future__ import annotations

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
