"""SQL historian connector (type "sql"): a `(tag, ts, value[, quality])` table in any database
SQLAlchemy reaches (PostgreSQL/TimescaleDB, SQLite, ...).

The table is reflected once, so the code adapts to the column types it finds: `ts` may be
timestamptz or naive (naive means UTC), `quality` is optional and holds `good|uncertain|bad`
text or an OPC DA integer. The tag is always a bound parameter and the table name is validated
and quoted by SQLAlchemy, never formatted into SQL. DB-API calls block, so each read runs in
the connector's own pool (see Connector) and the event loop stays free.

Egress (DESIGN.md §16): a network URL must name its host and may carry only the query options
`sslmode` and `connect_timeout` (no `host=` socket paths, `options=`, `passfile=`…). Every new
DB-API connection passes `_connect_checked` (SQLAlchemy's `do_connect`, in the worker thread):
the host is resolved, each address checked against the policy, and the driver connects to the
checked address — libpq through `hostaddr`, so it does no lookup of its own yet still verifies
TLS against the host name. libpq is also kept from the server's ambient credentials (PGPASSWORD,
~/.pgpass, a client certificate in ~/.postgresql, a Kerberos ticket). SQLite files open only
when the policy allows local files (demo mode).
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from webapp.series import Series, datetimes_to_ns

from .base import (
    Connector,
    ConnectorError,
    Destination,
    describe_error,
    make_series,
    qualities_from_labels,
    require_str,
    to_float_array,
)
from .egress import (
    DATABASE_PORTS,
    LOCAL_FILES_REFUSED,
    EgressPolicy,
    EgressRefused,
    ip_literal,
    is_host_name,
)

TABLE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
_REQUIRED_COLUMNS = ("tag", "ts", "value")
_T = TypeVar("_T")
# The only URL query options a tenant may set: anything else could point the driver at a local
# socket (host=/run/...), a file (passfile=, sslkey=) or change server settings (options=).
_SSLMODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
_QUERY_OPTIONS = ("sslmode", "connect_timeout")
_LIBPQ_DRIVERS = ("psycopg2", "psycopg")
# A path that never exists (the conventional home of users without one): handed to libpq as
# passfile and sslcert, so ~/.pgpass and ~/.postgresql/postgresql.crt are never read.
_NO_FILE = "/nonexistent/optria-iq"


class SQLHistorianConnector(Connector):
    """Reads a historian table with SQLAlchemy Core; one engine (pool) per integration."""

    type = "sql"

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        timeout: float = 5.0,
        egress: EgressPolicy | None = None,
    ) -> None:
        super().__init__(config, timeout=timeout, egress=egress)
        url = _resolve_url(self.config["url"])
        self._destination = self.destination(self.config)
        # For messages: scheme://host:port/database only, never user, password or query.
        self._shown_url = self._destination.shown()
        self.table_name: str = self.config["table"]
        self._engine: Engine = sa.create_engine(
            url, pool_pre_ping=True, connect_args=_connect_args(url, timeout)
        )
        sa.event.listen(self._engine, "do_connect", self._connect_checked)
        self._table: sa.Table | None = None

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        cfg = super().validate_config(config)
        raw_url = require_str(cfg, "url")
        try:
            url = _resolve_url(raw_url)
            url.get_dialect().import_dbapi()  # the driver must be installed
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError) as exc:
            raise ValueError(
                f'config key "url" is not a usable SQLAlchemy database URL ({type(exc).__name__})'
            ) from None
        except ImportError:
            raise ValueError(
                f'config key "url" needs a database driver that is not installed ({url.drivername})'
            ) from None
        url_problem = _url_problem(url) or _password_problem(raw_url, url)
        if url_problem is not None:
            raise ValueError(f'config key "url" {url_problem}')
        table = require_str(cfg, "table")
        if not TABLE_NAME_RE.match(table):
            raise ValueError(
                'config key "table" must be a plain table name, optionally schema-qualified '
                "(letters, digits, underscores; e.g. historian or plant.history)"
            )
        cfg["url"], cfg["table"] = raw_url, table
        return cfg

    @classmethod
    def destination(cls, config: Mapping[str, Any]) -> Destination:
        url = _resolve_url(config["url"])
        backend = url.get_backend_name()
        if backend == "sqlite":
            return Destination("sqlite", None, None, database=url.database)
        sslmode = url.query.get("sslmode")
        return Destination(
            backend,
            url.host,
            url.port or DATABASE_PORTS.get(backend),
            url.username,
            url.database,
            security=f"sslmode={sslmode}" if isinstance(sslmode, str) else None,
        )

    # --- plumbing ----------------------------------------------------------------------------

    def _connect_checked(
        self,
        dialect: Dialect,
        record: ConnectionPoolEntry,
        cargs: tuple[Any, ...],
        cparams: dict[str, Any],
    ) -> None:
        """Before the driver opens a connection (in the worker thread): refuse what the egress
        policy refuses and pin the driver to the addresses that were checked."""
        destination = self._destination
        if destination.host is None:
            if not self.egress.allow_local_files:
                raise EgressRefused(LOCAL_FILES_REFUSED)
            return
        assert destination.port is not None  # validate_config requires a known port
        addresses = self.egress.resolve(destination.host, destination.port)
        cparams["port"] = destination.port  # else libpq would take PGPORT from the environment
        if dialect.driver in _LIBPQ_DRIVERS:
            # One host entry per address: libpq tries them in order, connecting to hostaddr
            # (no lookup of its own) while TLS verification and messages use the name.
            cparams["host"] = ",".join([destination.host] * len(addresses))
            cparams["hostaddr"] = ",".join(addresses)
        else:
            cparams["host"] = addresses[0]

    async def _run(self, work: Callable[[Connection], _T]) -> _T:
        """Run `work` on a pooled connection in a worker thread, bounded by the timeout."""

        def job() -> _T:
            with self._engine.connect() as conn:
                return work(conn)

        try:
            # asyncio.timeout: wait_for (3.11) can swallow a cancellation of the caller.
            async with asyncio.timeout(self.timeout):
                return await self.run_blocking(job)
        except TimeoutError:
            raise ConnectorError(
                f"SQL historian {self._shown_url} did not answer within {self.timeout:g} s"
            ) from None
        except sa.exc.NoSuchTableError:
            raise ConnectorError(
                f"table {self.table_name!r} not found in SQL historian {self._shown_url}"
            ) from None
        except sa.exc.DBAPIError as exc:
            raise ConnectorError(
                f"SQL historian {self._shown_url} failed: {describe_error(exc.orig)}"
            ) from None
        except sa.exc.SQLAlchemyError as exc:
            raise ConnectorError(
                f"SQL historian {self._shown_url} failed: {describe_error(exc)}"
            ) from None

    def _historian(self, conn: Connection) -> sa.Table:
        """The reflected historian table (cached after the first successful look)."""
        if self._table is not None:
            return self._table
        schema, _, name = self.table_name.rpartition(".")
        table = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema or None)
        missing = [c for c in _REQUIRED_COLUMNS if c not in table.c]
        if missing:
            raise ConnectorError(
                f"table {self.table_name!r} lacks column(s) {', '.join(missing)} "
                "(expected tag, ts, value[, quality])"
            )
        if conn.dialect.name == "sqlite" and not isinstance(table.c.ts.type, sa.DateTime):
            # SQLite has only type affinities: read ts in SQLAlchemy's datetime text format.
            ts = sa.Column("ts", sa.DateTime())
            table = sa.Table(name, sa.MetaData(), ts, autoload_with=conn, schema=schema or None)
        if not isinstance(table.c.ts.type, sa.DateTime):
            raise ConnectorError(f"column ts of table {self.table_name!r} is not a timestamp")
        self._table = table
        return table

    def _select(self, conn: Connection, tag: str) -> tuple[sa.Table, sa.Select[Any]]:
        table = self._historian(conn)
        columns = [table.c.ts, table.c.value]
        if "quality" in table.c:
            columns.append(table.c.quality)
        return table, sa.select(*columns).where(table.c.tag == tag)

    def _rows_to_series(self, conn: Connection, tag: str, stmt: sa.Select[Any]) -> Series:
        """Run a newest-first query and return its rows ascending."""
        rows = conn.execute(stmt).all()
        if not rows:
            table = self._historian(conn)
            exists = conn.execute(sa.select(sa.literal(1)).where(table.c.tag == tag).limit(1))
            if exists.first() is None:
                raise ConnectorError(f"tag {tag!r} not found in table {self.table_name!r}")
            return Series.empty()
        rows.reverse()
        columns = list(zip(*rows, strict=True))
        quality = qualities_from_labels(columns[2]) if len(columns) > 2 else None
        return make_series(datetimes_to_ns(columns[0]), to_float_array(columns[1]), quality)

    def _bind_time(self, table: sa.Table, dt: datetime) -> datetime:
        """Bind aware UTC for timestamptz; naive UTC for naive columns (so the database never
        shifts it by the session time zone)."""
        dt = dt.astimezone(UTC)
        return dt if getattr(table.c.ts.type, "timezone", False) else dt.replace(tzinfo=None)

    # --- reads -------------------------------------------------------------------------------

    async def fetch_timeseries(
        self, tag: str, from_time: datetime | None, to_time: datetime, limit: int = 100
    ) -> Series:
        if limit <= 0:
            return Series.empty()

        def work(conn: Connection) -> Series:
            table, stmt = self._select(conn, tag)
            stmt = stmt.where(table.c.ts <= self._bind_time(table, to_time))
            if from_time is not None:
                stmt = stmt.where(table.c.ts >= self._bind_time(table, from_time))
            return self._rows_to_series(conn, tag, stmt.order_by(table.c.ts.desc()).limit(limit))

        return await self._run(work)

    async def fetch_latest(self, tag: str) -> Series:
        def work(conn: Connection) -> Series:
            table, stmt = self._select(conn, tag)
            return self._rows_to_series(conn, tag, stmt.order_by(table.c.ts.desc()).limit(1))

        return await self._run(work)

    async def test_connection(self) -> None:
        def work(conn: Connection) -> None:
            conn.execute(sa.select(sa.literal(1))).all()
            self._historian(conn)

        await self._run(work)

    async def aclose(self) -> None:
        if self._executor is not None:  # connections exist only if work ran there
            # The pool's own threads close the idle connections after the work queued
            # before; nobody waits for that, since a worker may be stuck on a dead source.
            self._executor.submit(self._engine.dispose)
        await super().aclose()


def _resolve_url(raw: str) -> URL:
    """Parse the URL; a bare postgresql:// uses psycopg2 (the driver this app ships) when
    psycopg 3, SQLAlchemy 2.1's default, is not installed."""
    url = make_url(raw)
    if url.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None:
        url = url.set(drivername="postgresql+psycopg2")
    return url


def _password_problem(raw: str, url: URL) -> str | None:
    """SQLAlchemy reads a password up to the first "@"; URL parsers (ours, which find secrets
    to seal and mask, and every other) stop at "/", "?" or "#". Where they disagree the
    password could be shown or stored in clear: such characters must be percent-encoded."""
    try:
        split = urlsplit(raw).password
    except ValueError:
        split = None
    if url.password is not None and (split is None or unquote(split) != url.password):
        return (
            "has a password with characters that must be percent-encoded "
            "(/ ? # [ ] @ as %2F %3F %23 %5B %5D %40)"
        )
    return None


def _url_problem(url: URL) -> str | None:
    """What makes a parsed URL unacceptable (completing 'config key "url" …'), or None.

    Values are never echoed: a query option may be a password someone put there.
    """
    for key, value in url.query.items():
        if url.get_backend_name() == "sqlite" or key not in _QUERY_OPTIONS:
            return (
                f"may carry only the query options {' and '.join(_QUERY_OPTIONS)} "
                f"(network databases only), not {key!r}"
            )
        if not isinstance(value, str):
            return f"gives the query option {key!r} more than once"
        if key == "sslmode" and value not in _SSLMODES:
            return f"has an sslmode that is not one of {', '.join(sorted(_SSLMODES))}"
        if key == "connect_timeout" and not (value.isdigit() and int(value) > 0):
            return "has a connect_timeout that is not a whole number of seconds above 0"
    backend = url.get_backend_name()
    if backend == "sqlite":
        return None
    if not url.host:
        # libpq would use a local Unix socket, where the server knows this app's OS user.
        return "must name the database server's host"
    if ip_literal(url.host) is None and not is_host_name(url.host.rstrip(".").lower()):
        return "has a host that is neither a host name nor an IP address"
    if not (url.port or DATABASE_PORTS.get(backend)):
        return f"must name the port ({backend} has no default this app knows)"
    return None


def _connect_args(url: URL, timeout: float) -> dict[str, Any]:
    """Driver settings so a dead server fails fast and a tenant's URL reaches nothing else."""
    backend, driver = url.get_backend_name(), url.get_driver_name()
    seconds = max(1, math.ceil(timeout))
    if backend == "sqlite":
        return {"timeout": timeout}  # seconds to wait on a locked database
    if backend == "postgresql" and driver in _LIBPQ_DRIVERS:
        asked = url.query.get("connect_timeout")
        return {
            # The URL may shorten the connect timeout, never lengthen it.
            "connect_timeout": min(int(asked), seconds) if isinstance(asked, str) else seconds,
            # The server cancels a statement the caller has stopped waiting for.
            "options": f"-c statement_timeout={int(timeout * 1000)}",
            # A peer that vanished (no FIN, no RST) is noticed within about the timeout,
            # idle or not: keepalive probes, and a cap on unacknowledged data (ms).
            "keepalives": 1,
            "keepalives_idle": max(1, math.floor(timeout / 2)),
            "keepalives_interval": 1,
            "keepalives_count": max(1, math.ceil(timeout / 2)),
            "tcp_user_timeout": max(1000, int(timeout * 1000)),
            # No ambient credentials of this server's OS user: an empty password stops
            # PGPASSWORD (a URL password still wins), the passfile and client certificate
            # point nowhere, and no Kerberos ticket is offered.
            **({"password": ""} if url.password is None else {}),
            "passfile": _NO_FILE,
            "sslcert": _NO_FILE,
            "gssencmode": "disable",
        }
    if backend in ("mysql", "mariadb"):
        return {"connect_timeout": seconds}
    return {}
