"""Engine, sessions, the declarative Base and THE tenant scoping mechanism (DESIGN.md §4).

Tenant safety lives here and nowhere else:
- `bind_tenant(session, tenant_id)` is called once, by authentication.
- One `do_orm_execute` hook adds `with_loader_criteria(TenantMixin, ...)` to every ORM select,
  update and delete, failing closed (no rows) when no tenant is bound.
- One `before_flush` hook stamps new rows with the bound tenant and refuses foreign ones; ORM
  insert() / update() statements may write no tenant_id but the bound tenant's.
- Rebinding a session drops other tenants' rows from its identity map (`session.get`).
- On PostgreSQL every connection runs as the NOBYPASSRLS role `optria_app` and every transaction
  carries `app.tenant_id`, so row-level security backs the ORM up even for raw SQL.
- Authentication, the one read before a tenant is known, uses the `AUTH_LOOKUP` execution option.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BindParameter,
    DateTime,
    Engine,
    ForeignKey,
    ForeignKeyConstraint,
    MetaData,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    sessionmaker,
    with_loader_criteria,
)
from sqlalchemy.types import TypeDecorator

APP_ROLE = "optria_app"
TENANT_KEY = "tenant_id"
# Execution option for the few statements allowed to read before a tenant is known.
AUTH_LOOKUP = "optria_auth_lookup"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class TenantScopeError(RuntimeError):
    """A tenant-owned row was written without, or outside, the bound tenant."""


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on every backend (SQLite would hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a timezone")
        value = value.astimezone(UTC)
        # SQLite stores text: keep one offset-free UTC format so comparisons sort correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Aware UTC; a naive datetime means UTC (DESIGN.md §3, §5)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONDocument}


class TenantMixin:
    """Marks a tenant-owned table: scoped by the hooks below and by RLS on PostgreSQL."""

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("tenant.id"), index=True, nullable=False)


# Tenant keys (DESIGN.md §16): a parent is unique on (tenant_id, id) and a child points at it
# with (tenant_id, <column>), so no row can reference another tenant's row — in the schema
# itself, whatever the code does — and every relation stays inside one tenant's shard should
# the tables ever be distributed by tenant_id.


def tenant_parent_key() -> UniqueConstraint:
    return UniqueConstraint(TENANT_KEY, "id")


def same_tenant(table: str, column: str, parent: str) -> ForeignKeyConstraint:
    """(tenant_id, column) → parent (tenant_id, id); a NULL column (no reference) passes."""
    return ForeignKeyConstraint(
        [TENANT_KEY, column],
        [f"{parent}.{TENANT_KEY}", f"{parent}.id"],
        name=f"fk_{table}_{column}_same_tenant",
    )


# --- engine -------------------------------------------------------------------------------


def create_db_engine(url: str, *, as_app_role: bool = True, **kwargs: Any) -> Engine:
    """Engine for the app (as `optria_app` on PostgreSQL) or, with as_app_role=False, migrations."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
    else:
        # No ping per checkout (a round trip on every request): connections are recycled
        # instead, and one a restarted server dropped is invalidated on its first error.
        kwargs.setdefault("pool_pre_ping", False)
        kwargs.setdefault("pool_recycle", 1800)
        # Enough connections for the worker threads (40 by default): a smaller pool makes
        # requests queue and churns overflow connections (each a new backend + SET ROLE).
        kwargs.setdefault("pool_size", 20)
        kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)

    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    elif engine.dialect.name == "postgresql" and as_app_role:

        @event.listens_for(engine, "connect")
        def _assume_app_role(dbapi_connection: Any, _record: Any) -> None:
            # Commit, or the pool's reset-on-return rollback would undo the SET ROLE.
            cursor = dbapi_connection.cursor()
            cursor.execute(f"SET ROLE {APP_ROLE}")
            cursor.close()
            dbapi_connection.commit()

    if engine.dialect.name == "postgresql":
        _fold_preludes(engine)

    return engine


def role_bypasses_rls(engine: Engine) -> bool:
    """True when the effective role of app connections would ignore row-level security."""
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as connection:
        return bool(
            connection.execute(
                text(
                    "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
                )
            ).scalar_one()
        )


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    # Its Session hooks announce changes to cached rows (DESIGN.md §17); it imports this
    # module, hence imported here, where every session of the app is made.
    import webapp.invalidation  # noqa: F401

    return sessionmaker(bind=engine, expire_on_commit=False)


# --- tenant binding and scoping ------------------------------------------------------------


def bind_tenant(session: Session, tenant_id: int | None) -> None:
    """Scope everything this session does from now on to one tenant (None: to nothing)."""
    _forget_rows_of_other_tenants(session, tenant_id)
    session.info[TENANT_KEY] = tenant_id
    if session.in_transaction():
        _set_transaction_tenant(session.connection(), tenant_id)


def bound_tenant_id(session: Session) -> int | None:
    return session.info.get(TENANT_KEY)


def _forget_rows_of_other_tenants(session: Session, tenant_id: int | None) -> None:
    # `session.get` answers from the identity map without SQL: rows loaded under a previous
    # binding (or by AUTH_LOOKUP) must not outlive it.
    changed = {id(obj) for obj in (*session.dirty, *session.deleted)}
    for obj in list(session.identity_map.values()):
        if not isinstance(obj, TenantMixin):
            continue
        if inspect(obj).dict.get(TENANT_KEY) == tenant_id:
            continue
        if id(obj) in changed:
            raise TenantScopeError(
                f"cannot rebind with unflushed changes to {type(obj).__name__} of another tenant"
            )
        session.expunge(obj)


def transaction_lock(session: Session, namespace: int, key: int) -> None:
    """Serialise transactions on (namespace, key) until this one commits or rolls back.

    PostgreSQL: a transaction-scoped advisory lock (namespaces keep unrelated locks apart),
    taken in front of the transaction's next statement (see `_fold_preludes`).
    SQLite has one writer at a time and takes its write lock at a transaction's first write:
    a write matching no row takes it now — whatever the key — and holds it to the end, waiting
    for another writer up to busy_timeout.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        _before_next_statement(
            connection, f"lock:{namespace}:{key}",
            "SELECT pg_advisory_xact_lock(%({0})s, %({1})s)", (namespace, key),
        )
    else:
        connection.execute(text("UPDATE tenant SET id = id WHERE 0"))


@contextmanager
def tenant_session(factory: sessionmaker[Session], tenant_id: int | None) -> Iterator[Session]:
    with factory() as session:
        bind_tenant(session, tenant_id)
        yield session


PENDING_PRELUDES = "optria_pending_preludes"
_FOLDING_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
# The only transaction-local settings the app sets (names are never taken from input).
_SETTINGS = ("app.tenant_id", "app.auth_lookup")
# A prelude: SQL whose parameters are named {0}, {1}, … and their values.
Prelude = tuple[str, tuple[Any, ...]]


def _fold_preludes(engine: Engine) -> None:
    """Transaction-local settings (the tenant, the auth-lookup flag) and advisory locks ride on
    the transaction's next statement instead of a round trip each: they wait on the
    connection, in order, and go in front of that statement (psycopg2 sends them as one query;
    the result is the statement's). Each statement of such a query runs as it would on its
    own: the settings are in force before the statement, and under READ COMMITTED it takes its
    snapshot after the lock is granted, so it sees what the lock's previous holder committed.
    Never left behind: a transaction that ends, or a connection that goes back to the pool,
    without another statement drops them (nothing needed them, and they would have ended with
    the transaction anyway)."""
    _FOLDING_ENGINES.add(engine)

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _carry_pending_preludes(
        connection: Any, cursor: Any, statement: str, parameters: Any, _context: Any,
        executemany: bool,
    ) -> tuple[str, Any]:
        pending: dict[str, Prelude] | None = connection.info.pop(PENDING_PRELUDES, None)
        if not pending:
            return statement, parameters
        prefix, values = _render_preludes(pending.values())
        if executemany or not isinstance(parameters, dict):
            cursor.execute(prefix.rstrip("; "), values)
            return statement, parameters
        return prefix + statement, {**parameters, **values}

    def _drop_pending(connection: Any, *_args: Any) -> None:
        connection.info.pop(PENDING_PRELUDES, None)

    event.listen(engine, "commit", _drop_pending)
    event.listen(engine, "rollback", _drop_pending)

    @event.listens_for(engine, "checkin")
    def _drop_pending_on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info.pop(PENDING_PRELUDES, None)


def _render_preludes(preludes: Iterable[Prelude]) -> tuple[str, dict[str, Any]]:
    """`SELECT …; SELECT …; ` with uniquely named parameters, and their values."""
    statements: list[str] = []
    values: dict[str, Any] = {}
    for index, (sql, arguments) in enumerate(preludes):
        names = [f"optria_prelude_{index}_{position}" for position in range(len(arguments))]
        statements.append(sql.format(*names) + "; ")
        values.update(zip(names, arguments, strict=True))
    return "".join(statements), values


def _before_next_statement(connection: Any, key: str, sql: str, arguments: tuple[Any, ...]) -> None:
    """Run `sql` (PostgreSQL) before the transaction's next statement; a later prelude with the
    same key replaces its value."""
    if connection.engine in _FOLDING_ENGINES:
        connection.info.setdefault(PENDING_PRELUDES, {})[key] = (sql, arguments)
        return
    prefix, values = _render_preludes([(sql, arguments)])
    connection.exec_driver_sql(prefix.rstrip("; "), values)


def _set_transaction_setting(connection: Any, name: str, value: str) -> None:
    """Set a transaction-local setting before the transaction's next statement runs."""
    assert name in _SETTINGS
    if connection.dialect.name != "postgresql":
        return
    _before_next_statement(
        connection, f"setting:{name}", f"SELECT set_config('{name}', %({{0}})s, true)", (value,)
    )


def _set_transaction_tenant(connection: Any, tenant_id: int | None) -> None:
    value = "" if tenant_id is None else str(tenant_id)
    _set_transaction_setting(connection, "app.tenant_id", value)


@event.listens_for(Session, "after_begin")
def _transaction_carries_tenant(session: Session, _transaction: Any, connection: Any) -> None:
    _set_transaction_tenant(connection, session.info.get(TENANT_KEY))


def _no_tenant(cls: type[TenantMixin]) -> Any:
    # tenant_id is NOT NULL everywhere, so this matches nothing: fail closed.
    return cls.tenant_id.is_(None)


@event.listens_for(Session, "do_orm_execute")
def _scope_orm_statements_to_tenant(state: ORMExecuteState) -> Any:
    tenant_id = state.session.info.get(TENANT_KEY)
    if state.is_insert or state.is_update or state.is_delete:
        _check_tenant_write(state, tenant_id)
    if not (state.is_select or state.is_update or state.is_delete):
        return None
    # Relationship and column loads get the criteria too: objects created in this session (or
    # loaded by AUTH_LOOKUP) carry no criteria of their own for their lazy loads to inherit.
    if state.execution_options.get(AUTH_LOOKUP):
        if not state.is_select:
            raise TenantScopeError("AUTH_LOOKUP is for reads only")
        return _run_auth_lookup(state)
    criteria = _no_tenant if tenant_id is None else (lambda cls: cls.tenant_id == tenant_id)
    state.statement = state.statement.options(
        with_loader_criteria(TenantMixin, criteria, include_aliases=True)
    )
    return None


def _check_tenant_write(state: ORMExecuteState, tenant_id: int | None) -> None:
    """ORM INSERT / UPDATE / DELETE statements write no tenant_id but the bound tenant's."""
    mapper = state.bind_mapper
    if mapper is None or not issubclass(mapper.class_, TenantMixin):
        return
    name = mapper.class_.__name__
    statement: Any = state.statement
    if state.is_executemany and not state.is_insert:
        # "Bulk UPDATE by primary key" ignores with_loader_criteria: refuse it.
        raise TenantScopeError(f"bulk write of {name} by primary key is not tenant-scoped")
    if state.is_insert:
        if tenant_id is None:
            raise TenantScopeError(f"cannot insert {name}: no tenant is bound")
        if statement.select is not None:
            raise TenantScopeError(f"cannot check INSERT ... FROM SELECT into {name}")
    # VALUES of insert() / update() (a delete() has none), then execute()'s parameters.
    rows: list[Any] = [getattr(statement, "_values", None) or {}]
    for values in getattr(statement, "_multi_values", ()):
        rows.extend(values)
    parameters = state.parameters
    rows.extend(parameters if isinstance(parameters, list) else [parameters or {}])
    for row in rows:
        if not isinstance(row, dict):  # positional multi-VALUES row
            row = dict(zip(statement.table.c.keys(), row, strict=False))
        for key, value in row.items():
            if getattr(key, "key", key) != TENANT_KEY:
                continue
            if isinstance(value, BindParameter):
                value = value.value
            if value != tenant_id:
                raise TenantScopeError(f"cannot write {name} rows of another tenant")


def _run_auth_lookup(state: ORMExecuteState) -> Any:
    connection = state.session.connection()
    if connection.dialect.name != "postgresql":
        return None
    # The narrow `auth_lookup` policies (SELECT only, on user / user_session / api_token)
    # admit rows only while this flag is on, i.e. for this one statement: set in front of it,
    # and off again in front of whatever the transaction runs next.
    _set_transaction_setting(connection, "app.auth_lookup", "on")
    try:
        return state.invoke_statement().freeze()()
    finally:
        # After a failed lookup the transaction is aborted and its rollback clears the flag;
        # resetting it at once (an engine that does not fold) would only hide the real error.
        with contextlib.suppress(DBAPIError):
            _set_transaction_setting(connection, "app.auth_lookup", "")


@event.listens_for(Session, "before_flush")
def _stamp_and_check_tenant(session: Session, _context: Any, _instances: Any) -> None:
    tenant_id = session.info.get(TENANT_KEY)
    for obj in session.new:
        if not isinstance(obj, TenantMixin):
            continue
        if tenant_id is None:
            raise TenantScopeError(f"cannot add {type(obj).__name__}: no tenant is bound")
        if obj.tenant_id is None:
            obj.tenant_id = tenant_id
        elif obj.tenant_id != tenant_id:
            raise TenantScopeError(f"cannot add {type(obj).__name__} for another tenant")
    for obj in session.dirty:
        if isinstance(obj, TenantMixin) and obj.tenant_id != tenant_id:
            raise TenantScopeError(f"cannot change {type(obj).__name__} of another tenant")
