"""SQL historian connector against real tables in SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from tests.conftest import postgres_server_url, temporary_postgres_database
from webapp.connectors.base import ConnectorError
from webapp.connectors.sql import SQLHistorianConnector
from webapp.series import (
    QUALITY_BAD,
    QUALITY_GOOD,
    QUALITY_UNCERTAIN,
    datetime_to_ns,
    ns_to_datetime,
)

from .conftest import (
    END,
    LOCAL_PEERS,
    MINUTE_NS,
    Expected,
    assert_series_equal,
    free_port,
    run,
    run_closing,
)

TAGS = ("P-101.VIB", "P-101.TEMP")
ROWS = 600


@dataclass
class Historian:
    url: str
    table: str
    expected: dict[str, Expected]

    def connector(self, timeout: float = 3.0, **overrides: Any) -> SQLHistorianConnector:
        config = {"url": self.url, "table": self.table, **overrides}
        return SQLHistorianConnector(config, timeout=timeout, egress=LOCAL_PEERS)


def _labels(style: str, i: int) -> tuple[Any, int]:
    """The stored quality label for row i and the code it must map to."""
    if style == "none":
        return None, QUALITY_GOOD
    cycle = {
        "text": {0: ("uncertain", QUALITY_UNCERTAIN), 1: ("bad", QUALITY_BAD), 2: (None, 0)},
        "opc": {0: (100, QUALITY_UNCERTAIN), 1: (0, QUALITY_BAD), 2: (None, 0)},
    }[style]
    return cycle.get(i % 50, ("Good" if style == "text" else 192, QUALITY_GOOD))


def create_historian(
    engine: sa.Engine, table: str, *, aware: bool, quality: str
) -> dict[str, Expected]:
    """Create and fill `(tag, ts, value[, quality])`; returns what each tag must read back."""
    schema, _, name = table.rpartition(".")
    columns: list[sa.Column[Any]] = [
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=aware), nullable=False),
        sa.Column("value", sa.Float(precision=53)),
    ]
    if quality != "none":
        columns.append(sa.Column("quality", sa.Integer if quality == "opc" else sa.String(16)))
    hist = sa.Table(name, sa.MetaData(), *columns, schema=schema or None)
    with engine.begin() as conn:
        if schema:
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        hist.create(conn)
        sa.Index(f"ix_{name}_tag_ts", hist.c.tag, hist.c.ts).create(conn)
    rng = np.random.default_rng(42)
    expected: dict[str, Expected] = {}
    rows: list[dict[str, Any]] = []
    for tag in TAGS:
        ns = datetime_to_ns(END) - (ROWS - 1 - np.arange(ROWS, dtype=np.int64)) * MINUTE_NS
        ns -= 1000 * rng.integers(0, 1_000_000, ROWS)  # µs jitter: databases keep µs
        values = rng.normal(40.0, 8.0, ROWS)
        codes = np.zeros(ROWS, dtype=np.uint8)
        for i in range(ROWS):
            label, codes[i] = _labels(quality, i)
            stamp = ns_to_datetime(int(ns[i]))
            value: float | None = float(values[i])
            if i == 10:
                value, codes[i] = None, QUALITY_BAD  # a NULL reading is bad whatever the label
            row = {"tag": tag, "ts": stamp if aware else stamp.replace(tzinfo=None)}
            row["value"] = value
            if quality != "none":
                row["quality"] = label
            rows.append(row)
        values[codes == QUALITY_BAD] = np.nan
        expected[tag] = Expected(ns, values, codes)
    with engine.begin() as conn:
        conn.execute(hist.insert(), rows)
    return expected


@pytest.fixture(scope="module")
def sqlite_historians(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Historian]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('historian') / 'historian.db'}"
    engine = sa.create_engine(url)
    historians = [
        Historian(
            url, "historian", create_historian(engine, "historian", aware=False, quality="text")
        ),
        Historian(url, "bare", create_historian(engine, "bare", aware=False, quality="none")),
    ]
    engine.dispose()
    yield historians


@pytest.fixture(scope="module")
def postgres_historians() -> Iterator[list[Historian]]:
    with temporary_postgres_database(postgres_server_url()) as url:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        name = sa.make_url(url).database
        with engine.connect() as conn:
            # A non-UTC session zone exposes any naive/aware mix-up as a 3-hour shift.
            conn.execute(sa.text(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Riyadh'"))
        engine.dispose()
        engine = sa.create_engine(url)
        historians = [
            Historian(
                url, "historian", create_historian(engine, "historian", aware=True, quality="text")
            ),
            Historian(
                url,
                "plant.history",
                create_historian(engine, "plant.history", aware=False, quality="opc"),
            ),
        ]
        engine.dispose()
        yield historians


@pytest.fixture(
    params=[
        pytest.param(("sqlite", 0), id="sqlite-naive-text"),
        pytest.param(("sqlite", 1), id="sqlite-no-quality"),
        pytest.param(("postgres", 0), id="pg-tz-text", marks=pytest.mark.postgres),
        pytest.param(("postgres", 1), id="pg-schema-naive-opcda", marks=pytest.mark.postgres),
    ]
)
def historian(request: pytest.FixtureRequest) -> Historian:
    backend, index = request.param
    return request.getfixturevalue(f"{backend}_historians")[index]


def call(connector: SQLHistorianConnector, method: str, *args: Any) -> Any:
    return run_closing(connector, getattr(connector, method)(*args))


def test_latest_n_exact_with_quality(historian: Historian) -> None:
    for tag in TAGS:
        series = call(historian.connector(), "fetch_timeseries", tag, None, END, 120)
        assert_series_equal(series, historian.expected[tag].tail(120))


def test_window_is_inclusive_and_limit_keeps_the_newest(historian: Historian) -> None:
    expected = historian.expected[TAGS[0]]
    lo, hi = int(expected.timestamps[100]), int(expected.timestamps[200])
    window = (ns_to_datetime(lo), ns_to_datetime(hi))
    series = call(historian.connector(), "fetch_timeseries", TAGS[0], *window, 1000)
    assert_series_equal(series, expected.window(lo, hi))
    assert len(series) == 101
    latest = call(historian.connector(), "fetch_timeseries", TAGS[0], *window, 7)
    assert_series_equal(latest, expected.window(lo, hi).tail(7))


def test_latest_and_plot(historian: Historian) -> None:
    expected = historian.expected[TAGS[1]]
    assert_series_equal(call(historian.connector(), "fetch_latest", TAGS[1]), expected.tail(1))
    start = ns_to_datetime(int(expected.timestamps[0]))
    plot = call(historian.connector(), "fetch_plot", TAGS[1], start, END, 40)
    assert len(plot) <= 40
    assert np.nanmax(plot.values) == np.nanmax(expected.values)
    assert np.nanmin(plot.values) == np.nanmin(expected.values)


def test_unknown_tag_and_injection_attempts_are_just_unknown_tags(historian: Historian) -> None:
    for tag in ("P-999.VIB", "x' OR '1'='1"):
        with pytest.raises(ConnectorError, match="not found in table") as info:
            call(historian.connector(), "fetch_timeseries", tag, None, END, 10)
        assert repr(tag) in str(info.value)
    # An empty window of a known tag is simply empty.
    early = END - timedelta(days=30)
    assert len(call(historian.connector(), "fetch_timeseries", TAGS[0], None, early, 10)) == 0


def test_connection_check_and_missing_table(historian: Historian) -> None:
    call(historian.connector(), "test_connection")
    with pytest.raises(ConnectorError, match="table 'nope' not found"):
        call(historian.connector(table="nope"), "test_connection")


def test_table_without_the_expected_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'odd.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE odd (tag TEXT, ts DATETIME, reading REAL)"))
    engine.dispose()
    connector = SQLHistorianConnector({"url": url, "table": "odd"}, egress=LOCAL_PEERS)
    with pytest.raises(ConnectorError, match="lacks column"):
        call(connector, "fetch_latest", "P-101.VIB")


def assert_times_out(connector: SQLHistorianConnector, bound: float) -> None:
    """The read fails within the bound and the event loop keeps running meanwhile."""

    async def go() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        task = asyncio.create_task(ticker())
        try:
            with pytest.raises(ConnectorError):
                await connector.fetch_latest(TAGS[0])
        finally:
            task.cancel()
            await connector.aclose()
        return ticks

    started = time.monotonic()
    ticks = run(go())
    assert time.monotonic() - started < bound
    assert ticks >= 4  # the loop was never blocked by the waiting query


def test_locked_sqlite_database_times_out(sqlite_historians: list[Historian]) -> None:
    historian = sqlite_historians[0]
    locker = sa.create_engine(historian.url).raw_connection()
    try:
        locker.execute("BEGIN EXCLUSIVE")
        assert_times_out(historian.connector(timeout=0.5), 1.5)
    finally:
        locker.rollback()
        locker.close()


@pytest.mark.postgres
def test_locked_postgres_table_times_out(postgres_historians: list[Historian]) -> None:
    historian = postgres_historians[0]
    engine = sa.create_engine(historian.url)
    with engine.connect() as locker:
        locker.execute(sa.text("LOCK TABLE historian IN ACCESS EXCLUSIVE MODE"))
        assert_times_out(historian.connector(timeout=0.5), 1.5)
        locker.rollback()
    engine.dispose()


@pytest.mark.postgres
def test_unreachable_postgres_fails_fast() -> None:
    dead = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/postgres"
    connector = SQLHistorianConnector(
        {"url": dead, "table": "historian"}, timeout=0.5, egress=LOCAL_PEERS
    )
    started = time.monotonic()
    with pytest.raises(ConnectorError, match="failed") as info:
        call(connector, "test_connection")
    assert time.monotonic() - started < 1.5
    assert "Traceback" not in str(info.value)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"table": "historian"}, "url"),
        ({"url": "not a url", "table": "historian"}, "url"),
        ({"url": "nosuchdb://x/y", "table": "historian"}, "url"),
        ({"url": "sqlite://"}, "table"),
        ({"url": "sqlite://", "table": "historian; DROP TABLE users"}, "table"),
        ({"url": "sqlite://", "table": "a.b.c"}, "table"),
        ({"url": "sqlite://", "table": '"quoted"'}, "table"),
        ({"url": "sqlite://", "table": "historian", "fallback": "demo"}, "fallback"),
    ],
)
def test_config_errors_name_the_key(config: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=f'"{key}"'):
        SQLHistorianConnector.validate_config(config)


def test_values_and_times_round_trip_bit_exact_in_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'exact.db'}"
    engine = sa.create_engine(url)
    # (-0.0 is left out: SQLite itself stores integral REALs as integers, losing the sign.)
    tricky = [0.1 + 0.2, 1 / 3, 5e-324, 1.7976931348623157e308, 2.220446049250313e-16, -7.25]
    start = datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    with engine.begin() as conn:
        # A TEXT ts column (SQLite has no real timestamp type) holding UTC wall-clock text.
        conn.execute(sa.text("CREATE TABLE h (tag TEXT, ts TEXT, value REAL)"))
        conn.execute(
            sa.text("INSERT INTO h VALUES ('T', :ts, :v)"),
            [
                {"ts": (start + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f"), "v": v}
                for i, v in enumerate(tricky)
            ],
        )
    engine.dispose()
    connector = SQLHistorianConnector({"url": url, "table": "h"}, egress=LOCAL_PEERS)
    series = call(connector, "fetch_timeseries", "T", None, start + timedelta(days=1), 100)
    assert series.values.tobytes() == np.array(tricky).tobytes()
    assert series.timestamps[0] == datetime_to_ns(start)


@pytest.mark.postgres
def test_plain_postgresql_url_uses_the_installed_driver(
    postgres_historians: list[Historian],
) -> None:
    historian = postgres_historians[0]
    plain = sa.make_url(historian.url).set(drivername="postgresql")
    connector = historian.connector(url=plain.render_as_string(hide_password=False))
    assert len(call(connector, "fetch_latest", TAGS[0])) == 1
