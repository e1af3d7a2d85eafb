"""Tenant safety (DESIGN.md §4) on SQLite and PostgreSQL, through the app's own sessions.

Every test runs with two tenants and checks that the one mechanism in webapp/db.py keeps
tenant A's session away from tenant B's rows (reads and writes), fails closed when no tenant
is bound, and that the HTTP routes turn another tenant's id into a plain 404.
Rows are inspected through `owner_engine` (the migrating role), never through the app.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, ForeignKey, MetaData, String, delete, func, insert, select, text
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    aliased,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
    sessionmaker,
)

from tests.conftest import TenantWorld, bearer_headers, browser_login
from webapp.assets.models import Asset
from webapp.blackbox.models import BlackBoxEvent
from webapp.blackbox.service import record_event
from webapp.db import TenantMixin, TenantScopeError, bind_tenant, tenant_session, utcnow
from webapp.tenancy.models import User, UserSession

MAX_DB_ID = 2**31 - 1


# --- helpers ---------------------------------------------------------------------------------


def owner_rows(owner_engine: Engine, sql: str, **params: object) -> list[tuple]:
    """What is really in the database, seen by the owner role (no tenant scoping)."""
    with owner_engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql), params)]


def asset_names(owner_engine: Engine) -> dict[int, tuple[int, str]]:
    rows = owner_rows(owner_engine, "SELECT id, tenant_id, name FROM asset")
    return {asset_id: (tenant_id, name) for asset_id, tenant_id, name in rows}


def ids(world: TenantWorld) -> set[int]:
    return {asset.id for asset in world.assets}


def corrupt(owner_engine: Engine, sql: str, params: list[dict] | dict) -> None:
    """Write rows the schema itself refuses (a reference into another tenant, DESIGN.md §16),
    to prove the scoping hook holds even then: foreign keys are switched off for this one
    owner transaction (SQLite pragma; PostgreSQL replica mode skips the FK triggers)."""
    with owner_engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
        else:
            connection.exec_driver_sql("SET session_replication_role = replica")
        try:
            connection.execute(text(sql), params)
            connection.commit()
        finally:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA foreign_keys = ON")
            else:
                connection.exec_driver_sql("SET session_replication_role = DEFAULT")
                # Committed, or the reset would roll back with the closing transaction and the
                # pooled connection would go on skipping every trigger (and FK check) for the
                # tests after this one.
                connection.commit()


def blackbox_count(owner_engine: Engine) -> int:
    return owner_rows(owner_engine, "SELECT count(*) FROM blackbox_event")[0][0]


def add_event(factory: sessionmaker[Session], world: TenantWorld, asset_id: int) -> int:
    with tenant_session(factory, world.tenant.id) as session:
        event = record_event(
            session,
            tenant_id=world.tenant.id,
            asset_id=asset_id,
            source_system="TEST",
            source_type="PROBE",
            event_category="SENSOR",
            severity="WARNING",
            summary=f"vibration high on {world.tenant.code}",
            payload={"tenant": world.tenant.code},
        )
        session.commit()
        return event.id


def new_asset(code: str, **values: object) -> Asset:
    return Asset(code=code, name=f"{code} new", asset_type="pump", criticality="low", **values)


# A second mapping of the real `asset` table with relationships (the app's models have none
# between tenant-owned tables yet): proves that relationship loads are scoped by the same hook.
class _RelationshipProbeBase(DeclarativeBase):
    metadata = MetaData()


class _ProbeTenant(_RelationshipProbeBase):
    __tablename__ = "tenant"

    id: Mapped[int] = mapped_column(primary_key=True)


class LinkedAsset(TenantMixin, _RelationshipProbeBase):
    __tablename__ = "asset"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    asset_type: Mapped[str] = mapped_column(String(64))
    criticality: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("asset.id"))

    parent: Mapped[LinkedAsset | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[LinkedAsset]] = relationship(back_populates="parent")


def link_across_tenants(owner_engine: Engine, a: TenantWorld, b: TenantWorld) -> None:
    """Corrupt data on purpose: A's first asset has B's asset as parent, and B's second
    asset has A's first asset as parent. Scoping must not follow either link."""
    corrupt(
        owner_engine,
        "UPDATE asset SET parent_id = :parent WHERE id = :child",
        [
            {"child": a.assets[0].id, "parent": b.assets[0].id},
            {"child": b.assets[1].id, "parent": a.assets[0].id},
        ],
    )


# --- reads -----------------------------------------------------------------------------------


def test_list_returns_only_the_bound_tenants_rows(
    session_factory: sessionmaker[Session], tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    add_event(session_factory, tenant_a, tenant_a.assets[0].id)
    add_event(session_factory, tenant_b, tenant_b.assets[0].id)
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        assert set(session.scalars(select(Asset.id))) == ids(tenant_a)
        assert {a.tenant_id for a in session.scalars(select(Asset))} == {tenant_a.tenant.id}
        assert {u.email for u in session.scalars(select(User))} == {
            u.email for u in tenant_a.users.values()
        }
        events = session.scalars(select(BlackBoxEvent)).all()
        assert {e.tenant_id for e in events} == {tenant_a.tenant.id}
        assert [e.source_system for e in events].count("TEST") == 1
        assert session.scalar(select(func.count()).select_from(Asset)) == len(tenant_a.assets)


def test_lookup_by_another_tenants_id_finds_nothing(
    session_factory: sessionmaker[Session], tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        for b_asset in tenant_b.assets:
            assert session.scalar(select(Asset).where(Asset.id == b_asset.id)) is None
        # Same code in both tenants: only A's row answers.
        same_code = session.scalars(select(Asset).where(Asset.code == "P-101")).all()
        assert [a.id for a in same_code] == [tenant_a.assets[0].id]


def test_session_get_of_another_tenants_id_returns_none(
    session_factory: sessionmaker[Session], tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        assert session.get(Asset, tenant_a.assets[0].id) is not None
        assert session.get(Asset, tenant_b.assets[0].id) is None
        assert session.get(User, tenant_b.admin.id) is None


def test_session_get_does_not_serve_rows_cached_under_a_previous_binding(
    session_factory: sessionmaker[Session], tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    a_id = tenant_a.assets[0].id
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        cached = session.get(Asset, a_id)  # held, so it stays in the identity map
        assert cached is not None
        bind_tenant(session, tenant_b.tenant.id)
        assert session.get(Asset, a_id) is None
        assert set(session.scalars(select(Asset.id))) == ids(tenant_b)
        bind_tenant(session, None)
        assert session.get(Asset, tenant_b.assets[0].id) is None


def test_joins_drop_the_other_tenants_rows(
    session_factory: sessionmaker[Session],
    owner_engine: Engine,
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    # An event of A that (wrongly) points at B's asset: the join must not reveal that asset.
    event_id = add_event(session_factory, tenant_a, tenant_a.assets[0].id)
    corrupt(
        owner_engine,
        "UPDATE blackbox_event SET asset_id = :b WHERE id = :e",
        {"b": tenant_b.assets[0].id, "e": event_id},
    )
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        inner = select(BlackBoxEvent, Asset).join(Asset, BlackBoxEvent.asset_id == Asset.id)
        assert session.execute(inner).all() == []
        outer = (
            select(BlackBoxEvent.id, Asset.id)
            .outerjoin(Asset, BlackBoxEvent.asset_id == Asset.id)
            .where(BlackBoxEvent.source_system == "TEST")
        )
        assert session.execute(outer).all() == [(event_id, None)]
        # From B's side, the asset is visible but A's event is not.
        bind_tenant(session, tenant_b.tenant.id)
        reverse = select(Asset.id, BlackBoxEvent.id).outerjoin(
            BlackBoxEvent, BlackBoxEvent.asset_id == Asset.id
        )
        assert sorted(session.execute(reverse).all()) == sorted(
            (asset_id, None) for asset_id in ids(tenant_b)
        )


def test_aliased_queries_see_only_the_bound_tenant(
    session_factory: sessionmaker[Session],
    owner_engine: Engine,
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    link_across_tenants(owner_engine, tenant_a, tenant_b)
    child, parent = aliased(Asset), aliased(Asset)
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        assert set(session.scalars(select(child.id))) == ids(tenant_a)
        pairs = select(child.id, parent.id).join(parent, child.parent_id == parent.id)
        assert session.execute(pairs).all() == []
        subquery = select(parent.id).where(parent.code == "E-401").scalar_subquery()
        assert session.scalars(select(Asset).where(Asset.id == subquery)).all() == []


def test_relationship_loads_never_reach_the_other_tenant(
    session_factory: sessionmaker[Session],
    owner_engine: Engine,
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    link_across_tenants(owner_engine, tenant_a, tenant_b)
    a_id = tenant_a.assets[0].id
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        lazy = session.get(LinkedAsset, a_id)
        assert lazy is not None
        assert lazy.parent is None
        assert lazy.children == []

    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        eager = (
            session.scalars(
                select(LinkedAsset)
                .where(LinkedAsset.id == a_id)
                .options(joinedload(LinkedAsset.parent), selectinload(LinkedAsset.children))
            )
            .unique()
            .one()
        )
        assert eager.parent is None
        assert eager.children == []

    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        # A new row pointing into another tenant can't even be written: the tenant keys
        # (tenant_id, parent_id) → asset (tenant_id, id) refuse it (DESIGN.md §16).
        created = LinkedAsset(
            code="NEW-1",
            name="new",
            asset_type="pump",
            criticality="low",
            parent_id=tenant_b.assets[0].id,
        )
        session.add(created)
        with pytest.raises(IntegrityError):
            session.flush()


# --- bulk writes -----------------------------------------------------------------------------


def test_bulk_update_touches_only_the_bound_tenants_rows(
    session_factory: sessionmaker[Session],
    owner_engine: Engine,
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    before = asset_names(owner_engine)
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        result = session.execute(sql_update(Asset).values(name="renamed by A"))
        assert result.rowcount == len(tenant_a.assets)
        targeted = session.execute(
            sql_update(Asset).where(Asset.id == tenant_b.assets[0].id).values(name="hijacked")
        )
        assert targeted.rowcount == 0
        session.commit()
    after = asset_names(owner_engine)
    for asset_id, (tenant_id, name) in after.items():
        if tenant_id == tenant_a.tenant.id:
            assert name == "renamed by A"
        else:
            assert name == before[asset_id][1]


def test_bulk_delete_touches_only_the_bound_tenants_rows(
    session_factory: sessionmaker[Session],
    owner_engine: Engine,
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    # Sessions: a table the app does delete from (the purge of expired credentials).
    for world in (tenant_a, tenant_b):
        with tenant_session(session_factory, world.tenant.id) as session:
            session.add(
                UserSession(
                    user_id=world.admin.id, session_hash=f"{world.tenant.code:0<64}"[:64],
                    expires_at=utcnow() + timedelta(hours=1),
                )
            )
            session.commit()
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        targeted = session.execute(delete(Asset).where(Asset.id.in_(ids(tenant_b))))
        assert targeted.rowcount == 0
        assert session.execute(delete(UserSession)).rowcount == 1
        session.commit()
    assert owner_rows(owner_engine, "SELECT tenant_id FROM user_session") == [
        (tenant_b.tenant.id,)
    ]
    assert {row[0] for row in owner_rows(owner_engine, "SELECT id FROM asset")} == (
        ids(tenant_a) | ids(tenant_b)
    )


def test_bulk_update_cannot_move_rows_to_another_tenant(
    session_factory: sessionmaker[Session],
    owner_engine: Engine,
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    before = asset_names(owner_engine)
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        moving = sql_update(Asset).where(Asset.code == "C-301")
        with pytest.raises(TenantScopeError):
            session.execute(moving.values(tenant_id=tenant_b.tenant.id))
        with pytest.raises(TenantScopeError):
            session.execute(moving.values({Asset.tenant_id: tenant_b.tenant.id}))
    assert asset_names(owner_engine) == before


def test_bulk_update_by_primary_key_is_refused(
    session_factory: sessionmaker[Session],
    owner_engine: Engine,
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    # SQLAlchemy's "bulk UPDATE by primary key" ignores loader criteria, so it must not run.
    before = asset_names(owner_engine)
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        with pytest.raises(TenantScopeError):
            session.execute(sql_update(Asset), [{"id": tenant_b.assets[0].id, "name": "x"}])
        session.commit()
    assert asset_names(owner_engine) == before


def test_insert_statement_for_another_tenant_is_refused(
    session_factory: sessionmaker[Session],
    owner_engine: Engine,
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    row = {"code": "X-1", "name": "x", "asset_type": "pump", "criticality": "low"}
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        with pytest.raises(TenantScopeError):
            session.execute(insert(Asset).values(tenant_id=tenant_b.tenant.id, **row))
        with pytest.raises(TenantScopeError):
            session.execute(insert(Asset), [{"tenant_id": tenant_b.tenant.id, **row}])
        with pytest.raises(TenantScopeError):
            session.execute(insert(Asset).values([{"tenant_id": tenant_b.tenant.id, **row}]))
        session.execute(insert(Asset).values(tenant_id=tenant_a.tenant.id, **row))
        session.commit()
    assert owner_rows(owner_engine, "SELECT tenant_id FROM asset WHERE code = 'X-1'") == [
        (tenant_a.tenant.id,)
    ]


# --- no tenant bound: fail closed ------------------------------------------------------------


def test_unbound_session_reads_nothing(
    session_factory: sessionmaker[Session], tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    add_event(session_factory, tenant_a, tenant_a.assets[0].id)
    with tenant_session(session_factory, None) as session:
        assert session.scalars(select(Asset)).all() == []
        assert session.scalars(select(User)).all() == []
        assert session.scalars(select(BlackBoxEvent)).all() == []
        assert session.get(Asset, tenant_a.assets[0].id) is None
        assert session.get(User, tenant_b.admin.id) is None
        assert session.scalars(select(aliased(Asset))).all() == []


def test_unbound_session_updates_and_deletes_nothing(
    session_factory: sessionmaker[Session],
    owner_engine: Engine,
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    before = asset_names(owner_engine)
    with tenant_session(session_factory, None) as session:
        assert session.execute(sql_update(Asset).values(name="nobody")).rowcount == 0
        assert session.execute(delete(Asset)).rowcount == 0
        session.commit()
    assert asset_names(owner_engine) == before


def test_unbound_session_cannot_insert_tenant_owned_rows(
    session_factory: sessionmaker[Session], owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    with tenant_session(session_factory, None) as session:
        session.add(new_asset("UNBOUND-1"))
        with pytest.raises(TenantScopeError):
            session.flush()
    with tenant_session(session_factory, None) as session:
        session.add(new_asset("UNBOUND-2", tenant_id=tenant_a.tenant.id))
        with pytest.raises(TenantScopeError):
            session.commit()
    with tenant_session(session_factory, None) as session, pytest.raises(TenantScopeError):
        session.execute(
            insert(Asset).values(
                tenant_id=tenant_a.tenant.id,
                code="UNBOUND-3",
                name="x",
                asset_type="pump",
                criticality="low",
            )
        )
    assert owner_rows(owner_engine, "SELECT code FROM asset WHERE code LIKE 'UNBOUND%'") == []


# --- foreign tenant ids on ORM objects -------------------------------------------------------


def test_adding_a_row_with_another_tenants_id_raises(
    session_factory: sessionmaker[Session],
    owner_engine: Engine,
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        session.add(new_asset("FOREIGN-1", tenant_id=tenant_b.tenant.id))
        with pytest.raises(TenantScopeError):
            session.commit()
    assert owner_rows(owner_engine, "SELECT id FROM asset WHERE code = 'FOREIGN-1'") == []


def test_new_rows_are_stamped_with_the_bound_tenant(
    session_factory: sessionmaker[Session], owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        session.add(new_asset("STAMPED-1"))
        session.commit()
    assert owner_rows(owner_engine, "SELECT tenant_id FROM asset WHERE code = 'STAMPED-1'") == [
        (tenant_a.tenant.id,)
    ]


def test_changing_a_rows_tenant_id_raises(
    session_factory: sessionmaker[Session],
    owner_engine: Engine,
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    before = asset_names(owner_engine)
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        asset = session.get(Asset, tenant_a.assets[1].id)
        assert asset is not None
        asset.tenant_id = tenant_b.tenant.id
        with pytest.raises(TenantScopeError):
            session.commit()
    assert asset_names(owner_engine) == before


# --- HTTP: another tenant's id is a missing id -----------------------------------------------


@pytest.fixture(params=["bearer", "browser"])
def admin_a_headers(
    request: pytest.FixtureRequest, client: TestClient, tenant_a: TenantWorld
) -> dict[str, str]:
    """Tenant A's admin, logged in by bearer token or by browser session (cookie)."""
    if request.param == "bearer":
        return bearer_headers(client, tenant_a.admin.email)
    browser_login(client, tenant_a.admin.email)
    return {}


ASSET_ROUTES = {
    "api": ("/api/assets/{id}", {}),
    "page": ("/twins/assets/{id}", {}),
    "fragment": ("/twins/assets/{id}", {"HX-Request": "true"}),
}


@pytest.fixture
def b_event(session_factory: sessionmaker[Session], tenant_b: TenantWorld) -> Iterator[int]:
    yield add_event(session_factory, tenant_b, tenant_b.assets[1].id)


def without_id(body: str, asset_id: int) -> str:
    """The body with the requested id (echoed in the message and the language links) masked."""
    return body.replace(f"/twins/assets/{asset_id}", "/twins/assets/ID").replace(
        f"Asset {asset_id} not found", "Asset ID not found"
    )


def b_secrets(world: TenantWorld) -> list[str]:
    return [world.tenant.code, world.tenant.name, *(a.name for a in world.assets), "E-401"]


@pytest.mark.parametrize("route", ASSET_ROUTES)
def test_own_asset_is_served(
    route: str, client: TestClient, admin_a_headers: dict[str, str], tenant_a: TenantWorld
) -> None:
    path, extra = ASSET_ROUTES[route]
    asset = tenant_a.assets[1]
    response = client.get(path.format(id=asset.id), headers={**admin_a_headers, **extra})
    assert response.status_code == 200
    assert asset.name in response.text


@pytest.mark.parametrize("route", ASSET_ROUTES)
def test_another_tenants_asset_is_a_plain_404(
    route: str,
    client: TestClient,
    owner_engine: Engine,
    admin_a_headers: dict[str, str],
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
    b_event: int,
) -> None:
    path, extra = ASSET_ROUTES[route]
    headers = {**admin_a_headers, **extra}
    b_id = tenant_b.assets[1].id
    missing_id = max(ids(tenant_a) | ids(tenant_b)) + 1000
    events_before = blackbox_count(owner_engine)

    foreign = client.get(path.format(id=b_id), headers=headers)
    missing = client.get(path.format(id=missing_id), headers=headers)

    assert foreign.status_code == 404
    assert missing.status_code == 404
    # Indistinguishable from a missing id, apart from the id the caller sent.
    assert without_id(foreign.text, b_id) == without_id(missing.text, missing_id)
    for secret in b_secrets(tenant_b):
        assert secret not in foreign.text
    assert blackbox_count(owner_engine) == events_before


def test_another_tenants_asset_has_no_visible_events(
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    admin_a_headers: dict[str, str],
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
    b_event: int,
) -> None:
    a_event = add_event(session_factory, tenant_a, tenant_a.assets[0].id)
    events_before = blackbox_count(owner_engine)

    foreign = client.get(
        "/api/blackbox/events", params={"asset_id": tenant_b.assets[1].id}, headers=admin_a_headers
    )
    own = client.get(
        "/api/blackbox/events", params={"asset_id": tenant_a.assets[0].id}, headers=admin_a_headers
    )

    assert foreign.status_code == 200
    assert foreign.json() == {"events": []}
    for secret in b_secrets(tenant_b):
        assert secret not in foreign.text
    assert own.status_code == 200
    assert [event["id"] for event in own.json()["events"]] == [a_event]
    assert blackbox_count(owner_engine) == events_before


OUT_OF_RANGE_IDS = [0, -1, MAX_DB_ID + 1]
ID_ROUTES = {
    "api": ("/api/assets/{id}", {}, "path"),
    "page": ("/twins/assets/{id}", {}, "path"),
    "fragment": ("/twins/assets/{id}", {"HX-Request": "true"}, "path"),
    "events": ("/api/blackbox/events?asset_id={id}", {}, "query"),
    "logbook": ("/api/logbook?asset_id={id}", {}, "query"),
    "health": ("/api/assets/{id}/health", {}, "path"),
    "health_history": ("/api/assets/{id}/health/history", {}, "path"),
}


@pytest.mark.parametrize("route", ID_ROUTES)
def test_out_of_range_ids_are_422_naming_the_parameter(
    route: str, client: TestClient, admin_a_headers: dict[str, str]
) -> None:
    path, extra, location = ID_ROUTES[route]
    for bad_id in OUT_OF_RANGE_IDS:
        response = client.get(path.format(id=bad_id), headers={**admin_a_headers, **extra})
        assert response.status_code == 422, bad_id
        if path.startswith("/api/"):
            locations = [error["loc"] for error in response.json()["detail"]]
            assert locations == [[location, "asset_id"]], bad_id
        else:
            assert "asset_id" in response.text, bad_id


def test_largest_valid_id_is_a_404_not_an_error(
    client: TestClient, admin_a_headers: dict[str, str]
) -> None:
    assert client.get(f"/api/assets/{MAX_DB_ID}", headers=admin_a_headers).status_code == 404
    events = client.get(
        "/api/blackbox/events", params={"asset_id": MAX_DB_ID}, headers=admin_a_headers
    )
    assert events.status_code == 200
    assert events.json() == {"events": []}
