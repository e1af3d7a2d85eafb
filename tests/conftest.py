"""Shared fixtures: every database test runs on SQLite and, when configured, on PostgreSQL.

PostgreSQL tests use a database created for this run (dropped at the end) on the server at
OPTRIA_TEST_DATABASE_URL; without that variable they skip, except under CI=true where they fail.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from alembic.config import Config
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, inspect, make_url, text
from sqlalchemy.orm import Session, sessionmaker

# Cheap argon2 for the suite (hashes carry their own parameters, so verification stays real).
os.environ.setdefault("OPTRIA_ARGON2_TIME_COST", "1")
os.environ.setdefault("OPTRIA_ARGON2_MEMORY_COST_KIB", "64")

from alembic import command
from webapp.assets.models import Asset
from webapp.cli import migrate
from webapp.config import PROJECT_ROOT, Settings
from webapp.db import create_db_engine, tenant_session
from webapp.invalidation import CHANNEL, clear_all_caches
from webapp.main import create_app
from webapp.models import Base
from webapp.tenancy.models import Role, Tenant, User
from webapp.tenancy.service import create_tenant, create_user

IN_CI = os.environ.get("CI", "").lower() == "true"
PASSWORD = "correct horse battery staple"
TEST_SECRET_KEY = "test-secret-key-not-for-production"

# Shared fixtures outside conftest still get pytest's assertion messages.
pytest.register_assert_rewrite("tests.health_site")


def postgres_server_url() -> str:
    url = os.environ.get("OPTRIA_TEST_DATABASE_URL")
    if not url:
        message = "OPTRIA_TEST_DATABASE_URL is not set"
        if IN_CI:
            pytest.fail(f"{message}: PostgreSQL tests must run in CI")
        pytest.skip(message)
    return url


@contextmanager
def temporary_postgres_database(server_url: str) -> Iterator[str]:
    """Create a uniquely named database, yield its URL, and drop only that database."""
    name = f"optria_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        if IN_CI:
            raise
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "secret_key": TEST_SECRET_KEY,
        # The suite's peers (fake PI, OPC UA, SQLite historians) live on loopback and in
        # files, which only demo mode lets integrations reach (DESIGN.md §16); the trust
        # boundary tests build production-mode apps of their own.
        "demo_mode": True,
        "stream_interval_seconds": 0.2,
        "connector_timeout_seconds": 2.0,
        # Health passes read every signal: tests run them when they mean to (run_pass).
        "health_interval_seconds": 3600.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@contextmanager
def migrated_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A new database of `backend` after one `optria-iq migrate`; PostgreSQL's is dropped after."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'optria.db'}"
        migrate(test_settings(url))
        yield url
        return
    with temporary_postgres_database(postgres_server_url()) as url:
        migrate(test_settings(url))
        yield url


def alembic_upgrade(target: str | Connection, revision: str) -> None:
    """`alembic upgrade <revision>` on a database URL (its own owner engine) or a connection."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    config.attributes["database_url" if isinstance(target, str) else "connection"] = target
    command.upgrade(config, revision)


@contextmanager
def database_at(revision: str, backend: str, directory: Path) -> Iterator[str]:
    """A new database of `backend` migrated up to `revision` only (migration tests arrange
    rows in an older schema); PostgreSQL's is dropped after."""
    if backend == "sqlite":
        url = f"sqlite:///{directory / f'at_{revision}.db'}"
        alembic_upgrade(url, revision)
        yield url
        return
    with temporary_postgres_database(postgres_server_url()) as url:
        alembic_upgrade(url, revision)
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database per backend for the whole run."""
    with migrated_database(request.param, tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="session")
def owner_engine(database_url: str) -> Iterator[Engine]:
    """The migrating (owner) role: for cleaning between tests, never for app behaviour."""
    engine = create_db_engine(database_url, as_app_role=False)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return test_settings(database_url)


@pytest.fixture(scope="session")
def app(settings: Settings):  # type: ignore[no-untyped-def]
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture(scope="session")
def session_factory(app) -> sessionmaker[Session]:  # type: ignore[no-untyped-def]
    """Sessions exactly as the app opens them (optria_app role on PostgreSQL)."""
    return app.state.session_factory


def _clean(engine: Engine) -> None:
    # DELETE, children first: on these small tables it is far cheaper than TRUNCATE.
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> None:
    """Every test that touches the database starts from empty tables."""
    if "owner_engine" in request.fixturenames or "app" in request.fixturenames:
        _clean(request.getfixturevalue("owner_engine"))
        # Emptied underneath the app (no change announced): ids may be reused by SQLite.
        clear_all_caches()


@pytest.fixture
def backend(database_url: str) -> str:
    return make_url(database_url).get_backend_name()


# --- a world with two tenants ----------------------------------------------------------------


@dataclass
class TenantWorld:
    tenant: Tenant
    users: dict[str, User]
    assets: list[Asset] = field(default_factory=list)

    @property
    def admin(self) -> User:
        return self.users["tenant_admin"]


def make_tenant_world(
    factory: sessionmaker[Session], code: str, *, asset_codes: tuple[str, ...] = ("P-101", "C-301")
) -> TenantWorld:
    slug = re.sub(r"[^a-z0-9]", "", code.lower())
    with tenant_session(factory, None) as session:
        tenant = create_tenant(session, code=code, name=f"{code} Plant", timezone="Asia/Riyadh")
        users = {
            role.value: create_user(
                session, tenant=tenant, email=f"{role.value}@{slug}.example", password=PASSWORD,
                role=role,
            )
            for role in (Role.viewer, Role.operator, Role.engineer, Role.tenant_admin)
        }
        assets = [
            Asset(code=asset_code, name=f"{asset_code} of {code}", asset_type="centrifugal_pump",
                  criticality="high", location="Unit 1")
            for asset_code in asset_codes
        ]
        session.add_all(assets)
        session.commit()
        return TenantWorld(tenant=tenant, users=users, assets=assets)


@pytest.fixture
def tenant_a(session_factory: sessionmaker[Session]) -> TenantWorld:
    return make_tenant_world(session_factory, "TENANT_A")


@pytest.fixture
def tenant_b(session_factory: sessionmaker[Session]) -> TenantWorld:
    return make_tenant_world(session_factory, "TENANT_B", asset_codes=("P-101", "E-401"))


# --- clients ---------------------------------------------------------------------------------


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as test_client:
        yield test_client


def bearer_headers(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


CSRF_PATTERN = re.compile(r'"X-CSRF-Token": "([0-9a-f]+)"')


def browser_login(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Log in through the form like a browser; returns the page's CSRF token."""
    response = client.post(
        "/login", data={"email": email, "password": password}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    page = client.get("/twins")
    match = CSRF_PATTERN.search(page.text)
    assert match, "the page carries the session's CSRF token in hx-headers"
    return match.group(1)


def changes_heard(app: FastAPI) -> None:
    """Once this returns, the app's caches have heard every change committed so far. On
    PostgreSQL a change made outside the app (as by an operator's SQL) reaches them through its
    trigger's notification, in milliseconds rather than at once; a barrier notification, sent
    after it, is heard after it. On SQLite the caches are off: nothing to wait for."""
    listener = app.state.invalidations
    if not listener.listening.is_set():
        return  # not trusted, so not answering: nothing stale to wait out
    barrier = f"barrier:{uuid.uuid4().hex}"
    with app.state.engine.connect() as connection:
        connection.execute(text("SELECT pg_notify(:channel, :payload)"),
                           {"channel": CHANNEL, "payload": barrier})
        connection.commit()
    assert listener.wait_for(barrier, timeout=10), "the listener did not hear the change"


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())
