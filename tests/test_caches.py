"""Principal and signal caches (DESIGN.md §17): a repeat request does no credential or mapping
lookup, any committed change to what they hold drops the tenant's entries at once (and only
that tenant's), a change read while it committed is not kept, and on PostgreSQL the caches
answer only while their process listens for other processes' changes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text, update
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers, database_at, test_settings
from tests.peers import add_integration, add_mapping
from webapp.db import tenant_session
from webapp.integrations.models import ExternalSignalMapping
from webapp.invalidation import CHANNEL, TenantCache, Topic, parse_notification
from webapp.main import create_app
from webapp.tenancy.models import ApiToken, Tenant, UserSession

# --- the cache itself ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl_or_at_their_own_end_if_sooner() -> None:
    clock = Clock()
    cache: TenantCache[str, str] = TenantCache(Topic.signals, ttl=5, clock=clock, trusted=True)
    cache.put("a", "A", tenant_id=1, generation=cache.generation)
    cache.put("b", "B", tenant_id=1, generation=cache.generation, until=clock.now + 2)
    clock.now += 1.9
    assert (cache.get("a"), cache.get("b")) == ("A", "B")
    clock.now += 0.1
    assert (cache.get("a"), cache.get("b")) == ("A", None)
    clock.now += 3
    assert cache.get("a") is None


def test_dropping_a_tenant_keeps_the_other_tenants_entries() -> None:
    cache: TenantCache[str, str] = TenantCache(Topic.principals, trusted=True)
    cache.put("a1", "x", tenant_id=1, generation=cache.generation)
    cache.put("b1", "y", tenant_id=2, generation=cache.generation)
    cache.drop_tenant(1)
    assert (cache.get("a1"), cache.get("b1")) == (None, "y")


def test_a_value_read_while_a_change_committed_is_not_kept() -> None:
    cache: TenantCache[str, str] = TenantCache(Topic.principals, trusted=True)
    generation = cache.generation  # the request starts its lookup...
    cache.drop_tenant(7)  # ...a change commits meanwhile (any tenant: the key's is unknown)...
    cache.put("token", "stale user", tenant_id=7, generation=generation)
    assert cache.get("token") is None


def test_an_untrusted_cache_answers_nothing_and_keeps_nothing() -> None:
    cache: TenantCache[str, str] = TenantCache(Topic.signals, trusted=True)
    cache.put("k", "v", tenant_id=1, generation=cache.generation)
    cache.set_trusted(False)
    assert cache.get("k") is None
    cache.put("k", "v", tenant_id=1, generation=cache.generation)
    cache.set_trusted(True)
    assert cache.get("k") is None


@pytest.mark.parametrize(
    ("payload", "parsed"),
    [
        ("principals:12", (Topic.principals, 12)),
        ("signals:3", (Topic.signals, 3)),
        ("signals:x", None),
        ("other:1", None),
        ("", None),
        ("principals", None),
    ],
)
def test_only_well_formed_notifications_are_acted_on(
    payload: str, parsed: tuple[Topic, int] | None
) -> None:
    assert parse_notification(payload) == parsed


# --- the caches in the app ----------------------------------------------------------------------


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def series_url(session_factory: sessionmaker[Session], tenant_a: TenantWorld) -> str:
    integration = add_integration(
        session_factory, tenant_a.tenant.id, type="demo", name="Demo", config={}
    )
    asset = tenant_a.assets[0]
    add_mapping(session_factory, tenant_a.tenant.id, asset_id=asset.id,
                integration_id=integration, metric="vibration_rms", tag="DEMO:P-101.VIB")
    return f"/api/twins/assets/{asset.id}/metrics/vibration_rms/series"


@pytest.fixture
def listening(app: FastAPI, client: TestClient, backend: str) -> TestClient:
    """The client, once its app listens for changes (PostgreSQL only: on SQLite the caches
    stay off, as another process's change could not be heard)."""
    if backend != "postgresql":
        pytest.skip("the caches are used on PostgreSQL only")
    assert app.state.invalidations.listening.wait(10), "the listener did not connect"
    return client


def lookups(seen: list[str]) -> dict[str, int]:
    return {
        "credential": sum("api_token" in s or "user_session" in s for s in seen),
        "mapping": sum("external_signal_mapping" in s for s in seen),
    }


def test_a_repeat_request_looks_up_neither_credential_nor_mapping(
    app: FastAPI, listening: TestClient, tenant_a: TenantWorld, series_url: str,
) -> None:
    headers = bearer_headers(listening, tenant_a.users["viewer"].email)
    with statements(app.state.engine) as first:
        assert listening.get(series_url, headers=headers).status_code == 200
    assert lookups(first) == {"credential": 1, "mapping": 1}
    with statements(app.state.engine) as repeat:
        assert listening.get(series_url, headers=headers).status_code == 200
    assert lookups(repeat) == {"credential": 0, "mapping": 0}
    # Still recorded: the BlackBox event is never cached away.
    assert any("blackbox_event" in s for s in repeat)


def test_the_chain_lock_rides_on_the_head_read(
    app: FastAPI, listening: TestClient, tenant_a: TenantWorld, series_url: str,
) -> None:
    """The BlackBox batch's tenant setting and chain lock go in front of its head read: one
    round trip, not three (DESIGN.md §17)."""
    headers = bearer_headers(listening, tenant_a.users["viewer"].email)
    with statements(app.state.engine) as seen:
        assert listening.get(series_url, headers=headers).status_code == 200
    [locking] = [s for s in seen if "pg_advisory_xact_lock" in s]
    setting, lock, head_read = (part.strip() for part in locking.split(";"))
    assert setting.startswith("SELECT set_config('app.tenant_id'")
    assert lock.startswith("SELECT pg_advisory_xact_lock(")
    assert "FROM blackbox_event" in head_read and "nextval" in head_read


def test_a_revoked_token_stops_at_once(
    listening: TestClient, tenant_a: TenantWorld, series_url: str,
) -> None:
    headers = bearer_headers(listening, tenant_a.users["viewer"].email)
    assert listening.get(series_url, headers=headers).status_code == 200
    assert listening.post("/api/auth/revoke", headers=headers).status_code == 200
    assert listening.get(series_url, headers=headers).status_code == 401


def test_a_deactivated_user_and_a_role_change_apply_at_once(
    listening: TestClient, tenant_a: TenantWorld, series_url: str,
) -> None:
    admin = bearer_headers(listening, tenant_a.admin.email)
    viewer = tenant_a.users["viewer"]
    headers = bearer_headers(listening, viewer.email)
    assert listening.get(series_url, headers=headers).status_code == 200
    assert listening.get("/api/users", headers=headers).status_code == 403
    changed = listening.patch(f"/api/users/{viewer.id}", json={"role": "tenant_admin"},
                              headers=admin)
    assert changed.status_code == 200, changed.text
    assert listening.get("/api/users", headers=headers).status_code == 200  # the new role
    off = listening.patch(f"/api/users/{viewer.id}", json={"is_active": False}, headers=admin)
    assert off.status_code == 200, off.text
    assert listening.get(series_url, headers=headers).status_code == 401


def test_a_changed_mapping_applies_at_once_whoever_commits_it(
    listening: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld,
    series_url: str,
) -> None:
    headers = bearer_headers(listening, tenant_a.users["viewer"].email)
    window = {"from_time": "2026-01-01T00:00:00Z", "to_time": "2026-01-01T00:04:00Z"}
    before = listening.get(series_url, headers=headers, params=window).json()["points"]
    # Not through the API: any ORM change is announced (here, another component's session).
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        session.execute(update(ExternalSignalMapping).values(scaling_factor=10.0))
        session.commit()
    after = listening.get(series_url, headers=headers, params=window).json()["points"]
    assert [p["value"] for p in after] == pytest.approx([p["value"] * 10 for p in before])

    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        mapping = session.query(ExternalSignalMapping).one()
        mapping.is_active = False
        session.commit()
    assert listening.get(series_url, headers=headers).status_code == 404


def test_a_rolled_back_change_and_another_tenants_change_drop_nothing(
    app: FastAPI, listening: TestClient, session_factory: sessionmaker[Session],
    tenant_a: TenantWorld, tenant_b: TenantWorld, series_url: str,
) -> None:
    headers = bearer_headers(listening, tenant_a.users["viewer"].email)
    assert listening.get(series_url, headers=headers).status_code == 200
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        session.execute(update(ExternalSignalMapping).values(scaling_factor=3.0))
        session.rollback()
    with tenant_session(session_factory, tenant_b.tenant.id) as session:
        session.execute(update(ApiToken).values(revoked_at=None))
        session.commit()
    with statements(app.state.engine) as seen:
        assert listening.get(series_url, headers=headers).status_code == 200
    assert lookups(seen) == {"credential": 0, "mapping": 0}


def test_a_browser_session_touching_its_clock_keeps_the_cache(
    app: FastAPI, listening: TestClient, session_factory: sessionmaker[Session],
    tenant_a: TenantWorld, series_url: str,
) -> None:
    headers = bearer_headers(listening, tenant_a.users["viewer"].email)
    assert listening.get(series_url, headers=headers).status_code == 200
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        session.execute(update(UserSession).values(last_seen_at=UserSession.created_at))
        session.commit()
    with statements(app.state.engine) as seen:
        assert listening.get(series_url, headers=headers).status_code == 200
    assert lookups(seen)["credential"] == 0


def test_without_its_listener_the_cache_is_not_used(
    app: FastAPI, listening: TestClient, tenant_a: TenantWorld, series_url: str,
) -> None:
    headers = bearer_headers(listening, tenant_a.users["viewer"].email)
    assert listening.get(series_url, headers=headers).status_code == 200
    app.state.invalidations.stop()  # as if its connection broke: changes could be missed
    with statements(app.state.engine) as seen:
        assert listening.get(series_url, headers=headers).status_code == 200
        assert listening.get(series_url, headers=headers).status_code == 200
    assert lookups(seen) == {"credential": 2, "mapping": 2}


def test_an_operators_sql_reaches_the_caches_through_the_database(
    listening: TestClient, owner_engine: Engine, tenant_a: TenantWorld, series_url: str,
) -> None:
    """No ORM, no app: a trigger announces the change (migration 0008)."""
    headers = bearer_headers(listening, tenant_a.users["viewer"].email)
    assert listening.get(series_url, headers=headers).status_code == 200
    with owner_engine.begin() as connection:
        connection.execute(update(Tenant.__table__).where(Tenant.id == tenant_a.tenant.id)
                           .values(is_active=False))
    changed = time.monotonic()
    while listening.get(series_url, headers=headers).status_code != 401:
        assert time.monotonic() - changed < 1.0, "still served a second after the change"


def test_on_sqlite_every_request_looks_its_credential_and_signal_up(
    app: FastAPI, client: TestClient, tenant_a: TenantWorld, series_url: str, backend: str,
) -> None:
    """Another process (the CLI, say) could change them unheard: the caches stay off."""
    if backend != "sqlite":
        pytest.skip("the SQLite case")
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    with statements(app.state.engine) as seen:
        for _ in range(3):
            assert client.get(series_url, headers=headers).status_code == 200
    assert lookups(seen) == {"credential": 3, "mapping": 3}


def wait_until(condition, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Poll a state another thread changes (the listener's): no event to await from here."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.02)


def test_a_listener_that_loses_its_connection_stops_the_caches_until_it_listens_again(
    app: FastAPI, listening: TestClient, owner_engine: Engine, tenant_a: TenantWorld,
    series_url: str,
) -> None:
    headers = bearer_headers(listening, tenant_a.users["viewer"].email)
    assert listening.get(series_url, headers=headers).status_code == 200
    listener, principals = app.state.invalidations, app.state.principals
    with owner_engine.begin() as connection:
        killed = connection.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query = :listen"
        ), {"listen": f"LISTEN {CHANNEL}"}).scalar_one()
    assert killed == 1
    # Notifications could be missed now: the caches answer nothing until it listens again.
    wait_until(lambda: not principals.trusted)
    with statements(app.state.engine) as seen:
        assert listening.get(series_url, headers=headers).status_code == 200
    assert lookups(seen)["credential"] == 1
    wait_until(lambda: listener.listening.is_set() and principals.trusted)
    # Listening again: a change is heard as before.
    assert listening.get(series_url, headers=headers).status_code == 200
    with owner_engine.begin() as connection:
        connection.execute(update(ApiToken.__table__).values(revoked_at=ApiToken.created_at))
    changed = time.monotonic()
    while listening.get(series_url, headers=headers).status_code != 401:
        assert time.monotonic() - changed < 1.0, "still served a second after the change"


def test_a_database_that_announces_no_changes_keeps_the_caches_off(
    tmp_path: Path, backend: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """Not migrated to 0008 (no triggers): other processes' changes would go unheard, so the
    listener never trusts the caches."""
    if backend != "postgresql":
        pytest.skip("the triggers are PostgreSQL's")
    with database_at("0007", "postgresql", tmp_path) as url:
        application = create_app(test_settings(url))
        try:
            with TestClient(application):
                # What the operator reads in the log, once the listener has given up.
                wait_until(lambda: "run `optria-iq migrate`" in caplog.text)
                assert not application.state.invalidations.listening.is_set()
                assert not application.state.principals.trusted
                assert not application.state.signals.trusted
        finally:
            application.state.engine.dispose()
