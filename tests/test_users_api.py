"""Users and tokens (DESIGN.md §16): the tenant admin's users API, deactivation that takes effect
everywhere at once, token revocation, and their CONFIG events. Both backends."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from tests.conftest import TenantWorld, bearer_headers, browser_login, changes_heard
from tests.peers import events
from tests.test_live_streams import Mapped, mapped, read_events
from webapp.db import tenant_session
from webapp.tenancy.models import ApiToken, Role, Tenant, User, UserSession
from webapp.tenancy.service import create_user

NEW_USER = {
    "email": "new.operator@tenanta.example", "password": "a long passphrase", "role": "engineer",
}
__all__ = ["mapped"]  # the live-stream suite's fixture, used here


def config_events(engine: Engine, tenant_id: int, source_type: str) -> list[dict[str, Any]]:
    return [
        event for event in events(engine, tenant_id=tenant_id, category="CONFIG")
        if event["source_type"] == source_type
    ]


def other_browser(client: TestClient) -> TestClient:
    """A second cookie jar on the running app (no second lifespan, so one live hub)."""
    return TestClient(client.app)


def rows(engine: Engine, model: type) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(model.__table__)).mappings())


# --- listing and creating -------------------------------------------------------------------


def test_a_tenant_admin_lists_only_their_tenants_users(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    response = client.get("/api/users", headers=bearer_headers(client, tenant_a.admin.email))
    assert response.status_code == 200
    listed = response.json()["users"]
    assert sorted(user["email"] for user in listed) == sorted(
        user.email for user in tenant_a.users.values()
    )
    for user in listed:
        assert set(user) == {"id", "email", "role", "is_active", "locale"}
    assert "password" not in response.text and "argon2" not in response.text


@pytest.mark.parametrize("role", ["viewer", "engineer"])
def test_only_tenant_admins_manage_users(
    client: TestClient, tenant_a: TenantWorld, role: str
) -> None:
    headers = bearer_headers(client, tenant_a.users[role].email)
    assert client.get("/api/users", headers=headers).status_code == 403
    assert client.post("/api/users", json=NEW_USER, headers=headers).status_code == 403
    target = tenant_a.users["viewer"].id
    response = client.patch(f"/api/users/{target}", json={"is_active": False}, headers=headers)
    assert response.status_code == 403
    assert client.get("/api/users").status_code == 401


def test_creating_a_user_who_can_then_log_in(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    admin = bearer_headers(client, tenant_a.admin.email)
    response = client.post(
        "/api/users", json={**NEW_USER, "email": "  New.Operator@TenantA.example "},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created == {
        "id": created["id"], "email": NEW_USER["email"], "role": "engineer", "is_active": True,
        "locale": "en",
    }
    assert bearer_headers(client, NEW_USER["email"], NEW_USER["password"])
    (event,) = config_events(owner_engine, tenant_a.tenant.id, "USER_CREATED")[-1:]
    assert event["source_system"] == "OPTRIA_ADMIN"
    assert event["payload"] == {
        "user_id": tenant_a.admin.id, "object": "user", "object_id": created["id"],
        "changes": {
            "email": [None, NEW_USER["email"]], "role": [None, "engineer"],
            "is_active": [None, True],
        },
    }
    assert NEW_USER["password"] not in str(event)


def test_a_duplicate_email_is_409_even_in_another_tenant(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    admin = bearer_headers(client, tenant_a.admin.email)
    for email in (tenant_a.users["viewer"].email, tenant_b.users["viewer"].email.upper()):
        response = client.post("/api/users", json={**NEW_USER, "email": email}, headers=admin)
        assert response.status_code == 409, email
        assert "already exists" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**NEW_USER, "email": "not-an-email"}, "email"),
        ({**NEW_USER, "password": "short"}, "password"),
        ({**NEW_USER, "role": "platform_admin"}, "role"),
        ({**NEW_USER, "role": "superuser"}, "role"),
        ({**NEW_USER, "tenant_id": 1}, "tenant_id"),
        ({"email": NEW_USER["email"], "role": "viewer"}, "password"),
    ],
)
def test_bad_user_input_is_422_naming_the_field(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine, body: dict, field: str
) -> None:
    admin = bearer_headers(client, tenant_a.admin.email)
    response = client.post("/api/users", json=body, headers=admin)
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])
    assert NEW_USER["email"] not in {row["email"] for row in rows(owner_engine, User)}


# --- changing and deactivating --------------------------------------------------------------


def test_a_role_change_applies_to_the_next_request(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    admin = bearer_headers(client, tenant_a.admin.email)
    engineer = tenant_a.users["engineer"]
    engineer_headers = bearer_headers(client, engineer.email)
    assert client.get("/api/integrations", headers=engineer_headers).status_code == 200
    response = client.patch(f"/api/users/{engineer.id}", json={"role": "viewer"}, headers=admin)
    assert response.status_code == 200 and response.json()["role"] == "viewer"
    assert client.get("/api/integrations", headers=engineer_headers).status_code == 403
    (event,) = config_events(owner_engine, tenant_a.tenant.id, "USER_UPDATED")
    assert event["payload"]["changes"] == {"role": ["engineer", "viewer"]}
    assert event["payload"]["user_id"] == tenant_a.admin.id


def test_deactivating_a_user_revokes_every_session_and_token_at_once(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    viewer = tenant_a.users["viewer"]
    token_one = bearer_headers(client, viewer.email)
    token_two = bearer_headers(client, viewer.email)
    browser = other_browser(client)
    browser_login(browser, viewer.email)
    assert browser.get("/twins").status_code == 200

    admin = bearer_headers(client, tenant_a.admin.email)
    response = client.patch(f"/api/users/{viewer.id}", json={"is_active": False}, headers=admin)
    assert response.status_code == 200 and response.json()["is_active"] is False

    for headers in (token_one, token_two):
        assert client.get("/api/twins/assets", headers=headers).status_code == 401
    assert browser.get("/twins", follow_redirects=False).status_code == 303
    revoked_sessions = [row for row in rows(owner_engine, UserSession)
                        if row["user_id"] == viewer.id]
    revoked_tokens = [row for row in rows(owner_engine, ApiToken) if row["user_id"] == viewer.id]
    assert revoked_sessions and all(row["revoked_at"] for row in revoked_sessions)
    assert len(revoked_tokens) == 2 and all(row["revoked_at"] for row in revoked_tokens)
    # Reactivating the user does not revive what was revoked; a new login works.
    client.patch(f"/api/users/{viewer.id}", json={"is_active": True}, headers=admin)
    assert client.get("/api/twins/assets", headers=token_one).status_code == 401
    assert bearer_headers(client, viewer.email)

    revocations = config_events(owner_engine, tenant_a.tenant.id, "TOKEN_REVOKED")
    assert sorted(event["payload"]["object_id"] for event in revocations) == sorted(
        row["id"] for row in revoked_tokens
    )
    assert {event["payload"]["user_id"] for event in revocations} == {tenant_a.admin.id}
    updates = config_events(owner_engine, tenant_a.tenant.id, "USER_UPDATED")
    assert [event["payload"]["changes"] for event in updates] == [
        {"is_active": [True, False]}, {"is_active": [False, True]},
    ]


def test_a_deactivated_users_open_streams_end_within_two_ticks(
    client: TestClient, tenant_a: TenantWorld, mapped: Mapped
) -> None:
    viewer = tenant_a.users["viewer"]
    admin = bearer_headers(client, tenant_a.admin.email)
    browser = other_browser(client)
    browser_login(browser, viewer.email)
    json_headers = bearer_headers(client, viewer.email)
    with (
        browser.stream("GET", mapped.html_stream) as html,
        client.stream("GET", mapped.json_stream, headers=json_headers) as points,
    ):
        html_lines, point_lines = html.iter_lines(), points.iter_lines()
        assert read_events(html_lines, 2)[0]["event"] == "latest"
        assert read_events(point_lines, 1)[0]["event"] == "point"
        response = client.patch(f"/api/users/{viewer.id}", json={"is_active": False},
                                headers=admin)
        assert response.status_code == 200
        html_rest, point_rest = read_events(html_lines, 50), read_events(point_lines, 50)
    for rest in (html_rest, point_rest):
        assert rest[-1]["event"] == "close", "ended as revoked: the client must not reconnect"
        # One tick of readings at most between the change and the check that ends it
        # (two events per reading in the fragment stream).
        assert len(rest) <= 1 + 2 * 2


def test_a_deactivated_tenant_ends_its_streams_too(
    app: FastAPI, client: TestClient, tenant_a: TenantWorld, mapped: Mapped, owner_engine: Engine
) -> None:
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    with client.stream("GET", mapped.json_stream, headers=headers) as points:
        lines = points.iter_lines()
        assert read_events(lines, 1)[0]["event"] == "point"
        with owner_engine.begin() as connection:
            connection.execute(
                update(Tenant).where(Tenant.id == tenant_a.tenant.id).values(is_active=False)
            )
        rest = read_events(lines, 50)
    assert rest[-1]["event"] == "close" and len(rest) <= 3
    changes_heard(app)
    assert client.get("/api/twins/assets", headers=headers).status_code == 401


def test_an_admin_cannot_lock_themselves_out(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    admin = bearer_headers(client, tenant_a.admin.email)
    me = tenant_a.admin.id
    for body in ({"is_active": False}, {"role": "engineer"}):
        response = client.patch(f"/api/users/{me}", json=body, headers=admin)
        assert response.status_code == 409
        assert "your own account" in response.json()["detail"]
    assert client.get("/api/users", headers=admin).status_code == 200
    assert config_events(owner_engine, tenant_a.tenant.id, "USER_UPDATED") == []


def test_another_tenants_user_is_404_and_untouched(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld, owner_engine: Engine
) -> None:
    admin = bearer_headers(client, tenant_a.admin.email)
    theirs = tenant_b.users["viewer"]
    for user_id in (theirs.id, 999_999):
        response = client.patch(f"/api/users/{user_id}", json={"is_active": False},
                                headers=admin)
        assert response.status_code == 404
    assert client.patch(f"/api/users/{2**31}", json={"is_active": False},
                        headers=admin).status_code == 422
    assert bearer_headers(client, theirs.email), "B's user still logs in"
    assert config_events(owner_engine, tenant_b.tenant.id, "USER_UPDATED") == []
    assert config_events(owner_engine, tenant_a.tenant.id, "USER_UPDATED") == []


@pytest.mark.parametrize(
    "body", [{"is_active": None}, {"role": None}, {"role": "platform_admin"}, {"email": "x@y.z"}]
)
def test_bad_patches_are_422(client: TestClient, tenant_a: TenantWorld, body: dict) -> None:
    admin = bearer_headers(client, tenant_a.admin.email)
    response = client.patch(f"/api/users/{tenant_a.users['viewer'].id}", json=body,
                            headers=admin)
    assert response.status_code == 422, response.text


def test_users_api_from_a_browser_needs_the_csrf_token(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    csrf = browser_login(client, tenant_a.admin.email)
    assert client.post("/api/users", json=NEW_USER).status_code == 403
    response = client.post("/api/users", json=NEW_USER, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 201


# --- token revocation -----------------------------------------------------------------------


def test_revoking_the_presented_token(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    other = bearer_headers(client, tenant_a.users["viewer"].email)
    response = client.post("/api/auth/revoke", headers=headers)
    assert response.status_code == 200 and response.json() == {"revoked": True}
    assert client.get("/api/twins/assets", headers=headers).status_code == 401
    assert client.post("/api/auth/revoke", headers=headers).status_code == 401
    assert client.get("/api/twins/assets", headers=other).status_code == 200, "only that one"
    (event,) = config_events(owner_engine, tenant_a.tenant.id, "TOKEN_REVOKED")
    assert event["payload"]["user_id"] == tenant_a.users["viewer"].id
    assert event["payload"]["object"] == "token"
    assert list(event["payload"]["changes"]) == ["revoked_at"]


def test_revoke_without_a_bearer_token_is_a_clear_400(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    csrf = browser_login(client, tenant_a.users["viewer"].email)
    response = client.post("/api/auth/revoke", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 400
    assert "Authorization" in response.json()["detail"]
    assert client.post("/api/auth/revoke").status_code == 403  # no CSRF token: refused first
    assert client.get("/twins").status_code == 200, "the browser session is untouched"


def test_a_tenant_admin_cannot_touch_a_user_who_outranks_them(
    client: TestClient, tenant_a: TenantWorld, session_factory, owner_engine: Engine  # type: ignore[no-untyped-def]
) -> None:
    with tenant_session(session_factory, None) as session:
        platform = create_user(session, tenant=tenant_a.tenant, email="root@platform.example",
                               password="long enough pw", role=Role.platform_admin)
        session.commit()
        platform_id = platform.id
    admin = bearer_headers(client, tenant_a.admin.email)
    for body in ({"is_active": False}, {"role": "viewer"}):
        response = client.patch(f"/api/users/{platform_id}", json=body, headers=admin)
        assert response.status_code == 409, body
        assert "higher role" in response.json()["detail"]
    assert bearer_headers(client, "root@platform.example", "long enough pw")
    assert config_events(owner_engine, tenant_a.tenant.id, "USER_UPDATED") == []
