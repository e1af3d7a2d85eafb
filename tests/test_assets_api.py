"""POST /api/assets, GET /api/assets/{id} (DESIGN.md §5): roles, conflicts, validation, tenancy."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantWorld, bearer_headers

ASSET_FIELDS = {
    "id", "code", "name", "asset_type", "criticality", "location", "machine_group", "foundation",
}


def new_asset(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "code": "K-900",
        "name": "Flare Knockout Drum",
        "asset_type": "vessel",
        "criticality": "high",
        "location": "Unit 9 · North flare",
    }
    body.update(overrides)
    return body


def codes(client: TestClient, headers: dict[str, str]) -> list[str]:
    assets = client.get("/api/twins/assets", headers=headers).json()["assets"]
    return sorted(asset["code"] for asset in assets)


def error_locations(response) -> list[list[object]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail
    for error in detail:
        assert error["msg"]
    return [error["loc"] for error in detail]


def test_viewer_cannot_create_assets(client: TestClient, tenant_a: TenantWorld) -> None:
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    before = codes(client, headers)
    response = client.post("/api/assets", json=new_asset(), headers=headers)
    assert response.status_code == 403
    assert "engineer" in response.json()["detail"]
    assert codes(client, headers) == before


@pytest.mark.parametrize("role", ["engineer", "tenant_admin"])
def test_engineer_and_admin_create_assets(
    client: TestClient, tenant_a: TenantWorld, role: str
) -> None:
    headers = bearer_headers(client, tenant_a.users[role].email)
    body = new_asset()
    response = client.post("/api/assets", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == ASSET_FIELDS
    assert isinstance(created["id"], int) and created["id"] >= 1
    assert {k: created[k] for k in body} == body
    assert (created["machine_group"], created["foundation"]) == (None, None), "§15 defaults"

    fetched = client.get(f"/api/assets/{created['id']}", headers=headers)
    assert fetched.status_code == 200
    assert fetched.json() == created
    assert created["code"] in codes(client, headers)
    # Every role of the tenant sees it.
    viewer = bearer_headers(client, tenant_a.users["viewer"].email)
    assert client.get(f"/api/assets/{created['id']}", headers=viewer).json() == created


def test_defaults_and_whitespace(client: TestClient, tenant_a: TenantWorld) -> None:
    headers = bearer_headers(client, tenant_a.users["engineer"].email)
    response = client.post(
        "/api/assets",
        json={"code": "  T-7 ", "name": " Storage Tank ", "asset_type": "tank"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["code"], created["name"]) == ("T-7", "Storage Tank")
    assert created["criticality"] == "medium"
    assert created["location"] is None


def test_duplicate_code_in_the_tenant_is_409(client: TestClient, tenant_a: TenantWorld) -> None:
    headers = bearer_headers(client, tenant_a.users["engineer"].email)
    existing = tenant_a.assets[0].code
    response = client.post("/api/assets", json=new_asset(code=existing), headers=headers)
    assert response.status_code == 409
    assert existing in response.json()["detail"]

    assert client.post("/api/assets", json=new_asset(), headers=headers).status_code == 201
    again = client.post("/api/assets", json=new_asset(name="Other name"), headers=headers)
    assert again.status_code == 409
    # The conflict left the connection usable and created nothing.
    assert codes(client, headers).count("K-900") == 1
    later = client.post("/api/assets", json=new_asset(code="K-901"), headers=headers)
    assert later.status_code == 201


def test_same_code_in_another_tenant_is_fine(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    headers_a = bearer_headers(client, tenant_a.users["engineer"].email)
    headers_b = bearer_headers(client, tenant_b.users["engineer"].email)
    created_a = client.post("/api/assets", json=new_asset(), headers=headers_a)
    created_b = client.post("/api/assets", json=new_asset(name="B's drum"), headers=headers_b)
    assert created_a.status_code == created_b.status_code == 201
    assert created_a.json()["id"] != created_b.json()["id"]
    assert codes(client, headers_a).count("K-900") == 1
    assert codes(client, headers_b).count("K-900") == 1
    # Each tenant reads its own; the other's id is a 404 like any missing id.
    assert (
        client.get(f"/api/assets/{created_b.json()['id']}", headers=headers_b).json()["name"]
        == "B's drum"
    )
    foreign = client.get(f"/api/assets/{created_b.json()['id']}", headers=headers_a)
    missing = client.get("/api/assets/999999", headers=headers_a)
    assert foreign.status_code == missing.status_code == 404
    assert "B's drum" not in foreign.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (new_asset(criticality="extreme"), "criticality"),
        ({k: v for k, v in new_asset().items() if k != "name"}, "name"),
        ({k: v for k, v in new_asset().items() if k != "code"}, "code"),
        ({k: v for k, v in new_asset().items() if k != "asset_type"}, "asset_type"),
        (new_asset(code=""), "code"),
        (new_asset(code="has space"), "code"),
        (new_asset(code="X" * 65), "code"),
        (new_asset(name=""), "name"),
        (new_asset(location="L" * 201), "location"),
        (new_asset(name=12), "name"),
        (new_asset(tenant_id=2), "tenant_id"),
    ],
)
def test_bad_body_is_422_naming_the_field(
    client: TestClient, tenant_a: TenantWorld, body: dict[str, object], field: str
) -> None:
    headers = bearer_headers(client, tenant_a.users["engineer"].email)
    response = client.post("/api/assets", json=body, headers=headers)
    assert ["body", field] in error_locations(response)


def test_non_json_body_is_422(client: TestClient, tenant_a: TenantWorld) -> None:
    headers = bearer_headers(client, tenant_a.users["engineer"].email)
    response = client.post(
        "/api/assets", content=b"{not json", headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert client.post("/api/assets", headers=headers).status_code == 422


def test_tenant_comes_from_the_user_never_the_body(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    headers_a = bearer_headers(client, tenant_a.users["engineer"].email)
    headers_b = bearer_headers(client, tenant_b.users["viewer"].email)
    response = client.post(
        "/api/assets", json=new_asset(tenant_id=tenant_b.tenant.id), headers=headers_a
    )
    assert response.status_code == 422
    assert "K-900" not in codes(client, headers_a) + codes(client, headers_b)


@pytest.mark.parametrize("bad_id", ["0", "-1", "2147483648", "99999999999999999999", "abc"])
def test_asset_id_outside_the_integer_range_is_422(
    client: TestClient, tenant_a: TenantWorld, bad_id: str
) -> None:
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    response = client.get(f"/api/assets/{bad_id}", headers=headers)
    assert ["path", "asset_id"] in error_locations(response)


def test_largest_integer_id_is_a_plain_404(client: TestClient, tenant_a: TenantWorld) -> None:
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    response = client.get(f"/api/assets/{2**31 - 1}", headers=headers)
    assert response.status_code == 404
    assert response.json() == {"detail": f"Asset {2**31 - 1} not found"}


def test_the_iso_20816_classification_is_accepted_validated_and_patchable(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    engineer = bearer_headers(client, tenant_a.users["engineer"].email)
    created = client.post("/api/assets", json=new_asset(machine_group=1, foundation="flexible"),
                          headers=engineer)
    assert created.status_code == 201, created.text
    assert (created.json()["machine_group"], created.json()["foundation"]) == (1, "flexible")
    for field, value in (("machine_group", 3), ("machine_group", "1"), ("foundation", "soft")):
        response = client.post("/api/assets", json=new_asset(code="K-901", **{field: value}),
                               headers=engineer)
        assert [field] == [loc[-1] for loc in error_locations(response)][:1], (field, value)
    asset_id = created.json()["id"]
    patched = client.patch(f"/api/assets/{asset_id}",
                           json={"machine_group": None, "foundation": "rigid", "name": "Drum"},
                           headers=engineer)
    assert patched.status_code == 200, patched.text
    assert {k: patched.json()[k] for k in ("machine_group", "foundation", "name", "code")} == {
        "machine_group": None, "foundation": "rigid", "name": "Drum", "code": "K-900",
    }
    assert client.patch(f"/api/assets/{asset_id}", json={"name": None},
                        headers=engineer).status_code == 422
    assert client.patch(f"/api/assets/{asset_id}", json={"code": "X"},
                        headers=engineer).status_code == 422
    viewer = bearer_headers(client, tenant_a.users["viewer"].email)
    assert client.patch(f"/api/assets/{asset_id}", json={"name": "x"},
                        headers=viewer).status_code == 403


def test_patching_another_tenants_asset_is_404(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    engineer = bearer_headers(client, tenant_a.users["engineer"].email)
    theirs = tenant_b.assets[0].id
    response = client.patch(f"/api/assets/{theirs}", json={"name": "mine"}, headers=engineer)
    assert response.status_code == 404
    b_engineer = bearer_headers(client, tenant_b.users["engineer"].email)
    assert client.get(f"/api/assets/{theirs}", headers=b_engineer).json()["name"] != "mine"
