"""The attacks of issue P6, tried for real against the API (DESIGN.md §16), on both backends.

A tenant admin's token tries to make the server connect where it must not (loopback, cloud
metadata, private ranges, the app's own database, local files), to send a stored historian
password to a host of its choosing, and to hide secrets in URL options. A loopback listener
stands in for the attacker's host: it must never receive a connection. Production-mode apps
(demo mode off) are built here; the suite's shared app runs in demo mode, where loopback is
allowed, which is exactly the case where only the stored-secret rule protects.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TEST_SECRET_KEY, TenantWorld, bearer_headers, test_settings
from tests.connectors.net_peers import TCPPeer, tcp_peer
from tests.peers import (
    add_integration,
    add_mapping,
    events,
    fake_pi_server,
    integration_rows,
    pi_config,
    snapshot,
)
from webapp.connectors.registry import cached_integrations as connector_cache
from webapp.integrations.secrets import SecretVault
from webapp.main import create_app

SETTING = "OPTRIA_CONNECTOR_ALLOW"


@pytest.fixture
def attacker() -> Iterator[TCPPeer]:
    """The attacker's host: a loopback listener counting every connection it receives."""
    with tcp_peer() as peer:
        yield peer


def production_app(database_url: str, **overrides: Any) -> FastAPI:
    return create_app(test_settings(database_url, demo_mode=False, **overrides))


@pytest.fixture
def prod(database_url: str) -> Iterator[TestClient]:
    app = production_app(database_url)
    with TestClient(app, base_url="https://testserver") as client:
        yield client
    app.state.engine.dispose()


def admin(client: TestClient, world: TenantWorld) -> dict[str, str]:
    return bearer_headers(client, world.admin.email)


def refused_configs(attacker: TCPPeer, database_url: str, tmp_path: Path) -> list[tuple]:
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("loopback", "pi", pi_config(f"http://127.0.0.1:{attacker.port}/piwebapi")),
        ("name of loopback", "pi", pi_config(f"http://localhost:{attacker.port}/piwebapi")),
        ("ipv6 loopback", "pi", pi_config(f"http://[::1]:{attacker.port}/piwebapi")),
        ("cloud metadata", "pi", pi_config("http://169.254.169.254/latest/meta-data")),
        ("metadata, v4-mapped", "pi", pi_config("http://[::ffff:169.254.169.254]/piwebapi")),
        ("private range", "pi", pi_config("https://10.20.30.40/piwebapi")),
        ("unspecified", "pi", pi_config("http://0.0.0.0:8080/piwebapi")),
        ("opc ua on loopback", "opcua", {"endpoint": f"opc.tcp://127.0.0.1:{attacker.port}/"}),
        ("sqlite file", "sql", {"url": f"sqlite:///{tmp_path}/evil/created.db", "table": "t"}),
        ("sql on loopback", "sql",
         {"url": f"postgresql://postgres@127.0.0.1:{attacker.port}/x", "table": "t"}),
    ]
    db = make_url(database_url)
    if db.get_backend_name() == "postgresql":
        # Ambient credentials (no password, trust auth) on the app's own database server.
        cases.append(("the app's database", "sql", {
            "url": f"postgresql://{db.username}@{db.host}:{db.port or 5432}/{db.database}",
            "table": "user",
        }))
    return cases


def test_refused_destinations_cannot_be_saved(
    prod: TestClient, tenant_a: TenantWorld, attacker: TCPPeer, owner_engine: Engine,
    database_url: str, tmp_path: Path,
) -> None:
    headers = admin(prod, tenant_a)
    for case, integration_type, config in refused_configs(attacker, database_url, tmp_path):
        response = prod.post(
            "/api/integrations", json={"type": integration_type, "name": case, "config": config},
            headers=headers,
        )
        assert response.status_code == 422, (case, response.text)
        (error,) = response.json()["detail"]
        assert error["loc"] == ["body", "config"]
        assert SETTING in error["msg"] or "demo mode" in error["msg"], (case, error)
    assert integration_rows(owner_engine) == []
    assert attacker.accepted() == 0
    assert not (tmp_path / "evil").exists(), "no file was created"


def test_refused_destinations_cannot_be_patched_in_or_tested(
    prod: TestClient, tenant_a: TenantWorld, session_factory: sessionmaker[Session],
    attacker: TCPPeer, owner_engine: Engine, database_url: str, tmp_path: Path,
) -> None:
    headers = admin(prod, tenant_a)
    created = prod.post(
        "/api/integrations",
        json={"type": "pi", "name": "PI", "config": pi_config("https://pi.example.com/piwebapi")},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    pi_id = created.json()["id"]
    before = integration_rows(owner_engine)
    evil = pi_config(f"http://127.0.0.1:{attacker.port}/piwebapi")
    response = prod.patch(f"/api/integrations/{pi_id}", json={"config": evil}, headers=headers)
    assert response.status_code == 422 and SETTING in response.text
    assert integration_rows(owner_engine) == before

    # Rows stored before the policy existed: a test is refused before anything is sent…
    for case, integration_type, config in refused_configs(attacker, database_url, tmp_path):
        stored_id = add_integration(
            session_factory, tenant_a.tenant.id, type=integration_type, name=case, config=config
        )
        state = snapshot(owner_engine)
        response = prod.post(f"/api/integrations/{stored_id}/test", headers=headers)
        assert response.status_code == 422, (case, response.text)
        assert SETTING in response.text or "demo mode" in response.text
        assert snapshot(owner_engine) == state
        # …and it can still be renamed or switched off (no destination involved).
        renamed = prod.patch(
            f"/api/integrations/{stored_id}", json={"name": f"{case} (off)", "is_active": False},
            headers=headers,
        )
        assert renamed.status_code == 200, (case, renamed.text)
    assert attacker.accepted() == 0


def test_reading_a_refused_integrations_data_is_a_503_and_reaches_nothing(
    prod: TestClient, tenant_a: TenantWorld, session_factory: sessionmaker[Session],
    attacker: TCPPeer, owner_engine: Engine,
) -> None:
    """A row stored before the policy: the connector refuses at connect time."""
    integration_id = add_integration(
        session_factory, tenant_a.tenant.id, type="pi", name="old",
        config=pi_config(f"http://127.0.0.1:{attacker.port}/piwebapi"),
    )
    add_mapping(
        session_factory, tenant_a.tenant.id, asset_id=tenant_a.assets[0].id,
        integration_id=integration_id, metric="vibration_rms", tag="PI:P-101.VIB",
    )
    response = prod.get(
        f"/api/twins/assets/{tenant_a.assets[0].id}/metrics/vibration_rms/series",
        headers=admin(prod, tenant_a),
    )
    assert response.status_code == 503
    assert SETTING in response.json()["detail"]
    assert attacker.accepted() == 0
    assert [e["source_type"] for e in events(owner_engine, tenant_id=tenant_a.tenant.id,
                                               category="CONNECTOR")] == ["CONNECTOR"]


def test_connector_allow_opens_loopback_but_never_link_local(
    database_url: str, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    app = production_app(database_url, connector_allow="127.0.0.1, 0.0.0.0/0")
    with fake_pi_server() as pi, TestClient(app, base_url="https://testserver") as client:
        headers = admin(client, tenant_a)
        created = client.post(
            "/api/integrations",
            json={"type": "pi", "name": "PI", "config": pi_config(pi.base_url)},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        tested = client.post(f"/api/integrations/{created.json()['id']}/test", headers=headers)
        assert tested.status_code == 200 and tested.json()["ok"] is True, tested.text
        metadata = client.post(
            "/api/integrations",
            json={"type": "pi", "name": "x",
                  "config": pi_config("http://169.254.169.254/latest/meta-data")},
            headers=headers,
        )
        assert metadata.status_code == 422
        assert "never allowed" in metadata.text
    app.state.engine.dispose()


@pytest.mark.postgres
def test_the_apps_database_opens_only_when_named_with_its_port(
    database_url: str, tenant_a: TenantWorld, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("the app's database is a network endpoint on PostgreSQL only")
    db = make_url(database_url)
    port = db.port or 5432
    config = {"url": f"postgresql://{db.username}@{db.host}:{port}/{db.database}",
              "table": "user"}
    for allow, expected in ((f"{db.host}", 422), (f"{db.host}:{port}", 201)):
        app = production_app(database_url, connector_allow=allow)
        with TestClient(app, base_url="https://testserver") as client:
            response = client.post(
                "/api/integrations", json={"type": "sql", "name": allow, "config": config},
                headers=admin(client, tenant_a),
            )
        app.state.engine.dispose()
        assert response.status_code == expected, (allow, response.text)


@pytest.mark.parametrize(
    ("url", "option"),
    [
        ("postgresql://reader@db.example.com/history?password=hunter2", "password"),
        ("postgresql://reader@db.example.com/history?host=/var/run/postgresql", "host"),
        ("postgresql://reader@db.example.com/history?options=-c%20role%3Dpostgres", "options"),
        ("postgresql:///history", "host"),
    ],
)
def test_sql_urls_take_only_sslmode_and_connect_timeout(
    prod: TestClient, tenant_a: TenantWorld, owner_engine: Engine, url: str, option: str
) -> None:
    body = {"type": "sql", "name": "h", "config": {"url": url, "table": "h"}}
    response = prod.post("/api/integrations", json=body, headers=admin(prod, tenant_a))
    assert response.status_code == 422, response.text
    assert option in response.json()["detail"][0]["msg"]
    assert "hunter2" not in response.text
    assert integration_rows(owner_engine) == []


def test_sql_urls_with_sslmode_and_connect_timeout_are_accepted(
    prod: TestClient, tenant_a: TenantWorld
) -> None:
    url = "postgresql://reader:pw@db.example.com:5433/history?sslmode=require&connect_timeout=3"
    body = {"type": "sql", "name": "h", "config": {"url": url, "table": "h"}}
    response = prod.post("/api/integrations", json=body, headers=admin(prod, tenant_a))
    assert response.status_code == 201, response.text
    assert response.json()["config"]["url"] == url.replace(":pw@", ":***@")


# --- stored secrets -------------------------------------------------------------------------


def test_a_stored_password_never_follows_a_changed_destination(
    client: TestClient, tenant_a: TenantWorld, attacker: TCPPeer, owner_engine: Engine
) -> None:
    """The steal: PATCH base_url to one's own host echoing "***", then press "test". In demo
    mode loopback is reachable, so only the stored-secret rule stands in the way."""
    headers = admin(client, tenant_a)
    with fake_pi_server() as pi:
        created = client.post(
            "/api/integrations",
            json={"type": "pi", "name": "PI", "config": pi_config(pi.base_url)},
            headers=headers,
        )
        pi_id = created.json()["id"]
        masked = created.json()["config"]
        assert masked["password"] == "***"
        before = integration_rows(owner_engine)
        for moved in (
            {"base_url": f"http://127.0.0.1:{attacker.port}/piwebapi"},  # another port
            {"base_url": pi.base_url.replace("http:", "https:")},  # another scheme
            {"username": "someone-else"},  # another user
            {"data_server": "OTHER"},  # another data server
        ):
            response = client.patch(
                f"/api/integrations/{pi_id}", json={"config": {**masked, **moved}},
                headers=headers,
            )
            assert response.status_code == 422, (moved, response.text)
            assert "re-enter the password" in response.text
        assert integration_rows(owner_engine) == before
        tested = client.post(f"/api/integrations/{pi_id}/test", headers=headers)
        assert tested.json()["ok"] is True, "still the real PI, with its password"
    assert attacker.accepted() == 0

    # With the password typed again, moving is the admin's right.
    response = client.patch(
        f"/api/integrations/{pi_id}",
        json={"config": {**masked, "base_url": f"http://127.0.0.1:{attacker.port}/piwebapi",
                         "password": "a-new-one"}},
        headers=headers,
    )
    assert response.status_code == 200, response.text


def test_secrets_are_sealed_at_rest_and_masked_everywhere_they_are_shown(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = ("pi-pa55", "tok-9f", "query-s3cret", "url-pw-77")
    config = {
        **pi_config("http://127.0.0.1:9/piwebapi", password="pi-pa55"),
        "api_token": "tok-9f",
        "mirror": "https://reader:url-pw-77@mirror.example.com/pi?api_key=query-s3cret&x=1",
    }
    headers = admin(client, tenant_a)
    caplog.set_level(logging.DEBUG)
    created = client.post("/api/integrations", json={"type": "pi", "name": "PI", "config": config},
                          headers=headers)
    assert created.status_code == 201, created.text
    pi_id = created.json()["id"]
    tested = client.post(f"/api/integrations/{pi_id}/test", headers=headers)  # fails: port 9
    listed = client.get("/api/integrations", headers=headers)
    shown = created.json()["config"]
    assert shown["mirror"] == "https://reader:***@mirror.example.com/pi?api_key=***&x=1"
    assert shown["password"] == shown["api_token"] == "***"
    (row,) = integration_rows(owner_engine)
    stored = json.dumps(row["config"])
    assert stored.count("enc:v1:") == 4
    blackbox = json.dumps(events(owner_engine), default=str)
    for secret in secrets:
        assert secret not in stored, "sealed at rest"
        for text in (created.text, tested.text, listed.text, blackbox, caplog.text):
            assert secret not in text
    # Sealed with the deployment's key, opened exactly.
    assert SecretVault([TEST_SECRET_KEY]).reveal(row["config"]) == config


def test_a_secret_sealed_with_a_lost_key_is_a_clear_503_not_a_500(
    client: TestClient, tenant_a: TenantWorld, session_factory: sessionmaker[Session],
) -> None:
    with fake_pi_server() as pi:
        sealed_elsewhere = SecretVault(["another deployment's key"]).seal(pi_config(pi.base_url))
        integration_id = add_integration(
            session_factory, tenant_a.tenant.id, type="pi", name="moved", config=sealed_elsewhere
        )
        add_mapping(
            session_factory, tenant_a.tenant.id, asset_id=tenant_a.assets[0].id,
            integration_id=integration_id, metric="vibration_rms", tag="PI:P-101.VIB",
        )
        headers = admin(client, tenant_a)
        response = client.get(
            f"/api/twins/assets/{tenant_a.assets[0].id}/metrics/vibration_rms/series",
            headers=headers,
        )
        assert response.status_code == 503
        assert "OPTRIA_SECRETS_KEY" in response.json()["detail"]
        tested = client.post(f"/api/integrations/{integration_id}/test", headers=headers)
        assert tested.status_code == 200 and tested.json()["ok"] is False
        # Echoing *** cannot keep a secret nobody can read: it must be entered again.
        masked = client.get("/api/integrations", headers=headers).json()["integrations"][0]
        kept = client.patch(f"/api/integrations/{integration_id}",
                            json={"config": masked["config"]}, headers=headers)
        assert kept.status_code == 422
        fresh = client.patch(
            f"/api/integrations/{integration_id}",
            json={"config": {**masked["config"], "password": pi_config(pi.base_url)["password"]}},
            headers=headers,
        )
        assert fresh.status_code == 200, fresh.text
        retested = client.post(f"/api/integrations/{integration_id}/test", headers=headers)
        assert retested.json()["ok"] is True, retested.text


def test_key_rotation_keeps_old_secrets_readable(
    database_url: str, tenant_a: TenantWorld, session_factory: sessionmaker[Session],
) -> None:
    with fake_pi_server() as pi:
        integration_id = add_integration(
            session_factory, tenant_a.tenant.id, type="pi", name="PI",
            config=SecretVault([TEST_SECRET_KEY]).seal(pi_config(pi.base_url)),
        )
        app = create_app(test_settings(database_url, secrets_key="a brand new key"))
        with TestClient(app) as client:
            tested = client.post(f"/api/integrations/{integration_id}/test",
                                 headers=admin(client, tenant_a))
        app.state.engine.dispose()
    assert tested.json()["ok"] is True, "the old key still opens, the new one seals"


# --- secrets the parsers could disagree about, or that were sealed elsewhere ------------------


def test_a_sql_password_whose_end_parsers_disagree_on_is_refused_and_never_shown(
    prod: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    """SQLAlchemy reads `S3cr/et#pw` as the password; URL parsers stop at "/": it must be
    percent-encoded, and the refusal shows none of it."""
    for password in ("S3cr/et#pw", "a?b", "x[y"):
        url = f"postgresql://hist:{password}@db.example.com:5432/plant"
        body = {"type": "sql", "name": "h", "config": {"url": url, "table": "historian"}}
        response = prod.post("/api/integrations", json=body, headers=admin(prod, tenant_a))
        assert response.status_code == 422, (password, response.text)
        assert "percent-encoded" in response.text and password not in response.text
    assert integration_rows(owner_engine) == []
    encoded = "postgresql://hist:S3cr%2Fet%23pw@db.example.com:5432/plant"
    body = {"type": "sql", "name": "h", "config": {"url": encoded, "table": "historian"}}
    created = prod.post("/api/integrations", json=body, headers=admin(prod, tenant_a))
    assert created.status_code == 201, created.text
    stored = json.dumps(integration_rows(owner_engine)[0]["config"])
    assert "S3cr" not in created.text and "S3cr" not in stored


def test_an_unparsable_or_ambiguous_url_anywhere_in_a_config_is_a_secret_as_a_whole(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    config = {"mirror": "postgresql://u:p/a?s#s@h/db", "other": "http://u:pw[@h/"}
    created = client.post("/api/integrations",
                          json={"type": "demo", "name": "d", "config": config},
                          headers=admin(client, tenant_a))
    assert created.status_code == 201, created.text
    assert created.json()["config"] == {"mirror": "***", "other": "***"}
    stored = json.dumps(integration_rows(owner_engine)[0]["config"])
    assert "p/a?s#s" not in stored and "pw[" not in stored
    assert SecretVault([TEST_SECRET_KEY]).reveal(integration_rows(owner_engine)[0]["config"]) \
        == config


def test_a_sealed_value_from_a_client_is_refused(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld,
    session_factory: sessionmaker[Session], attacker: TCPPeer,
) -> None:
    """Another tenant's sealed password, read from a backup, must not be opened for whoever
    sends it back: the server only ever opens what it sealed into that same row."""
    b_config = SecretVault([TEST_SECRET_KEY]).seal(pi_config("https://pi.b.example/piwebapi"))
    sealed = b_config["password"]
    headers = admin(client, tenant_a)
    for config in (
        pi_config(f"http://127.0.0.1:{attacker.port}/piwebapi", password=sealed),
        {"url": f"postgresql://eve:{sealed}@127.0.0.1:{attacker.port}/x", "table": "t"},
    ):
        kind = "pi" if "base_url" in config else "sql"
        response = client.post("/api/integrations",
                               json={"type": kind, "name": "x", "config": config},
                               headers=headers)
        assert response.status_code == 422, response.text
        assert "sealed value" in response.text
    assert attacker.accepted() == 0


@pytest.mark.parametrize(
    ("integration_type", "config", "moved"),
    [
        ("pi", pi_config("https://pi.example.com/piwebapi", verify_tls=True),
         {"verify_tls": False}),
        ("sql", {"url": "postgresql://u:pw@db.example.com/h?sslmode=verify-full", "table": "h"},
         {"url": "postgresql://u:***@db.example.com/h?sslmode=disable"}),
        ("sql", {"url": "postgresql://u:pw@db.example.com/h", "table": "h"},
         {"url": "postgresql://other:***@db.example.com/h"}),
        ("opcua", {"endpoint": "opc.tcp://plc.example.com:4840", "username": "op",
                   "password": "pw", "security_policy": "Basic256Sha256,Sign,c.der,k.pem"},
         {"security_policy": "None"}),
        ("pi", {**pi_config("https://svc:pw@pi.example.com/piwebapi"), "username": None},
         {"base_url": "https://other:***@pi.example.com/piwebapi"}),
    ],
)
def test_a_kept_password_never_goes_over_a_weaker_channel_or_to_another_user(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine,
    integration_type: str, config: dict, moved: dict,
) -> None:
    headers = admin(client, tenant_a)
    config = {key: value for key, value in config.items() if value is not None}
    created = client.post("/api/integrations",
                          json={"type": integration_type, "name": "x", "config": config},
                          headers=headers)
    assert created.status_code == 201, created.text
    before = integration_rows(owner_engine)
    response = client.patch(f"/api/integrations/{created.json()['id']}",
                            json={"config": {**created.json()["config"], **moved}},
                            headers=headers)
    assert response.status_code == 422, response.text
    assert "re-enter the password" in response.text
    assert integration_rows(owner_engine) == before


def test_a_masked_url_password_is_kept_in_its_own_place_only(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    """Echoing *** as a query option does not pull the URL's password into it."""
    headers = admin(client, tenant_a)
    created = client.post(
        "/api/integrations",
        json={"type": "demo", "name": "d",
              "config": {"mirror": "https://svc:url-pw@h.example.com/x"}},
        headers=headers,
    ).json()
    response = client.patch(
        f"/api/integrations/{created['id']}",
        json={"config": {"mirror": "https://svc@h.example.com/x?token=***"}}, headers=headers,
    )
    assert response.status_code == 422, "no stored token behind that ***"
    assert "url-pw" not in response.text


def test_switching_an_integration_off_stops_its_polls_and_closes_its_connector(
    client: TestClient, tenant_a: TenantWorld, session_factory: sessionmaker[Session],
) -> None:
    """Its stored credentials are used for nothing more: no feed polls on after the last
    viewer left, and the cached client (keep-alive pool, WebIds) is closed."""
    with fake_pi_server() as pi:
        integration_id = add_integration(session_factory, tenant_a.tenant.id, type="pi",
                                         name="PI", config=pi_config(pi.base_url))
        add_mapping(session_factory, tenant_a.tenant.id, asset_id=tenant_a.assets[0].id,
                    integration_id=integration_id, metric="vibration_rms", tag="PI:P-101.VIB")
        headers = admin(client, tenant_a)
        stream = f"/api/twins/assets/{tenant_a.assets[0].id}/metrics/vibration_rms/stream"
        hub, key = client.app.state.hub, (integration_id, "PI:P-101.VIB")
        with client.stream("GET", stream, headers=headers) as response:
            assert response.status_code == 200
            deadline = time.monotonic() + 5
            while key not in hub.feeds:  # a feed now polls PI every tick
                assert time.monotonic() < deadline, "no feed for the stream"
                time.sleep(0.02)
        assert key in hub.feeds, "kept after the viewer left, for resumes"
        switched_off = client.patch(f"/api/integrations/{integration_id}",
                                    json={"is_active": False}, headers=headers)
        assert switched_off.status_code == 200
        scanner = client.app.state.scanner
        deadline = time.monotonic() + 5
        while key in hub.feeds:
            assert time.monotonic() < deadline, "the feed went on"
            time.sleep(0.02)
        asked = len(pi.requests)
        ticks, deadline = scanner.ticks, time.monotonic() + 5
        while scanner.ticks < ticks + 3:  # three stream intervals pass
            assert time.monotonic() < deadline, "the scanner stopped ticking"
            time.sleep(0.02)
        assert len(pi.requests) == asked, "no poll after the integration was switched off"
        assert integration_id not in connector_cache()
