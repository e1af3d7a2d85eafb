"""Integrations API (DESIGN.md §5): roles, secret masking, per-type config validation, PATCH
keeping masked secrets, and the side-effect-free connection test."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TEST_SECRET_KEY, TenantWorld, bearer_headers
from tests.connectors.fake_pi import FakePIServer
from tests.peers import (
    add_integration,
    closed_port_url,
    fake_pi_server,
    integration_rows,
    make_sql_historian,
    pi_config,
    snapshot,
    utcnow,
)
from webapp.integrations.secrets import SecretVault

TIMEOUT = 2.0  # test_settings' connector_timeout_seconds

PI_SECRET_CONFIG: dict[str, Any] = {
    "base_url": "https://pi.plant.local/piwebapi",
    "data_server": "PISRV01",
    "username": "svc-optria",
    "password": "hunter2-pi",
    "verify_tls": True,
    "api_token": "tok-3f9a",
    "client_secret": "cs-77e1",
    "oauth": {"refresh_token": "rt-0c2d", "client_id": "optria"},
}
PI_MASKED: dict[str, Any] = {
    **PI_SECRET_CONFIG,
    "password": "***",
    "api_token": "***",
    "client_secret": "***",
    "oauth": {"refresh_token": "***", "client_id": "optria"},
}
SQL_URL = "postgresql+psycopg2://reader:pa55-w0rd@db.plant.local:5432/history"
SQL_MASKED_URL = "postgresql+psycopg2://reader:***@db.plant.local:5432/history"
SECRETS = ("hunter2-pi", "tok-3f9a", "cs-77e1", "rt-0c2d", "pa55-w0rd")


@pytest.fixture(scope="module")
def pi_server() -> Iterator[FakePIServer]:
    with fake_pi_server() as server:
        yield server


def headers_for(client: TestClient, world: TenantWorld, role: str) -> dict[str, str]:
    return bearer_headers(client, world.users[role].email)


def stored_config(engine: Engine, integration_id: int) -> dict[str, Any]:
    """The config as a connector gets it, after checking no secret is stored in clear."""
    (row,) = [r for r in integration_rows(engine) if r["id"] == integration_id]
    stored_text = json.dumps(row["config"])
    assert not any(secret in stored_text for secret in (*SECRETS, "rotated-9", "n3w-pw"))
    return SecretVault([TEST_SECRET_KEY]).reveal(row["config"])


# --- list ------------------------------------------------------------------------------------


def test_list_masks_every_secret_and_shows_only_the_tenants_integrations(
    client: TestClient,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    a = tenant_a.tenant.id
    pi_id = add_integration(session_factory, a, type="pi", name="PI", config=PI_SECRET_CONFIG)
    sql_config = {"url": SQL_URL, "table": "historian", "fallback": "synthetic"}
    sql_id = add_integration(session_factory, a, type="sql", name="Hist", config=sql_config)
    opc_config = {"endpoint": "opc.tcp://plc:4840/", "username": "op", "password": ""}
    opc_id = add_integration(
        session_factory, a, type="opcua", name="PLC", config=opc_config, is_active=False
    )
    add_integration(session_factory, tenant_b.tenant.id, type="demo", name="B only", config={})

    for role in ("engineer", "tenant_admin"):
        response = client.get("/api/integrations", headers=headers_for(client, tenant_a, role))
        assert response.status_code == 200, response.text
        assert response.json() == {
            "integrations": [
                {"id": pi_id, "type": "pi", "name": "PI", "is_active": True,
                 "config": PI_MASKED},
                {"id": sql_id, "type": "sql", "name": "Hist", "is_active": True,
                 "config": {**sql_config, "url": SQL_MASKED_URL}},
                # An empty password is no secret to hide.
                {"id": opc_id, "type": "opcua", "name": "PLC", "is_active": False,
                 "config": opc_config},
            ]
        }
        assert not any(secret in response.text for secret in SECRETS)


def test_viewers_may_not_list_integrations(client: TestClient, tenant_a: TenantWorld) -> None:
    response = client.get("/api/integrations", headers=headers_for(client, tenant_a, "viewer"))
    assert response.status_code == 403


def test_urls_are_masked_without_mangling_them(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    config = {
        "mirror": "postgresql://u:p%40ss@[::1]:5432/h",  # IPv6 host keeps its brackets
        "plain": "https://historian.example/api",  # no password: untouched
        "note": "http://[broken",  # not a parsable URL: untouched, no 500
        "odd_port": "tcp://u:pw@relay:99999/",  # port out of range: still masked, no 500
    }
    add_integration(session_factory, tenant_a.tenant.id, type="demo", name="d", config=config)
    response = client.get("/api/integrations", headers=headers_for(client, tenant_a, "engineer"))
    assert response.status_code == 200, response.text
    assert response.json()["integrations"][0]["config"] == {
        **config,
        "mirror": "postgresql://u:***@[::1]:5432/h",
        "odd_port": "tcp://u:***@relay:99999/",
    }


def test_secrets_inside_lists_are_masked_and_kept(
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
) -> None:
    config = {
        "mirrors": ["postgresql://u:list-pw-1@h1/db", {"password": "list-pw-2", "host": "h2"}],
        "tags": ["A", "B"],
    }
    integration_id = add_integration(
        session_factory, tenant_a.tenant.id, type="demo", name="d", config=config
    )
    response = client.get("/api/integrations", headers=headers_for(client, tenant_a, "engineer"))
    masked = response.json()["integrations"][0]["config"]
    assert masked == {
        "mirrors": ["postgresql://u:***@h1/db", {"password": "***", "host": "h2"}],
        "tags": ["A", "B"],
    }
    assert "list-pw" not in response.text
    # Echoing the masked list back keeps both stored secrets.
    patch = client.patch(
        f"/api/integrations/{integration_id}", json={"config": {**masked, "tags": ["C"]}},
        headers=headers_for(client, tenant_a, "tenant_admin"),
    )
    assert patch.status_code == 200, patch.text
    assert stored_config(owner_engine, integration_id) == {**config, "tags": ["C"]}


# --- create ----------------------------------------------------------------------------------


VALID_CONFIGS = [
    ("demo", {}),
    ("demo", {"fallback": "synthetic"}),
    ("pi", {"base_url": "https://pi.plant/piwebapi", "data_server": "PISRV01"}),
    ("opcua", {"endpoint": "opc.tcp://127.0.0.1:4840/freeopcua/server/"}),
    ("sql", {"url": "sqlite:////var/lib/historian.db", "table": "historian"}),
    ("sql", {"url": "postgresql+psycopg2://h/x", "table": "plant.history",
             "fallback": "synthetic"}),
]


def test_tenant_admin_creates_integrations_of_every_type(
    client: TestClient, owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    admin = headers_for(client, tenant_a, "tenant_admin")
    for integration_type, config in VALID_CONFIGS:
        response = client.post(
            "/api/integrations",
            json={"type": integration_type, "name": "  New source  ", "config": config},
            headers=admin,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        row = integration_rows(owner_engine)[-1]
        assert body["id"] == row["id"] and row["tenant_id"] == tenant_a.tenant.id
        assert (row["type"], row["name"], row["is_active"]) == (
            integration_type, "New source", True,
        )
        for key, value in config.items():
            assert row["config"][key] == value
            assert body["config"][key] == value
    assert len(integration_rows(owner_engine)) == len(VALID_CONFIGS)


def test_a_pi_base_url_with_an_impossible_port_is_422(
    client: TestClient, owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    response = client.post(
        "/api/integrations",
        json={"type": "pi", "name": "x",
              "config": {"base_url": "https://pi:99999/piwebapi", "data_server": "S"}},
        headers=headers_for(client, tenant_a, "tenant_admin"),
    )
    assert response.status_code == 422
    assert "base_url" in response.json()["detail"][0]["msg"]
    assert integration_rows(owner_engine) == []


def test_a_created_secret_is_stored_but_never_echoed(
    client: TestClient, owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    response = client.post(
        "/api/integrations",
        json={"type": "pi", "name": "PI", "config": PI_SECRET_CONFIG},
        headers=headers_for(client, tenant_a, "tenant_admin"),
    )
    assert response.status_code == 201
    assert response.json()["config"] == PI_MASKED
    assert not any(secret in response.text for secret in SECRETS)
    assert stored_config(owner_engine, response.json()["id"]) == PI_SECRET_CONFIG


def test_only_tenant_admins_create_integrations(
    client: TestClient, owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    for role in ("viewer", "engineer"):
        response = client.post(
            "/api/integrations",
            json={"type": "demo", "name": "x", "config": {}},
            headers=headers_for(client, tenant_a, role),
        )
        assert response.status_code == 403, role
    assert integration_rows(owner_engine) == []


INVALID_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("pi", {"data_server": "PISRV01"}, "base_url"),
    ("pi", {"base_url": "https://pi.plant/piwebapi"}, "data_server"),
    ("pi", {"base_url": "ftp://pi.plant", "data_server": "S"}, "base_url"),
    ("pi", {"base_url": "https://pi/piwebapi", "data_server": "S", "verify_tls": "no"},
     "verify_tls"),
    ("opcua", {}, "endpoint"),
    ("opcua", {"endpoint": "http://plc:4840"}, "endpoint"),
    ("sql", {"table": "historian"}, "url"),
    ("sql", {"url": "sqlite:///h.db"}, "table"),
    ("sql", {"url": "not a url", "table": "historian"}, "url"),
    ("sql", {"url": "sqlite:///h.db", "table": "historian; DROP TABLE x"}, "table"),
    ("demo", {"fallback": "yes"}, "fallback"),
    ("pi", {"base_url": "https://pi/piwebapi", "data_server": "S", "fallback": True},
     "fallback"),
]
MALFORMED_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"type": "influxdb", "name": "x", "config": {}}, "type"),
    ({"type": "demo", "name": "", "config": {}}, "name"),
    ({"type": "demo", "config": {}}, "name"),
    ({"type": "demo", "name": "x", "config": []}, "config"),
    ({"type": "demo", "name": "x", "config": {}, "tenant_id": 1}, "tenant_id"),
]


def test_config_is_validated_per_type_naming_the_key(
    client: TestClient, owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    admin = headers_for(client, tenant_a, "tenant_admin")
    for integration_type, config, key in INVALID_CONFIGS:
        response = client.post(
            "/api/integrations",
            json={"type": integration_type, "name": "x", "config": config},
            headers=admin,
        )
        assert response.status_code == 422, (config, response.text)
        (error,) = response.json()["detail"]
        assert "config" in error["loc"] and key in error["msg"], (config, error)
    for body, field in MALFORMED_BODIES:
        response = client.post("/api/integrations", json=body, headers=admin)
        assert response.status_code == 422, body
        assert any(field in error["loc"] for error in response.json()["detail"]), body
    assert integration_rows(owner_engine) == []


# --- update ----------------------------------------------------------------------------------


def create(client: TestClient, headers: dict[str, str], type_: str, config: dict[str, Any]) -> int:
    response = client.post(
        "/api/integrations", json={"type": type_, "name": "src", "config": config},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_patch_echoing_masked_secrets_keeps_the_stored_ones(
    client: TestClient, owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    admin = headers_for(client, tenant_a, "tenant_admin")
    pi_id = create(client, admin, "pi", PI_SECRET_CONFIG)
    listed = client.get("/api/integrations", headers=admin).json()["integrations"][0]["config"]

    edited = {**listed, "fallback": "synthetic"}  # the destination and channel stay the same
    response = client.patch(f"/api/integrations/{pi_id}", json={"config": edited}, headers=admin)

    assert response.status_code == 200, response.text
    assert response.json()["config"] == {**PI_MASKED, "fallback": "synthetic"}
    assert stored_config(owner_engine, pi_id) == {**PI_SECRET_CONFIG, "fallback": "synthetic"}

    response = client.patch(
        f"/api/integrations/{pi_id}", json={"config": {**edited, "password": "rotated-9"}},
        headers=admin,
    )
    assert response.status_code == 200 and response.json()["config"]["password"] == "***"
    assert stored_config(owner_engine, pi_id)["password"] == "rotated-9"
    assert stored_config(owner_engine, pi_id)["api_token"] == PI_SECRET_CONFIG["api_token"]


def test_a_mask_with_no_stored_secret_behind_it_is_422(
    client: TestClient, owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    admin = headers_for(client, tenant_a, "tenant_admin")
    copied = {**PI_SECRET_CONFIG, "password": "***"}
    response = client.post(
        "/api/integrations", json={"type": "pi", "name": "copy", "config": copied}, headers=admin
    )
    assert response.status_code == 422
    assert "password" in response.text and "***" in response.text
    pi_id = create(client, admin, "pi", {"base_url": "https://pi.example", "data_server": "S"})
    response = client.patch(
        f"/api/integrations/{pi_id}",
        json={"config": {"base_url": "https://u:***@pi.example", "data_server": "S"}},
        headers=admin,
    )
    assert response.status_code == 422
    assert stored_config(owner_engine, pi_id)["base_url"] == "https://pi.example"


def test_patch_with_a_masked_url_keeps_the_stored_url_password(
    client: TestClient, owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    admin = headers_for(client, tenant_a, "tenant_admin")
    sql_id = create(client, admin, "sql", {"url": SQL_URL, "table": "historian"})

    response = client.patch(
        f"/api/integrations/{sql_id}",
        json={"config": {"url": SQL_MASKED_URL, "table": "history_v2"}},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    assert response.json()["config"] == {"url": SQL_MASKED_URL, "table": "history_v2"}
    assert stored_config(owner_engine, sql_id) == {"url": SQL_URL, "table": "history_v2"}

    # The stored password never follows the database to another host: it must be re-entered.
    moved = SQL_MASKED_URL.replace("db.plant.local", "db2.plant.local")
    response = client.patch(
        f"/api/integrations/{sql_id}", json={"config": {"url": moved, "table": "history_v2"}},
        headers=admin,
    )
    assert response.status_code == 422
    assert "re-enter the password" in response.text
    assert stored_config(owner_engine, sql_id) == {"url": SQL_URL, "table": "history_v2"}

    new_password = SQL_URL.replace("pa55-w0rd", "n3w-pw").replace("db.plant", "db2.plant")
    response = client.patch(
        f"/api/integrations/{sql_id}", json={"config": {"url": new_password, "table": "h"}},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    assert stored_config(owner_engine, sql_id)["url"] == new_password


def test_patch_name_and_active_flag_leave_the_config_alone(
    client: TestClient, owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    admin = headers_for(client, tenant_a, "tenant_admin")
    pi_id = create(client, admin, "pi", PI_SECRET_CONFIG)
    response = client.patch(
        f"/api/integrations/{pi_id}", json={"name": "PI (north)", "is_active": False},
        headers=admin,
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": pi_id, "type": "pi", "name": "PI (north)", "is_active": False, "config": PI_MASKED,
    }
    (row,) = integration_rows(owner_engine)
    assert (row["name"], row["is_active"]) == ("PI (north)", False)
    assert stored_config(owner_engine, pi_id) == PI_SECRET_CONFIG


def test_invalid_patches_are_422_and_change_nothing(
    client: TestClient, owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    admin = headers_for(client, tenant_a, "tenant_admin")
    pi_id = create(client, admin, "pi", PI_SECRET_CONFIG)
    before = integration_rows(owner_engine)
    for body, word in (
        ({"config": {**PI_MASKED, "base_url": None}}, "base_url"),
        ({"config": {"data_server": "PISRV01"}}, "base_url"),
        ({"config": {**PI_MASKED, "fallback": "maybe"}}, "fallback"),
        ({"type": "sql"}, "type"),  # the type is fixed at creation
        ({"name": ""}, "name"),
        ({"is_active": "perhaps"}, "is_active"),
    ):
        response = client.patch(f"/api/integrations/{pi_id}", json=body, headers=admin)
        assert response.status_code == 422, (body, response.text)
        assert word in str(response.json()["detail"]), (body, response.text)
    assert integration_rows(owner_engine) == before


def test_only_tenant_admins_patch_and_unknown_ids_are_404(
    client: TestClient, owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    admin = headers_for(client, tenant_a, "tenant_admin")
    demo_id = create(client, admin, "demo", {})
    before = integration_rows(owner_engine)
    for role in ("viewer", "engineer"):
        response = client.patch(
            f"/api/integrations/{demo_id}", json={"name": "hijacked"},
            headers=headers_for(client, tenant_a, role),
        )
        assert response.status_code == 403
    assert client.patch(
        "/api/integrations/999999", json={"name": "x"}, headers=admin
    ).status_code == 404
    assert client.patch(
        f"/api/integrations/{2**31}", json={"name": "x"}, headers=admin
    ).status_code == 422
    assert integration_rows(owner_engine) == before


# --- connection test -------------------------------------------------------------------------


def run_test(
    client: TestClient, engine: Engine, headers: dict[str, str], integration_id: int
) -> tuple[dict[str, Any], float]:
    before = snapshot(engine)
    started = time.monotonic()
    response = client.post(f"/api/integrations/{integration_id}/test", headers=headers)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"ok", "detail", "latency_ms"}
    assert isinstance(body["detail"], str) and body["detail"]
    assert 0 <= body["latency_ms"] <= elapsed * 1000 + 1
    assert snapshot(engine) == before, "a connection test changes nothing"
    return body, elapsed


def test_connection_test_succeeds_against_live_sources(
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    pi_server: FakePIServer,
    tmp_path: Path,
) -> None:
    a = tenant_a.tenant.id
    url = make_sql_historian(tmp_path / "h.db", [("T1", utcnow(), 1.0, "good")])
    ids = [
        add_integration(session_factory, a, type="sql", name="sql",
                        config={"url": url, "table": "historian"}),
        add_integration(session_factory, a, type="pi", name="pi",
                        config=pi_config(pi_server.base_url)),
        add_integration(session_factory, a, type="demo", name="demo", config={}),
    ]
    engineer = headers_for(client, tenant_a, "engineer")
    for integration_id in ids:
        body, _ = run_test(client, owner_engine, engineer, integration_id)
        assert body["ok"] is True, body


DEAD_SOURCES: list[tuple[str, str, Any, str]] = [
    ("pi-closed", "pi", lambda tmp, pi: pi_config(closed_port_url()), "unreachable"),
    ("pi-401", "pi", lambda tmp, pi: pi_config(pi.base_url, password="wrong"), "credentials"),
    ("pi-no-server", "pi", lambda tmp, pi: pi_config(pi.base_url, data_server="NOPE"), "NOPE"),
    ("pi-garbage", "pi", lambda tmp, pi: pi_config(pi.url("garbage")), "not JSON"),
    ("sql-no-db", "sql", lambda tmp, pi: {"url": f"sqlite:///{tmp}/none/h.db", "table": "h"},
     "failed"),
    ("sql-no-table", "sql",
     lambda tmp, pi: {"url": make_sql_historian(tmp / "h.db", []), "table": "nope"},
     "not found"),
    # A config stored before today's validation rules (or by hand) is reported, not a 500,
    # and so is a connector's unexpected exception (a port out of range).
    ("stored-invalid-config", "pi", lambda tmp, pi: {"base_url": "nonsense"}, "base_url"),
    ("pi-port-out-of-range", "pi", lambda tmp, pi: pi_config("http://127.0.0.1:99999/pi"),
     "port"),
]


def test_connection_test_reports_a_dead_source_clearly(
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    pi_server: FakePIServer,
    tmp_path: Path,
) -> None:
    engineer = headers_for(client, tenant_a, "engineer")
    for case, integration_type, config_of, words in DEAD_SOURCES:
        integration_id = add_integration(
            session_factory, tenant_a.tenant.id, type=integration_type, name=case,
            config=config_of(tmp_path, pi_server),
        )
        body, elapsed = run_test(client, owner_engine, engineer, integration_id)
        assert body["ok"] is False, case
        assert words in body["detail"], (case, body)
        assert "s3cret" not in body["detail"] and "wrong" not in body["detail"]
        assert elapsed < TIMEOUT + 1, case


def test_connection_test_of_a_hanging_source_ends_within_the_timeout(
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    pi_server: FakePIServer,
) -> None:
    """The fake PI's slow mount sleeps far past the timeout (the series suite uses a socket
    that never answers for the same bound)."""
    integration_id = add_integration(
        session_factory, tenant_a.tenant.id, type="pi", name="slow",
        config=pi_config(pi_server.url("slow")),
    )
    body, elapsed = run_test(
        client, owner_engine, headers_for(client, tenant_a, "tenant_admin"), integration_id
    )
    assert body["ok"] is False and "did not answer" in body["detail"]
    assert TIMEOUT - 0.5 < elapsed < TIMEOUT + 1
    assert body["latency_ms"] >= (TIMEOUT - 0.5) * 1000


def test_connection_test_needs_an_engineer_and_an_own_integration(
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
) -> None:
    integration_id = add_integration(
        session_factory, tenant_a.tenant.id, type="demo", name="d", config={}
    )
    before = snapshot(owner_engine)
    viewer = headers_for(client, tenant_a, "viewer")
    assert client.post(f"/api/integrations/{integration_id}/test", headers=viewer).status_code \
        == 403
    admin = headers_for(client, tenant_a, "tenant_admin")
    assert client.post("/api/integrations/999999/test", headers=admin).status_code == 404
    after = snapshot(owner_engine)
    # Only the two logins' AUTH events and tokens were written.
    for table in ("tenant_integration", "external_signal_mapping"):
        assert after[table] == before[table]
    assert {e["event_category"] for e in after["blackbox_event"][len(before["blackbox_event"]):]} \
        <= {"AUTH"}


def test_patch_with_explicit_nulls_is_422_and_changes_nothing(
    client: TestClient, owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    admin = headers_for(client, tenant_a, "tenant_admin")
    pi_id = create(client, admin, "pi", PI_SECRET_CONFIG)
    before = integration_rows(owner_engine)
    for body in ({"name": None}, {"config": None}, {"is_active": None}):
        response = client.patch(f"/api/integrations/{pi_id}", json=body, headers=admin)
        assert response.status_code == 422, (body, response.text)
        assert next(iter(body)) in response.text
    assert integration_rows(owner_engine) == before


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"type": "demo", "name": "x", "config": {"peak": 1e400}}', "not finite"),
        ('{"type": "demo", "name": "x", "config": {"note": "a\\u0000b"}}', "NUL"),
        ('{"type": "demo", "name": "x", "config": {"a\\u0000": 1}}', "NUL"),
        ('{"type": "demo", "name": "x\\u0000", "config": {}}', "NUL"),
    ],
)
def test_values_a_database_cannot_store_are_422_not_500(
    client: TestClient, owner_engine: Engine, tenant_a: TenantWorld, body: str, words: str
) -> None:
    response = client.post(
        "/api/integrations", content=body,
        headers={**headers_for(client, tenant_a, "tenant_admin"),
                 "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert words in response.text
    assert integration_rows(owner_engine) == []
