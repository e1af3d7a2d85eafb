"""Migration 0003 on a database with data (DESIGN.md §16): secrets stored in clear before it are
sealed with the deployment's key and still work, the tenant keys are in place and refuse a
reference into another tenant, and sessions from before the idle timeout keep working. Both
backends, each on a database of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tests.conftest import TEST_SECRET_KEY, database_at, test_settings
from webapp.cli import migrate
from webapp.db import create_db_engine
from webapp.integrations.secrets import SecretVault
from webapp.security import token_digest

T0 = datetime(2026, 11, 1, tzinfo=UTC)
PI_CONFIG = {
    "base_url": "https://pi.example.com/piwebapi", "data_server": "PISRV01",
    "username": "svc", "password": "plain-pi-pw", "verify_tls": True,
}
SQL_CONFIG = {"url": "postgresql://reader:plain-sql-pw@db.example.com/h", "table": "h"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_at_0002(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_at("0002", request.param, tmp_path) as url:
        yield url


def table(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(column) for column in columns))


def arrange_0002_rows(engine: sa.Engine) -> dict[str, int]:
    """Two tenants, each with a user and session, an asset, integrations holding secrets in
    clear, and a mapping, written with the 0002 schema."""
    ids: dict[str, int] = {}
    with engine.begin() as connection:
        def add(table_name: str, key: str, /, **values: object) -> int:
            statement = sa.insert(table(table_name, "id", *values)).values(**values)
            ids[key] = connection.execute(statement.returning(sa.column("id"))).scalar_one()
            return ids[key]

        for code in ("A", "B"):
            tenant = add("tenant", f"tenant_{code}", code=code, name=code, is_active=True,
                         timezone="UTC", created_at=T0)
            user = add("user", f"user_{code}", tenant_id=tenant, email=f"u@{code}.example",
                       password_hash="x", role="viewer", is_active=True, locale="en")
            add("user_session", f"session_{code}", tenant_id=tenant, user_id=user,
                session_hash=token_digest(f"session-{code}"), created_at=datetime.now(UTC),
                expires_at=datetime.now(UTC) + timedelta(hours=1))
            asset = add("asset", f"asset_{code}", tenant_id=tenant, code="P-1", name="Pump",
                        asset_type="centrifugal_pump", criticality="high")
            pi = add("tenant_integration", f"pi_{code}", tenant_id=tenant, type="pi",
                     name="PI", config=json.dumps(PI_CONFIG), is_active=True)
            add("tenant_integration", f"sql_{code}", tenant_id=tenant, type="sql",
                name="SQL", config=json.dumps(SQL_CONFIG), is_active=True)
            add("external_signal_mapping", f"mapping_{code}", tenant_id=tenant,
                integration_id=pi, asset_id=asset, internal_metric_name="temperature",
                external_tag="PI:P-1.TEMP", scaling_factor=1.0, offset_value=0.0,
                is_active=True)
    return ids


def stored_configs(engine: sa.Engine) -> dict[int, dict]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, config FROM tenant_integration")).all()
    return {row.id: row.config if isinstance(row.config, dict) else json.loads(row.config)
            for row in rows}


def test_0003_seals_secrets_and_adds_tenant_keys_on_a_database_with_data(
    database_at_0002: str,
) -> None:
    owner = create_db_engine(database_at_0002, as_app_role=False)
    try:
        ids = arrange_0002_rows(owner)
        migrate(test_settings(database_at_0002))

        configs = stored_configs(owner)
        vault = SecretVault([TEST_SECRET_KEY])
        for code in ("A", "B"):
            pi, sql = configs[ids[f"pi_{code}"]], configs[ids[f"sql_{code}"]]
            assert "plain-pi-pw" not in json.dumps(pi) and "plain-sql-pw" not in json.dumps(sql)
            assert vault.reveal(pi) == PI_CONFIG and vault.reveal(sql) == SQL_CONFIG

        # A reference into another tenant is refused by the schema itself now.
        with pytest.raises(IntegrityError), owner.begin() as connection:
            connection.execute(
                sa.insert(table("external_signal_mapping", "tenant_id", "integration_id",
                                "asset_id", "internal_metric_name", "external_tag",
                                "scaling_factor", "offset_value", "is_active")).values(
                    tenant_id=ids["tenant_A"], integration_id=ids["pi_A"],
                    asset_id=ids["asset_B"], internal_metric_name="pressure",
                    external_tag="x", scaling_factor=1.0, offset_value=0.0, is_active=True,
                )
            )
        with pytest.raises(IntegrityError), owner.begin() as connection:
            connection.execute(
                sa.update(table("user_session", "id", "user_id"))
                .where(sa.column("id") == ids["session_A"]).values(user_id=ids["user_B"])
            )

        # The session from before the column exists and counts as active since its start.
        with owner.connect() as connection:
            last_seen = connection.execute(
                sa.text("SELECT last_seen_at FROM user_session WHERE id = :id"),
                {"id": ids["session_A"]},
            ).scalar_one()
        assert last_seen is None

        # Migrating again seals nothing twice.
        migrate(test_settings(database_at_0002))
        assert stored_configs(owner) == configs
    finally:
        owner.dispose()


def test_0003_without_any_key_refuses_to_leave_secrets_in_clear(database_at_0002: str) -> None:
    owner = create_db_engine(database_at_0002, as_app_role=False)
    try:
        arrange_0002_rows(owner)
        with pytest.raises(RuntimeError, match="OPTRIA_SECRETS_KEY or OPTRIA_SECRET_KEY"):
            migrate(test_settings(database_at_0002, secret_key="", demo_mode=False))
        assert "plain-pi-pw" in json.dumps(stored_configs(owner)), "rolled back, not half done"
    finally:
        owner.dispose()
