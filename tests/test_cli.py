"""The `optria-iq` console script (DESIGN.md §9) against a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, inspect, select, text

from tests.conftest import postgres_server_url, temporary_postgres_database
from tests.conftest import test_settings as make_settings
from webapp.assets.models import Asset
from webapp.cli import main
from webapp.config import get_settings
from webapp.db import create_db_engine
from webapp.main import create_app
from webapp.models import Base
from webapp.tenancy.models import Tenant, User

DEMO_PASSWORD = "plant-demo-Pa55"
DEMO_USERS = {
    "demo@aramco.com": "tenant_admin",
    "engineer@aramco.com": "engineer",
    "operator@aramco.com": "operator",
    "viewer@aramco.com": "viewer",
}


@pytest.fixture(scope="module")
def postgres_cli_database() -> Iterator[str]:
    """One PostgreSQL database for this module (creating one per test costs seconds)."""
    with temporary_postgres_database(postgres_server_url()) as url:
        yield url


def _empty_tables(url: str) -> None:
    engine = create_db_engine(url, as_app_role=False)
    try:
        existing = set(inspect(engine).get_table_names())
        tables = [t.name for t in Base.metadata.sorted_tables if t.name in existing]
        if tables:
            with engine.begin() as connection:
                quoted = ", ".join(f'"{name}"' for name in tables)
                connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """An empty database that the CLI finds through OPTRIA_DATABASE_URL.

    SQLite: a fresh file, never migrated. PostgreSQL: the module's database with every table
    emptied (the first test to run migrates it from nothing).
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cli.db'}"
    else:
        url = request.getfixturevalue("postgres_cli_database")
        _empty_tables(url)
    monkeypatch.setenv("OPTRIA_DATABASE_URL", url)
    monkeypatch.setenv("OPTRIA_DEMO_PASSWORD", DEMO_PASSWORD)
    monkeypatch.delenv("OPTRIA_PI_BASE_URL", raising=False)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def owner(cli_database: str) -> Iterator[Engine]:
    engine = create_db_engine(cli_database, as_app_role=False)
    yield engine
    engine.dispose()


@pytest.fixture
def migrated(cli_database: str) -> str:
    assert main(["migrate"]) == 0
    return cli_database


def rows(engine: Engine, model: type) -> list[dict]:
    table = model.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(select(table).order_by(table.c.id)).mappings()]


@contextmanager
def api_client(database_url: str) -> Iterator[TestClient]:
    """The web app on the CLI's database, as `optria-iq serve` would run it."""
    application = create_app(make_settings(database_url))
    try:
        with TestClient(application) as client:
            yield client
    finally:
        application.state.engine.dispose()


def token_status(client: TestClient, email: str, password: str) -> int:
    response = client.post("/api/auth/token", data={"username": email, "password": password})
    return response.status_code


def test_seed_demo_is_complete_and_idempotent(
    migrated: str, owner: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["seed-demo"]) == 0
    first_output = capsys.readouterr().out
    assert "ARAMCO_DEMO" in first_output and "created" in first_output

    tenants = rows(owner, Tenant)
    assert [(t["code"], t["timezone"], t["is_active"]) for t in tenants] == [
        ("ARAMCO_DEMO", "Asia/Riyadh", True)
    ]
    users = rows(owner, User)
    assert {u["email"]: u["role"] for u in users} == DEMO_USERS
    assert all(u["tenant_id"] == tenants[0]["id"] and u["is_active"] for u in users)
    assert all(DEMO_PASSWORD not in u["password_hash"] for u in users)
    assets = rows(owner, Asset)
    assert len(assets) >= 8
    assert len({a["asset_type"] for a in assets}) >= 4
    assert len({a["code"] for a in assets}) == len(assets)
    for asset in assets:
        assert asset["tenant_id"] == tenants[0]["id"]
        assert asset["code"] and asset["name"] and asset["asset_type"] and asset["location"]
        assert asset["criticality"] in {"high", "medium", "low"}
    assert {a["criticality"] for a in assets} == {"high", "medium", "low"}

    snapshot = {model: rows(owner, model) for model in (Tenant, User, Asset)}
    assert main(["seed-demo"]) == 0
    second_output = capsys.readouterr().out
    assert "users created: 0" in second_output and "assets created: 0" in second_output
    assert {model: rows(owner, model) for model in (Tenant, User, Asset)} == snapshot
    # Migrating again is a no-op too.
    assert main(["migrate"]) == 0
    assert {model: rows(owner, model) for model in (Tenant, User, Asset)} == snapshot


def test_demo_users_log_in_with_the_configured_demo_password(migrated: str) -> None:
    assert main(["seed-demo"]) == 0
    with api_client(migrated) as client:
        for email in DEMO_USERS:
            assert token_status(client, email, DEMO_PASSWORD) == 200, email
        assert token_status(client, "viewer@aramco.com", "optria-demo") == 401
        # The roles are real: a viewer cannot add an asset, an engineer can.
        new_asset = {"code": "X-1", "name": "Test", "asset_type": "pump"}
        for email, expected in (("viewer@aramco.com", 403), ("engineer@aramco.com", 201)):
            token = client.post(
                "/api/auth/token", data={"username": email, "password": DEMO_PASSWORD}
            ).json()["access_token"]
            response = client.post(
                "/api/assets", json=new_asset, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == expected, email
        page = client.post(
            "/login",
            data={"email": "demo@aramco.com", "password": DEMO_PASSWORD},
            follow_redirects=True,
        )
        assert page.status_code == 200
        assert page.text.count('data-role="asset-card"') >= 8


def test_create_tenant_and_user(
    migrated: str, owner: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["create-tenant", "ACME", "Acme Refinery", "--timezone", "Europe/Berlin"]) == 0
    assert "ACME" in capsys.readouterr().out
    tenant = rows(owner, Tenant)[0]
    assert (tenant["code"], tenant["name"], tenant["timezone"]) == (
        "ACME",
        "Acme Refinery",
        "Europe/Berlin",
    )

    arguments = ["create-user", "--tenant", "ACME", "--email", "Ops.Lead@Acme.example"]
    assert main([*arguments, "--password", "s3cret-pass", "--role", "engineer"]) == 0
    assert "ops.lead@acme.example" in capsys.readouterr().out
    [user] = rows(owner, User)
    assert (user["email"], user["role"], user["tenant_id"]) == (
        "ops.lead@acme.example",
        "engineer",
        tenant["id"],
    )
    assert "s3cret-pass" not in user["password_hash"]
    with api_client(migrated) as client:
        assert token_status(client, "OPS.LEAD@acme.example", "s3cret-pass") == 200
        assert token_status(client, "ops.lead@acme.example", "wrong") == 401


def test_cli_errors_exit_with_1_and_change_nothing(
    migrated: str, owner: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["create-tenant", "ACME", "Acme Refinery"]) == 0
    capsys.readouterr()

    assert main(["create-tenant", "ACME", "Another name"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert [t["name"] for t in rows(owner, Tenant)] == ["Acme Refinery"]

    user = ["--email", "a@acme.example", "--password", "pw-123456", "--role", "viewer"]
    assert main(["create-user", "--tenant", "NOPE", *user]) == 1
    assert "NOPE" in capsys.readouterr().err
    assert rows(owner, User) == []

    assert main(["create-user", "--tenant", "ACME", *user]) == 0
    capsys.readouterr()
    duplicate = ["--email", "A@ACME.example", "--password", "x-123456", "--role", "engineer"]
    assert main(["create-user", "--tenant", "ACME", *duplicate]) == 1
    assert "already exists" in capsys.readouterr().err
    assert [(u["email"], u["role"]) for u in rows(owner, User)] == [("a@acme.example", "viewer")]


def test_cli_rejects_an_unknown_timezone_and_role(
    migrated: str, owner: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    # Pages render times in the plant's timezone: a bad one must never reach the database.
    assert main(["create-tenant", "MARS", "Mars Base", "--timezone", "Mars/Olympus"]) == 1
    assert "Mars/Olympus" in capsys.readouterr().err
    assert rows(owner, Tenant) == []

    assert main(["create-tenant", "ACME", "Acme Refinery"]) == 0
    with pytest.raises(SystemExit) as exit_info:
        main(["create-user", "--tenant", "ACME", "--email", "a@b.example", "--password", "p",
              "--role", "superuser"])  # fmt: skip
    assert exit_info.value.code == 2
    assert rows(owner, User) == []


def test_seed_demo_completes_a_partial_tenant(migrated: str, owner: Engine) -> None:
    """A demo tenant missing users or assets (e.g. an older seed) is completed, not duplicated."""
    assert main(["create-tenant", "ARAMCO_DEMO", "Aramco Demo Plant", "--timezone",
                 "Asia/Riyadh"]) == 0  # fmt: skip
    assert main(["create-user", "--tenant", "ARAMCO_DEMO", "--email", "viewer@aramco.com",
                 "--password", "kept-password", "--role", "viewer"]) == 0  # fmt: skip
    assert main(["seed-demo"]) == 0
    assert len(rows(owner, Tenant)) == 1
    assert {u["email"]: u["role"] for u in rows(owner, User)} == DEMO_USERS
    with owner.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Asset.__table__)).scalar() >= 8
    with api_client(migrated) as client:
        # The existing user keeps their own password.
        assert token_status(client, "viewer@aramco.com", "kept-password") == 200


def test_create_user_refuses_a_bad_email_or_a_short_password(
    migrated: str, owner: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["create-tenant", "ACME", "Acme Refinery"]) == 0
    base = ["create-user", "--tenant", "ACME", "--role", "viewer"]
    assert main([*base, "--email", "not-an-email", "--password", "long-enough"]) == 1
    assert "not an email address" in capsys.readouterr().err
    assert main([*base, "--email", "a@acme.example", "--password", "short"]) == 1
    assert "at least 8 characters" in capsys.readouterr().err
    assert rows(owner, User) == []


def test_commands_on_an_unmigrated_database_say_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPTRIA_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    get_settings.cache_clear()
    try:
        assert main(["seed-demo"]) == 1
    finally:
        get_settings.cache_clear()
    error = capsys.readouterr().err
    assert "optria-iq migrate" in error and "Traceback" not in error


def test_serve_without_a_secret_key_outside_demo_mode_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPTRIA_DATABASE_URL", f"sqlite:///{tmp_path / 'serve.db'}")
    monkeypatch.delenv("OPTRIA_SECRET_KEY", raising=False)
    monkeypatch.setenv("OPTRIA_DEMO_MODE", "false")
    get_settings.cache_clear()
    try:
        assert main(["serve"]) == 1
    finally:
        get_settings.cache_clear()
    assert "OPTRIA_SECRET_KEY is required" in capsys.readouterr().err
