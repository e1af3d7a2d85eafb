"""Peers and helpers shared by the P2 API tests (series, integrations, mappings, BlackBox).

Rows are arranged through the app's own tenant-scoped sessions (so the scoping hooks stamp
`tenant_id` exactly as in production) and inspected through the owner engine, which sees every
tenant: that is how the tests prove what was, and what was not, written.
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa
import uvicorn
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TEST_SECRET_KEY
from tests.connectors.fake_pi import DATA_SERVER, PASSWORD, USERNAME, FakePIServer, FakePoint
from webapp.blackbox.models import BlackBoxEvent
from webapp.connectors.egress import EgressPolicy
from webapp.db import tenant_session
from webapp.integrations.models import ExternalSignalMapping, TenantIntegration
from webapp.integrations.secrets import SecretVault
from webapp.integrations.service import SourceAccess
from webapp.models import Base
from webapp.series import datetime_to_ns

MINUTE = timedelta(minutes=1)
MINUTE_NS = 60_000_000_000
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


# --- arranging rows --------------------------------------------------------------------------


def add_integration(
    factory: sessionmaker[Session],
    tenant_id: int,
    *,
    type: str,
    name: str,
    config: dict[str, Any],
    is_active: bool = True,
) -> int:
    with tenant_session(factory, tenant_id) as session:
        integration = TenantIntegration(type=type, name=name, config=config, is_active=is_active)
        session.add(integration)
        session.commit()
        return integration.id


def add_mapping(
    factory: sessionmaker[Session],
    tenant_id: int,
    *,
    asset_id: int,
    integration_id: int,
    metric: str,
    tag: str,
    unit: str | None = None,
    scaling_factor: float = 1.0,
    offset_value: float = 0.0,
    is_active: bool = True,
) -> int:
    with tenant_session(factory, tenant_id) as session:
        mapping = ExternalSignalMapping(
            asset_id=asset_id,
            integration_id=integration_id,
            internal_metric_name=metric,
            external_tag=tag,
            unit=unit,
            scaling_factor=scaling_factor,
            offset_value=offset_value,
            is_active=is_active,
        )
        session.add(mapping)
        session.commit()
        return mapping.id


# --- inspecting rows (owner engine: sees every tenant) ----------------------------------------


def table_rows(engine: Engine, table: sa.Table) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id)).mappings()
        return [dict(row) for row in rows]


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every application table, for "changes nothing" checks."""
    result: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows = connection.execute(select(table).order_by(*order)).mappings()
            result[table.name] = [dict(row) for row in rows]
    return result


def integration_rows(engine: Engine) -> list[dict[str, Any]]:
    return table_rows(engine, TenantIntegration.__table__)


def mapping_rows(engine: Engine) -> list[dict[str, Any]]:
    return table_rows(engine, ExternalSignalMapping.__table__)


def events(
    engine: Engine, *, tenant_id: int | None = None, category: str | None = None
) -> list[dict[str, Any]]:
    table = BlackBoxEvent.__table__
    statement = select(table).order_by(table.c.id)
    if tenant_id is not None:
        statement = statement.where(table.c.tenant_id == tenant_id)
    if category is not None:
        statement = statement.where(table.c.event_category == category)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(statement).mappings()]


def event_count(engine: Engine, **filters: Any) -> int:
    return len(events(engine, **filters))


# --- time ------------------------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


def floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def iso(moment: datetime) -> str:
    """A query-string timestamp with an explicit Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def response_ns(points: Sequence[dict[str, Any]]) -> np.ndarray:
    """The points' timestamps as int64 ns, after checking they are ISO 8601 UTC with Z."""
    for point in points:
        assert ISO_Z.match(point["timestamp"]), point["timestamp"]
    texts = [point["timestamp"][:-1] for point in points]
    return np.array(texts, dtype="datetime64[ns]").view(np.int64)


def minute_range(first: datetime, last: datetime) -> np.ndarray:
    """Whole-minute int64 ns timestamps first..last inclusive (both whole minutes)."""
    start, stop = datetime_to_ns(first), datetime_to_ns(last)
    assert start % MINUTE_NS == 0 and stop % MINUTE_NS == 0
    return np.arange(start, stop + 1, MINUTE_NS, dtype=np.int64)


def same_floats(got: Sequence[float | None], expected: Sequence[float]) -> bool:
    """Bit-for-bit equality (no tolerance), for values that crossed JSON."""
    return len(got) == len(expected) and all(
        g is not None and g == e and np.float64(g).tobytes() == np.float64(e).tobytes()
        for g, e in zip(got, expected, strict=True)
    )


# --- peers -----------------------------------------------------------------------------------


def wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, timeout: float) -> None:
    """Until the app process we started answers /healthz; it must not die meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, "the app process died at startup"
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the app process never answered"
        time.sleep(0.1)  # polling a process we do not own: nothing to await


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url(path: str = "/piwebapi") -> str:
    """An http URL on a local port where nothing listens (connection refused at once)."""
    return f"http://127.0.0.1:{free_port()}{path}"


@contextmanager
def silent_port() -> Iterator[int]:
    """A TCP port whose kernel backlog completes the handshake but which never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


PI_POINT = "P-101.VIB"
PI_TAG = f"PI:{PI_POINT}"


@contextmanager
def fake_pi_server(items: list[dict[str, Any]] | None = None) -> Iterator[FakePIServer]:
    """The connector suite's PI Web API look-alike, with one point (PI:P-101.VIB)."""
    server = FakePIServer([FakePoint(PI_POINT, "F1DPp2WebId", items or [])]).start()
    try:
        yield server
    finally:
        server.stop()


def pi_config(server_url: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "base_url": server_url,
        "data_server": DATA_SERVER,
        "username": USERNAME,
        "password": PASSWORD,
        "verify_tls": False,
    }
    config.update(overrides)
    return config


HistorianRow = tuple[str, datetime, float | None, str | int | None]


def make_sql_historian(path: Path, rows: Sequence[HistorianRow], table: str = "historian") -> str:
    """A SQLite historian table (tag, ts, value, quality) holding exactly `rows`; its URL."""
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    historian = sa.Table(
        table,
        metadata,
        sa.Column("tag", sa.String(100), nullable=False),
        sa.Column("ts", sa.DateTime(), nullable=False),  # naive UTC
        sa.Column("value", sa.Float()),
        sa.Column("quality", sa.String(16)),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        if rows:
            connection.execute(
                historian.insert(),
                [
                    {
                        "tag": tag,
                        "ts": ts.astimezone(UTC).replace(tzinfo=None),
                        "value": value,
                        "quality": None if quality is None else str(quality),
                    }
                    for tag, ts, value, quality in rows
                ],
            )
    engine.dispose()
    return url


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The app on a real uvicorn (its own event loop and threadpool); yields the base URL."""
    port = free_port()
    server = uvicorn.Server(
        # Open streams must not hold the shutdown past the join below: the lifespan's shutdown
        # (hub, scanner, its advisory lock) has to run before the next test.
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                       timeout_graceful_shutdown=3)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped during startup"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_sources(timeout: float = 1.0, **egress: Any) -> SourceAccess:
    """How the app reaches sources, for tests that drive the hub or service directly."""
    return SourceAccess(
        timeout=timeout,
        egress=EgressPolicy(**egress),
        vault=SecretVault([TEST_SECRET_KEY]),
    )


test_sources.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test
