"""One alarm scanner per deployment (DESIGN.md §11, §14): two real app processes on PostgreSQL;
exactly one holds the scanner's advisory lock, and when it dies the other takes over and goes
on from the database — the alarm it left open is cleared, not opened twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from tests.conftest import TEST_SECRET_KEY, make_tenant_world, migrated_database
from tests.peers import (
    add_integration,
    add_mapping,
    events,
    free_port,
    make_sql_historian,
    wait_until_healthy,
)
from webapp.alarms.schemas import LimitCreate
from webapp.alarms.service import create_limit
from webapp.config import PROJECT_ROOT
from webapp.db import create_db_engine, create_session_factory, tenant_session, utcnow
from webapp.scanner import LEADER_LOCK

pytestmark = pytest.mark.postgres
INTERVAL = 0.2
DEADLINE = 20.0


@contextmanager
def app_process(database_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """The app in a process of its own (uvicorn), as a deployment runs it."""
    port = free_port()
    env = {
        **os.environ,
        "OPTRIA_DATABASE_URL": database_url,
        "OPTRIA_SECRET_KEY": TEST_SECRET_KEY,
        "OPTRIA_DEMO_MODE": "true",  # the historian below is an SQLite file
        "OPTRIA_STREAM_INTERVAL_SECONDS": str(INTERVAL),
        "OPTRIA_PI_BASE_URL": "",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "webapp.main:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=PROJECT_ROOT, env=env,
    )
    try:
        wait_until_healthy(process, f"http://127.0.0.1:{port}", DEADLINE)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def lock_holders(engine: Engine) -> list[int]:
    """Backend pids holding the scanner's lock (advisory locks: classid, objid = the keys)."""
    with engine.connect() as connection:
        return list(connection.execute(
            sa.text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = :namespace AND objid = :key AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"),
            {"namespace": LEADER_LOCK[0], "key": LEADER_LOCK[1]},
        ).scalars())


def wait_for(check, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE
    while not (found := check()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)
    return found


@pytest.fixture
def own_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL database of this test's own: advisory locks are per database, so no other
    app of the suite (one still shutting down, say) can hold the scanner's lock here."""
    with migrated_database("postgresql", tmp_path_factory) as url:
        yield url


def test_the_scanner_fails_over_to_another_process(own_database: str, tmp_path: Path) -> None:
    database_url = own_database
    owner_engine = create_db_engine(database_url, as_app_role=False)
    app_engine = create_db_engine(database_url)
    session_factory = create_session_factory(app_engine)
    tenant_a = make_tenant_world(session_factory, "TENANT_A")
    a = tenant_a.tenant.id
    url = make_sql_historian(tmp_path / "historian.db", [("T.VIB", utcnow(), 1.0, "good")])
    integration = add_integration(session_factory, a, type="sql", name="h",
                                  config={"url": url, "table": "historian"})
    mapping = add_mapping(session_factory, a, asset_id=tenant_a.assets[0].id,
                          integration_id=integration, metric="vibration_rms", tag="T.VIB")
    with tenant_session(session_factory, a) as session:
        create_limit(session, LimitCreate(mapping_id=mapping, level="hi", threshold=10.0,
                                          priority="high"), actor_id=None)
    historian = sa.create_engine(url)

    def write(value: float) -> None:
        with historian.begin() as connection:
            connection.execute(sa.text("INSERT INTO historian VALUES ('T.VIB', :ts, :v, 'good')"),
                               {"ts": datetime.now(UTC).replace(tzinfo=None), "v": value})

    def alarm_kinds() -> list[str]:
        return [e["source_type"] for e in events(owner_engine, tenant_id=a, category="ALARM")]

    try:
        with app_process(database_url) as first:
            (leader,) = wait_for(lambda: lock_holders(owner_engine), "a leader")
            with app_process(database_url) as second:
                write(12.0)
                wait_for(lambda: alarm_kinds() == ["ACTIVATED"], "the leader's activation")
                assert lock_holders(owner_engine) == [leader], "exactly one scanner leads"

                first.send_signal(signal.SIGKILL)  # the leader dies without a goodbye
                first.wait()
                (successor,) = wait_for(
                    lambda: [pid for pid in lock_holders(owner_engine) if pid != leader],
                    "the other process taking over",
                )
                assert lock_holders(owner_engine) == [successor]
                write(3.0)
                wait_for(lambda: alarm_kinds() == ["ACTIVATED", "CLEARED"],
                         "the successor clearing the alarm it found open")
                write(12.5)
                wait_for(lambda: alarm_kinds()[-1:] == ["ACTIVATED"], "evaluation going on")
                assert second.poll() is None
        assert alarm_kinds() == ["ACTIVATED", "CLEARED", "ACTIVATED"], "nothing twice"
    finally:
        historian.dispose()
        app_engine.dispose()
        owner_engine.dispose()
