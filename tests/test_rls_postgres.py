"""Row-level security on PostgreSQL (DESIGN.md §4): the database itself keeps tenants apart,
even for raw SQL that the ORM hook never sees.

These tests skip only on the SQLite leg of `database_url`; the PostgreSQL leg runs whenever
OPTRIA_TEST_DATABASE_URL is set (and conftest fails the run under CI=true when it is not).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld
from tests.conftest import test_settings as settings_for
from webapp.db import (
    APP_ROLE,
    AUTH_LOOKUP,
    TenantMixin,
    bind_tenant,
    create_db_engine,
    create_session_factory,
    role_bypasses_rls,
    tenant_session,
)
from webapp.main import create_app
from webapp.models import Base
from webapp.tenancy.models import User

# pg_policies text, normalized by normalized_sql().
TENANT_MATCHES = "(tenant_id=(NULLIF(current_setting('app.tenant_id',true),'')))"
AUTH_FLAG_ON = "(current_setting('app.auth_lookup',true)='on')"
AUTH_LOOKUP_TABLES = {"user", "user_session", "api_token"}


@pytest.fixture
def pg_url(database_url: str, backend: str) -> str:
    if backend != "postgresql":
        pytest.skip("row-level security exists on PostgreSQL only")
    return database_url


def tenant_owned_tables() -> list[str]:
    """Every table mapped by a TenantMixin model of the app (not by test-only mappings)."""
    tables = {
        mapper.local_table.name
        for mapper in Base.registry.mappers
        if issubclass(mapper.class_, TenantMixin)
    }
    assert {"user", "asset", "blackbox_event"} <= tables
    return sorted(tables)


def normalized_sql(expression: str | None) -> str:
    """pg_policies text without casts and blanks, to look for the tenant comparison in it."""
    return re.sub(r"\s+", "", re.sub(r"::\w+", "", expression or ""))


def raw_asset_ids(session: Session) -> set[int]:
    return set(session.execute(text("SELECT id FROM asset")).scalars())


def ids(world: TenantWorld) -> set[int]:
    return {asset.id for asset in world.assets}


@pytest.fixture
def one_connection_factory(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_db_engine(pg_url, pool_size=1, max_overflow=0)
    yield create_session_factory(engine)
    engine.dispose()


# --- the role ------------------------------------------------------------------------------


def test_app_connections_run_as_the_restricted_role(
    pg_url: str, session_factory: sessionmaker[Session], owner_engine: Engine
) -> None:
    with tenant_session(session_factory, None) as session:
        assert session.execute(text("SELECT current_user")).scalar_one() == APP_ROLE
    with owner_engine.connect() as connection:
        role = connection.execute(
            text("SELECT rolcanlogin, rolbypassrls, rolsuper FROM pg_roles WHERE rolname = :role"),
            {"role": APP_ROLE},
        ).one()
    assert tuple(role) == (False, False, False)  # NOLOGIN, NOBYPASSRLS, not superuser
    assert role_bypasses_rls(session_factory.kw["bind"]) is False


def test_every_tenant_owned_table_forces_a_tenant_policy(pg_url: str, owner_engine: Engine) -> None:
    tables = tenant_owned_tables()
    with owner_engine.connect() as connection:
        flags = {
            name: forced
            for name, forced in connection.execute(
                text(
                    "SELECT relname, relrowsecurity AND relforcerowsecurity FROM pg_class "
                    "WHERE relnamespace = 'public'::regnamespace AND relname = ANY(:tables)"
                ),
                {"tables": tables},
            )
        }
        policies = connection.execute(
            text(
                "SELECT tablename, permissive, cmd, qual, with_check FROM pg_policies "
                "WHERE schemaname = 'public' AND tablename = ANY(:tables)"
            ),
            {"tables": tables},
        ).all()
    assert flags == dict.fromkeys(tables, True)
    by_table: dict[str, set[tuple]] = {table: set() for table in tables}
    for table, permissive, cmd, qual, check in policies:
        by_table[table].add((permissive, cmd, normalized_sql(qual), normalized_sql(check)))
    tenant_policy = ("PERMISSIVE", "ALL", TENANT_MATCHES, TENANT_MATCHES)
    auth_policy = ("PERMISSIVE", "SELECT", AUTH_FLAG_ON, "")
    # Permissive policies are OR-ed: any other one would open the table, so none may exist.
    assert by_table == {
        table: {tenant_policy, auth_policy} if table in AUTH_LOOKUP_TABLES else {tenant_policy}
        for table in tables
    }


def test_the_app_role_may_use_every_app_table(pg_url: str, owner_engine: Engine) -> None:
    # A future migration that forgets its GRANTs would otherwise only fail in production.
    # (has_table_privilege with a list is true if ANY is held: ask one privilege at a time.)
    # The BlackBox is append-only for the app (DESIGN.md §16; test_blackbox_chain proves the
    # edits are refused), but for the alarm lifecycle's incident columns (test_alarms); alarm
    # limits are never deleted (§14).
    granted = {
        "blackbox_event": ("SELECT", "INSERT"),
        "blackbox_incident": ("SELECT", "INSERT"),
        "alarm_limit": ("SELECT", "INSERT", "UPDATE"),
        "logbook_entry": ("SELECT", "INSERT"),  # append-only: a correction is a new entry
    }
    tables = sorted(Base.metadata.tables)
    needed = [
        (f'public."{table}"', privilege, "has_table_privilege")
        for table in tables
        for privilege in granted.get(table, ("SELECT", "INSERT", "UPDATE", "DELETE"))
    ] + [(f'public."{table}_id_seq"', "USAGE", "has_sequence_privilege") for table in tables]
    with owner_engine.connect() as connection:
        missing = [
            (name, privilege)
            for name, privilege, function in needed
            if not connection.execute(
                text(f"SELECT {function}(:role, :name, :privilege)"),
                {"role": APP_ROLE, "name": name, "privilege": privilege},
            ).scalar_one()
        ]
    assert missing == []


# --- raw SQL under RLS ---------------------------------------------------------------------


def test_raw_select_sees_only_the_bound_tenant(
    pg_url: str,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        rows = session.execute(text("SELECT * FROM asset")).mappings().all()
        assert {row["id"] for row in rows} == ids(tenant_a)
        assert {row["tenant_id"] for row in rows} == {tenant_a.tenant.id}
    with tenant_session(session_factory, None) as session:
        assert session.execute(text("SELECT * FROM asset")).all() == []
        assert session.execute(text('SELECT * FROM "user"')).all() == []


def test_raw_insert_for_another_tenant_is_rejected_by_rls(
    pg_url: str,
    session_factory: sessionmaker[Session],
    owner_engine: Engine,
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    insert = text(
        "INSERT INTO asset (tenant_id, code, name, asset_type, criticality) "
        "VALUES (:tenant_id, 'RAW-1', 'raw', 'pump', 'low')"
    )
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        with pytest.raises(DBAPIError, match="row-level security"):
            session.execute(insert, {"tenant_id": tenant_b.tenant.id})
        session.rollback()
        with pytest.raises(DBAPIError, match="row-level security"):
            session.execute(
                text("UPDATE asset SET tenant_id = :b WHERE id = :a"),
                {"b": tenant_b.tenant.id, "a": tenant_a.assets[0].id},
            )
    with owner_engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM asset WHERE code = 'RAW-1'")).all() == []
        assert (
            connection.execute(
                text("SELECT tenant_id FROM asset WHERE id = :a"), {"a": tenant_a.assets[0].id}
            ).scalar_one()
            == tenant_a.tenant.id
        )


def test_one_pooled_connection_serves_each_tenant_only_its_rows(
    pg_url: str,
    one_connection_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    engine = one_connection_factory.kw["bind"]
    backend_pids = set()
    for world in (tenant_a, tenant_b, tenant_a, tenant_b):
        with tenant_session(one_connection_factory, world.tenant.id) as session:
            backend_pids.add(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
            assert raw_asset_ids(session) == ids(world)
            assert session.execute(text("SELECT current_user")).scalar_one() == APP_ROLE
            session.commit()  # a committed (not rolled back) transaction must not leave it set
        # The setting was local to the transaction that just ended.
        with engine.connect() as connection:
            leftover = connection.execute(
                text("SELECT current_setting('app.tenant_id', true)")
            ).scalar_one()
            assert leftover in (None, "")
            assert connection.execute(text("SELECT count(*) FROM asset")).scalar_one() == 0
    assert len(backend_pids) == 1  # really the same server connection every time


def test_tenant_setting_does_not_survive_a_rollback(
    pg_url: str, one_connection_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    with tenant_session(one_connection_factory, tenant_a.tenant.id) as session:
        assert raw_asset_ids(session) == ids(tenant_a)
        session.rollback()
        # A new transaction in the same session is bound again by the after_begin hook.
        assert raw_asset_ids(session) == ids(tenant_a)
    with tenant_session(one_connection_factory, None) as session:
        assert raw_asset_ids(session) == set()


def test_the_tenant_setting_rides_on_the_first_statement_in_one_round_trip(
    pg_url: str, one_connection_factory: sessionmaker[Session], tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    """§17: no separate set_config per transaction; the scoping is the same."""
    engine = one_connection_factory.kw["bind"]
    executions: list[str] = []
    listener = lambda *args: executions.append(args[2])  # noqa: E731 (statement)
    event.listen(engine, "after_cursor_execute", listener)
    try:
        with tenant_session(one_connection_factory, tenant_a.tenant.id) as session:
            assert raw_asset_ids(session) == ids(tenant_a)
            assert raw_asset_ids(session) == ids(tenant_a)
        assert len(executions) == 2, executions  # no statement of its own for the setting
        assert executions[0].startswith("SELECT set_config('app.tenant_id'")
        assert "set_config" not in executions[1]
    finally:
        event.remove(engine, "after_cursor_execute", listener)


@pytest.mark.parametrize("ending", ["rollback", "commit", "close"])
def test_a_transaction_without_a_statement_leaves_no_tenant_for_the_next(
    pg_url: str, one_connection_factory: sessionmaker[Session], tenant_a: TenantWorld,
    ending: str,
) -> None:
    """A pending tenant setting never outlives its transaction: the pool's next user of the
    same connection (raw, or bound to no tenant) sees nothing."""
    engine = one_connection_factory.kw["bind"]
    session = one_connection_factory()
    bind_tenant(session, tenant_a.tenant.id)
    session.connection()  # begins: the setting is pending, no statement ran
    getattr(session, ending)()
    session.close()
    with engine.connect() as connection:
        assert connection.execute(
            text("SELECT current_setting('app.tenant_id', true)")
        ).scalar_one() in (None, "")
        assert connection.execute(text("SELECT count(*) FROM asset")).scalar_one() == 0
    with tenant_session(one_connection_factory, None) as unbound:
        assert raw_asset_ids(unbound) == set()


def test_a_bulk_insert_as_the_first_statement_is_still_scoped(
    pg_url: str, one_connection_factory: sessionmaker[Session], tenant_a: TenantWorld,
    tenant_b: TenantWorld, owner_engine: Engine,
) -> None:
    """executemany cannot carry the setting in front: it is sent on its own first."""
    insert = text(
        "INSERT INTO asset (tenant_id, code, name, asset_type, criticality) "
        "VALUES (:tenant_id, :code, 'bulk', 'pump', 'low')"
    )
    with tenant_session(one_connection_factory, tenant_a.tenant.id) as session:
        session.execute(insert, [{"tenant_id": tenant_a.tenant.id, "code": f"BULK-{n}"}
                                 for n in range(3)])
        session.commit()
    with (
        tenant_session(one_connection_factory, tenant_a.tenant.id) as session,
        pytest.raises(DBAPIError, match="row-level security"),
    ):
        session.execute(insert, [{"tenant_id": tenant_b.tenant.id, "code": "BULK-X"},
                                 {"tenant_id": tenant_b.tenant.id, "code": "BULK-Y"}])
    with owner_engine.connect() as connection:
        codes = connection.execute(
            text("SELECT code FROM asset WHERE name = 'bulk' ORDER BY code")
        ).scalars().all()
    assert codes == ["BULK-0", "BULK-1", "BULK-2"]


# --- the one unscoped read: authentication -------------------------------------------------


def test_auth_lookup_finds_a_user_without_a_tenant_and_does_not_leak(
    pg_url: str,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    email = tenant_b.admin.email
    by_email = select(User).where(User.email == email)
    with tenant_session(session_factory, None) as session:
        assert session.scalar(by_email) is None
        found = session.scalar(by_email.execution_options(**{AUTH_LOOKUP: True}))
        assert found is not None
        assert found.tenant_id == tenant_b.tenant.id
        # Same transaction, next statements: the flag is gone again.
        assert session.execute(text('SELECT * FROM "user"')).all() == []
        assert session.scalar(select(User).where(User.email == email)) is None
        assert session.execute(
            text("SELECT current_setting('app.auth_lookup', true)")
        ).scalar_one() in (None, "")


def test_auth_lookup_policy_admits_reads_only(
    pg_url: str, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    # Even with the flag set by hand, the auth policy never lets a write through.
    with tenant_session(session_factory, None) as session:
        session.execute(text("SELECT set_config('app.auth_lookup', 'on', true)"))
        assert session.execute(text('SELECT count(*) FROM "user"')).scalar_one() == len(
            tenant_a.users
        )
        updated = session.execute(text("UPDATE \"user\" SET locale = 'ar'"))
        assert updated.rowcount == 0
        assert session.execute(text("SELECT count(*) FROM asset")).scalar_one() == 0


# --- startup -------------------------------------------------------------------------------


def test_startup_refuses_a_role_that_bypasses_rls(pg_url: str) -> None:
    app = create_app(settings_for(pg_url))
    app_engine = app.state.engine
    app.state.engine = create_db_engine(pg_url, as_app_role=False)  # the superuser
    try:
        with pytest.raises(RuntimeError, match="row-level security"), TestClient(app):
            pass
    finally:
        app.state.engine.dispose()
        app_engine.dispose()


def test_startup_accepts_the_app_role(pg_url: str) -> None:
    app = create_app(settings_for(pg_url))
    try:
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
    finally:
        app.state.engine.dispose()
