"""`optria-iq serve --workers N` (DESIGN.md §17): N processes on one PostgreSQL, still one
alarm scanner, one SENSOR event per fetch and a hash chain that verifies; SQLite refuses.

The server runs as a real subprocess (uvicorn's supervisor and its workers), as in production.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from tests.conftest import postgres_server_url, temporary_postgres_database
from tests.peers import event_count, events, free_port, wait_until_healthy
from webapp.cli import main
from webapp.config import PROJECT_ROOT, get_settings
from webapp.db import create_db_engine, create_session_factory, tenant_session
from webapp.integrations.models import ExternalSignalMapping
from webapp.integrations.schemas import MappingUpdate
from webapp.integrations.service import update_mapping
from webapp.scanner import LEADER_LOCK
from webapp.tenancy.models import User
from webapp.tenancy.service import find_user_by_email, revoke_api_token, update_user
from webapp.timeseries.service import find_signal

WORKERS = 2
FETCHES = 50
STARTUP_SECONDS = 60
CLI = [sys.executable, "-m", "webapp.cli"]


def server_env(database_url: str, port: int) -> dict[str, str]:
    return {
        **os.environ, "OPTRIA_DATABASE_URL": database_url, "OPTRIA_SECRET_KEY": "workers",
        "OPTRIA_DEMO_MODE": "false", "OPTRIA_PORT": str(port),
        "OPTRIA_STREAM_INTERVAL_SECONDS": "0.5", "PYTHONPATH": str(PROJECT_ROOT),
    }


def prepare_database(database_url: str) -> None:
    for step in ("migrate", "seed-demo"):
        subprocess.run([*CLI, step], env=server_env(database_url, 0), check=True,
                       cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL)


@contextmanager
def running_server(database_url: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`optria-iq serve --workers 2` until healthy; its own process group, so a kill takes the
    supervisor and its workers alike."""
    server = subprocess.Popen([*CLI, "serve", "--workers", str(WORKERS)],
                              env=server_env(database_url, port), cwd=PROJECT_ROOT,
                              start_new_session=True)
    try:
        wait_until_healthy(server, f"http://127.0.0.1:{port}", STARTUP_SECONDS)
        yield server
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str, int]]:
    """(base URL, database URL, server pid) of `optria-iq serve --workers 2` on a fresh
    database."""
    with temporary_postgres_database(postgres_server_url()) as database_url:
        prepare_database(database_url)
        port = free_port()
        with running_server(database_url, port) as server:
            yield f"http://127.0.0.1:{port}", database_url, server.pid


def viewer_headers(base: str) -> dict[str, str]:
    return login_headers(base, "viewer@aramco.com")


def verify_chain_by_cli(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "blackbox", "verify"], env=server_env(database_url, 0), cwd=PROJECT_ROOT,
        capture_output=True, text=True,
    )


def test_two_workers_serve_fetches_with_one_event_each_and_one_scanner(
    served: tuple[str, str, int],
) -> None:
    base, database_url, pid = served
    # uvicorn's supervisor runs the workers as its child processes (Linux lists them).
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        assert len(children.read_text().split()) >= WORKERS
    headers = viewer_headers(base)
    asset_id = httpx.get(f"{base}/api/twins/assets", headers=headers).json()["assets"][0]["id"]
    url = f"{base}/api/twins/assets/{asset_id}/metrics/vibration_rms/series?limit=100"
    owner = create_engine(database_url)
    try:
        before = event_count(owner, category="SENSOR")
        with ThreadPoolExecutor(FETCHES) as pool:
            statuses = list(pool.map(
                lambda _: httpx.get(url, headers=headers, timeout=30).status_code,
                range(FETCHES),
            ))
        assert statuses == [200] * FETCHES
        assert event_count(owner, category="SENSOR") == before + FETCHES

        # Of the processes, exactly one leads the alarm scan.
        with owner.connect() as connection:
            deadline = time.monotonic() + 20
            while True:
                leaders = connection.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = :namespace AND objid = :key AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                ), {"namespace": LEADER_LOCK[0], "key": LEADER_LOCK[1]}).scalar_one()
                if leaders or time.monotonic() > deadline:
                    break
                time.sleep(0.2)  # the scanner's first tick, in another process
            assert leaders == 1
    finally:
        owner.dispose()

    # The chain the two processes extended side by side still verifies.
    verified = verify_chain_by_cli(database_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr


REACH_SECONDS = 1.0


def seconds_until_every_worker_shows(check: Callable[[], bool], *, budget: float = 10) -> float:
    """From now until `check` (one round of requests spread over the workers) first passes."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < budget, "the change never reached the workers"
    return time.monotonic() - started


def statuses(url: str, headers: dict[str, str], rounds: int = 12, **params: object) -> list[int]:
    with ThreadPoolExecutor(rounds) as pool:
        return list(pool.map(
            lambda _: httpx.get(url, headers=headers, params=params, timeout=30).status_code,
            range(rounds),
        ))


def test_changes_made_in_another_process_reach_every_worker_within_a_second(
    served: tuple[str, str, int],
) -> None:
    """§17: the workers cache principals and signals; a revoked token, a deactivated user and
    a deactivated or edited mapping, committed by another process (this test), stop working
    in every worker within 1 s (their caches would otherwise answer for 5 s)."""
    base, database_url, _ = served
    engine = create_db_engine(database_url)
    factory = create_session_factory(engine)
    try:
        with tenant_session(factory, None) as session:
            admin = find_user_by_email(session, "demo@aramco.com")
            operator = find_user_by_email(session, "operator@aramco.com")
            assert admin is not None and operator is not None
            tenant_id, admin_id, operator_id = admin.tenant_id, admin.id, operator.id
        headers = viewer_headers(base)
        assets = httpx.get(f"{base}/api/twins/assets", headers=headers).json()["assets"]

        def series(asset: int, metric: str) -> str:
            return f"{base}/api/twins/assets/{assets[asset]['id']}/metrics/{metric}/series"

        # A revoked token.
        revoked = viewer_headers(base)
        url = series(0, "vibration_rms")
        assert statuses(url, revoked) == [200] * 12  # cached by the workers now
        with tenant_session(factory, tenant_id) as session:
            revoke_api_token(session, revoked["Authorization"].split()[1], actor_id=admin_id)
        assert seconds_until_every_worker_shows(
            lambda: set(statuses(url, revoked)) == {401}
        ) <= REACH_SECONDS

        # A deactivated user (every credential of theirs revoked with them).
        operator_headers = login_headers(base, "operator@aramco.com")
        assert statuses(url, operator_headers) == [200] * 12
        with tenant_session(factory, tenant_id) as session:
            actor = session.get(User, admin_id)
            assert actor is not None
            update_user(session, operator_id, actor=actor, role=None, is_active=False)
        assert seconds_until_every_worker_shows(
            lambda: set(statuses(url, operator_headers)) == {401}
        ) <= REACH_SECONDS

        # A deactivated mapping.
        gone = series(1, "vibration_rms")
        assert statuses(gone, headers) == [200] * 12
        with tenant_session(factory, tenant_id) as session:
            mapping = mapping_of(session, assets[1]["id"], "vibration_rms")
            update_mapping(session, mapping, MappingUpdate(is_active=False), actor_id=admin_id)
        assert seconds_until_every_worker_shows(
            lambda: set(statuses(gone, headers)) == {404}
        ) <= REACH_SECONDS

        # An edited mapping: the same past window, now read through the new scale.
        edited = series(2, "vibration_rms")
        window = {"from_time": "2026-01-01T00:00:00Z", "to_time": "2026-01-01T00:09:00Z"}

        def first_values() -> set[float]:
            with ThreadPoolExecutor(12) as pool:
                return set(pool.map(
                    lambda _: httpx.get(edited, headers=headers, params=window, timeout=30)
                    .json()["points"][0]["value"],
                    range(12),
                ))

        (before,) = first_values()
        with tenant_session(factory, tenant_id) as session:
            mapping = mapping_of(session, assets[2]["id"], "vibration_rms")
            stored = session.get(ExternalSignalMapping, mapping)
            assert stored is not None
            scale = stored.scaling_factor * 1000
            update_mapping(session, mapping, MappingUpdate(scaling_factor=scale), actor_id=admin_id)

        def scaled() -> bool:
            values = first_values()
            return len(values) == 1 and math.isclose(values.pop(), before * 1000)

        assert seconds_until_every_worker_shows(scaled) <= REACH_SECONDS
    finally:
        engine.dispose()


def login_headers(base: str, email: str) -> dict[str, str]:
    token = httpx.post(f"{base}/api/auth/token", data={
        "username": email, "password": get_settings().demo_password,
    }).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def mapping_of(session: Session, asset_id: int, metric: str) -> int:
    signal = find_signal(session, asset_id, metric)
    assert signal is not None
    return signal.mapping_id


def test_a_killed_server_lost_no_event_of_a_response_it_sent() -> None:
    """Durability before the response (§17): kill -9 every process mid-load, start again.
    Each request asks for a different number of points, so its SENSOR event names it: every
    answered request has its event, and no event is there for a request never made."""
    requests, kill_after = 400, 60
    with temporary_postgres_database(postgres_server_url()) as database_url:
        prepare_database(database_url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        answered: list[int] = []
        enough = threading.Event()
        lock = threading.Lock()

        def fetch(url: str, headers: dict[str, str], limit: int) -> None:
            try:
                response = httpx.get(url, params={"limit": limit}, headers=headers, timeout=30)
            except httpx.TransportError:
                return  # the server died under this request: no answer, no promise
            if response.status_code == 200:
                assert len(response.json()["points"]) == limit
                with lock:
                    answered.append(limit)
                    if len(answered) >= kill_after:
                        enough.set()

        with running_server(database_url, port) as server:
            headers = viewer_headers(base)
            asset_id = httpx.get(f"{base}/api/twins/assets", headers=headers).json()[
                "assets"][0]["id"]
            url = f"{base}/api/twins/assets/{asset_id}/metrics/vibration_rms/series"
            with ThreadPoolExecutor(20) as pool:
                for limit in range(1, requests + 1):
                    pool.submit(fetch, url, headers, limit)
                assert enough.wait(120), "the load never got going"
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        with lock:
            sent = set(answered)
        assert len(sent) >= kill_after

        # Restarted on the same database: it serves, and the record is whole.
        with running_server(database_url, port):
            assert httpx.get(f"{base}/healthz").status_code == 200
        owner = create_engine(database_url)
        try:
            recorded = [e["payload"]["points_count"] for e in events(owner, category="SENSOR")]
        finally:
            owner.dispose()
        assert sent <= set(recorded), f"answered without an event: {sorted(sent - set(recorded))}"
        assert len(recorded) == len(set(recorded)), "one event per request, never two"
        assert set(recorded) <= set(range(1, requests + 1))
        assert len(recorded) < requests, "the kill came mid-load"
        verified = verify_chain_by_cli(database_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr


def test_more_than_one_worker_on_sqlite_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPTRIA_DATABASE_URL", f"sqlite:///{tmp_path / 'serve.db'}")
    monkeypatch.setenv("OPTRIA_SECRET_KEY", "workers")
    get_settings.cache_clear()
    try:
        assert main(["serve", "--workers", "2"]) == 1
        assert main(["serve", "--workers", "0"]) == 1
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "--workers above 1 needs PostgreSQL" in err and "at least 1" in err
