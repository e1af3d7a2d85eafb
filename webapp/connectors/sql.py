"""SQL historian connector (type "sql"): a `(tag, ts, value[, quality])` table in any database
SQLAlchemy reaches (PostgreSQL/TimescaleDB, SQLite, ...).

The table is reflected once, so the code adapts to the column types it finds: `ts` may be
timestamptz or naive (naive means UTC), `quality` is optional and holds `good|uncertain|bad`
text or an OPC DA integer. The tag is always a bound parameter and the table name is validated
and quoted by SQLAlchemy, never formatted into SQL. DB-API calls block, so each read runs in a
worker thread and the event loop stays free.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

from .base import (
    Connector,
    ConnectorError,
    Destination,
    Series,
    datetimes_to_ns,
    describe_error,
    make_series,
    qualities_from_labels,
    require_str,
    to_float_array,
)
from .egress import EgressPolicy

TABLE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
_REQUIRED_COLUMNS = ("tag", "ts", "value")
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433}
_T = TypeVar("_T")


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
        self._shown_url = url.render_as_string(hide_password=True)
        self.table_name: str = self.config["table"]
        self._engine: Engine = sa.create_engine(
            url, pool_pre_ping=True, connect_args=_connect_args(url, timeout)
        )
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
        return Destination(
            backend, url.host, url.port or _DEFAULT_PORTS.get(backend), url.username,
            url.database,
        )

    # --- plumbing ----------------------------------------------------------------------------

    async def _run(self, work: Callable[[Connection], _T]) -> _T:
        """Run `work` on a pooled connection in a worker thread, bounded by the timeout."""

        def job() -> _T:
            with self._engine.connect() as conn:
                return work(conn)

        try:
            # asyncio.timeout: wait_for (3.11) can swallow a cancellation of the caller.
            async with asyncio.timeout(self.timeout):
                return await asyncio.to_thread(job)
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
        await asyncio.to_thread(self._engine.dispose)


def _resolve_url(raw: str) -> URL:
    """Parse the URL; a bare postgresql:// uses psycopg2 (the driver this app ships) when
    psycopg 3, SQLAlchemy 2.1's default, is not installed."""
    url = make_url(raw)
    if url.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None:
        url = url.set(drivername="postgresql+psycopg2")
    return url


def _connect_args(url: URL, timeout: float) -> dict[str, Any]:
    """Driver-level timeouts, where the dialect has them, so a dead server fails fast."""
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend == "sqlite":
        return {"timeout": timeout}  # seconds to wait on a locked database
    if backend == "postgresql" and driver in ("psycopg2", "psycopg"):
        args: dict[str, Any] = {"connect_timeout": max(1, math.ceil(timeout))}
        if "options" not in url.query:
            # The server cancels a statement the caller has stopped waiting for.
            args["options"] = f"-c statement_timeout={int(timeout * 1000)}"
        return args
    if backend in ("mysql", "mariadb"):
        return {"connect_timeout": max(1, math.ceil(timeout))}
    return {}
