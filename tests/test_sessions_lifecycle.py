"""Browser sessions and credentials over time (DESIGN.md §16): the idle timeout and the absolute
end of a session, live streams counting as activity, the purge of dead credentials, Secure
cookies and HSTS outside demo mode, and a stream check that fails closed. Both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from functools import partial

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, insert, select, update

from tests.conftest import PASSWORD, TenantWorld, browser_login, test_settings
from tests.peers import served
from tests.test_live_streams import Mapped, mapped, read_events
from webapp.config import Settings
from webapp.db import create_session_factory, utcnow
from webapp.invalidation import clear_all_caches
from webapp.main import create_app
from webapp.security import token_digest
from webapp.tenancy.models import ApiToken, UserSession
from webapp.tenancy.service import live_credentials

__all__ = ["mapped"]  # the live-stream suite's fixture, used here
IDLE = timedelta(minutes=30)  # the default OPTRIA_SESSION_IDLE_MINUTES


def sessions(engine: Engine) -> list[dict]:
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(select(UserSession.__table__)).mappings()]


def set_sessions(engine: Engine, **values: object) -> None:
    """Sessions as they would be minutes or hours from now."""
    with engine.begin() as connection:
        connection.execute(update(UserSession).values(**values))
    # That much time outlasts any cache entry (seconds): what the app cached is gone by then.
    clear_all_caches()


def logged_in(client: TestClient, world: TenantWorld) -> None:
    browser_login(client, world.users["viewer"].email)
    assert client.get("/twins", follow_redirects=False).status_code == 200


# --- idle and absolute limits ---------------------------------------------------------------


def test_a_session_idle_for_longer_than_the_timeout_ends(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    logged_in(client, tenant_a)
    set_sessions(owner_engine, last_seen_at=utcnow() - IDLE - timedelta(seconds=5))
    response = client.get("/twins", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    assert client.get("/api/twins/assets").status_code == 401


def test_use_within_the_timeout_keeps_the_session_and_refreshes_it_at_most_once_a_minute(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    logged_in(client, tenant_a)
    almost_idle = utcnow() - IDLE + timedelta(minutes=1)
    set_sessions(owner_engine, last_seen_at=almost_idle)
    assert client.get("/twins", follow_redirects=False).status_code == 200
    (row,) = sessions(owner_engine)
    refreshed = row["last_seen_at"]
    assert refreshed > utcnow() - timedelta(seconds=30), "the request counted as activity"
    assert client.get("/twins", follow_redirects=False).status_code == 200
    (row,) = sessions(owner_engine)
    assert row["last_seen_at"] == refreshed, "not rewritten on every request"


def test_a_session_ends_after_its_absolute_lifetime_however_busy(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    logged_in(client, tenant_a)
    (row,) = sessions(owner_engine)
    assert row["expires_at"] - row["created_at"] == timedelta(hours=12)
    set_sessions(owner_engine, expires_at=utcnow() - timedelta(seconds=1), last_seen_at=utcnow())
    assert client.get("/twins", follow_redirects=False).status_code == 303


def test_an_open_live_view_is_activity(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine, mapped: Mapped
) -> None:
    """An operator watching a trend is not idle: the stream's per-tick check refreshes the
    session, so the next click still works after a long watch."""
    logged_in(client, tenant_a)
    stale = utcnow() - timedelta(minutes=5)
    with client.stream("GET", mapped.html_stream) as response:
        lines = response.iter_lines()
        read_events(lines, 2)
        set_sessions(owner_engine, last_seen_at=stale)
        read_events(lines, 6)  # three readings: at least two ticks of the stream check
    (row,) = sessions(owner_engine)
    assert row["last_seen_at"] > stale + timedelta(minutes=4)


# --- purge ----------------------------------------------------------------------------------


def test_logging_in_purges_the_tenants_dead_sessions_and_tokens(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld, owner_engine: Engine
) -> None:
    now = utcnow()
    dead_and_alive = []
    for world in (tenant_a, tenant_b):
        user_id = world.users["viewer"].id
        for name, expires, seen in (
            ("expired", now - timedelta(minutes=1), now - timedelta(minutes=2)),
            ("idle", now + timedelta(hours=1), now - IDLE - timedelta(minutes=1)),
            ("alive", now + timedelta(hours=1), now),
        ):
            dead_and_alive.append({
                "tenant_id": world.tenant.id, "user_id": user_id, "created_at": now,
                "session_hash": token_digest(f"{world.tenant.code}-{name}"),
                "expires_at": expires, "last_seen_at": seen,
            })
    tokens = [
        {"tenant_id": world.tenant.id, "user_id": world.users["viewer"].id, "created_at": now,
         "token_hash": token_digest(f"{world.tenant.code}-{name}"), "expires_at": expires}
        for world in (tenant_a, tenant_b)
        for name, expires in (
            ("old", now - timedelta(seconds=1)), ("live", now + timedelta(hours=1)),
        )
    ]
    with owner_engine.begin() as connection:
        connection.execute(insert(UserSession.__table__), dead_and_alive)
        connection.execute(insert(ApiToken.__table__), tokens)

    browser_login(client, tenant_a.users["viewer"].email)

    left = {row["session_hash"] for row in sessions(owner_engine)}
    assert token_digest("TENANT_A-expired") not in left
    assert token_digest("TENANT_A-idle") not in left
    assert {token_digest("TENANT_A-alive"), token_digest("TENANT_B-expired"),
            token_digest("TENANT_B-idle"), token_digest("TENANT_B-alive")} <= left
    with owner_engine.connect() as connection:
        token_hashes = set(connection.execute(select(ApiToken.token_hash)).scalars())
    assert token_digest("TENANT_A-old") not in token_hashes
    assert {token_digest("TENANT_A-live"), token_digest("TENANT_B-old")} <= token_hashes


# --- Secure cookies and HSTS outside demo mode ----------------------------------------------


@pytest.fixture
def production_settings(database_url: str) -> Settings:
    return test_settings(database_url, demo_mode=False)


@pytest.fixture
def production_app(production_settings: Settings) -> Iterator[FastAPI]:
    app = create_app(production_settings)
    yield app
    app.state.engine.dispose()


def test_outside_demo_mode_the_cookie_is_secure_and_https_gets_hsts(
    production_app: FastAPI, tenant_a: TenantWorld
) -> None:
    with TestClient(production_app, base_url="https://testserver") as https:
        response = https.post(
            "/login", data={"email": tenant_a.users["viewer"].email, "password": PASSWORD},
            follow_redirects=False,
        )
        assert response.status_code == 303
        cookie = response.headers["set-cookie"].lower()
        assert "optria_session=" in cookie and "secure" in cookie and "httponly" in cookie
        hsts = https.get("/twins").headers["strict-transport-security"]
        assert "max-age=31536000" in hsts
    with TestClient(production_app) as plain_http:
        assert "strict-transport-security" not in plain_http.get("/healthz").headers


def test_a_trusted_proxys_forwarded_https_gets_hsts(production_app: FastAPI) -> None:
    with served(production_app) as base_url:
        behind_tls = httpx.get(f"{base_url}/healthz", headers={"X-Forwarded-Proto": "https"})
        direct = httpx.get(f"{base_url}/healthz")
    assert behind_tls.status_code == 200
    assert "max-age" in behind_tls.headers["strict-transport-security"]
    assert "strict-transport-security" not in direct.headers


def test_the_demo_keeps_plain_http_cookies(client: TestClient, tenant_a: TenantWorld) -> None:
    response = client.post(
        "/login", data={"email": tenant_a.users["viewer"].email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert "secure" not in response.headers["set-cookie"].lower()
    assert "strict-transport-security" not in response.headers


# --- the per-tick stream check fails closed -------------------------------------------------


def test_streams_end_when_their_credentials_cannot_be_checked(
    client: TestClient, tenant_a: TenantWorld, mapped: Mapped, tmp_path_factory
) -> None:
    """A database the hub cannot reach confirms nobody: after two failed checks every stream
    ends — without `close`, so the browser reconnects and authenticates afresh."""
    hub = client.app.state.hub
    logged_in(client, tenant_a)
    unreachable = create_engine(f"sqlite:///{tmp_path_factory.mktemp('gone')}/missing/db.sqlite")
    working = hub.check_credentials
    with client.stream("GET", mapped.html_stream) as response:
        lines = response.iter_lines()
        read_events(lines, 2)
        hub.check_credentials = partial(live_credentials, create_session_factory(unreachable))
        try:
            rest = read_events(lines, 100)
        finally:
            hub.check_credentials = working
            unreachable.dispose()
    assert len(rest) < 100, "the stream ended"
    assert all(event["event"] in ("latest", "chart", "table") for event in rest), (
        "no close: reconnect")
    assert client.get("/twins", follow_redirects=False).status_code == 200
