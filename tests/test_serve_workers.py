"""`optria-iq serve --workers N` (DESIGN.md §17): N processes on one PostgreSQL, still one
alarm scanner, one SENSOR event per fetch and a hash chain that verifies; SQLite refuses.

The server runs as a real subprocess (uvicorn's supervisor and its workers), as in production.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import postgres_server_url, temporary_postgres_database
from tests.peers import event_count
from webapp.cli import main
from webapp.config import PROJECT_ROOT, get_settings
from webapp.scanner import LEADER_LOCK

WORKERS = 2
FETCHES = 50
STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str, int]]:
    """(base URL, database URL, server pid) of `optria-iq serve --workers 2` on a fresh
    database."""
    with temporary_postgres_database(postgres_server_url()) as database_url:
        port = free_port()
        env = {
            **os.environ, "OPTRIA_DATABASE_URL": database_url, "OPTRIA_SECRET_KEY": "workers",
            "OPTRIA_DEMO_MODE": "false", "OPTRIA_PORT": str(port),
            "OPTRIA_STREAM_INTERVAL_SECONDS": "0.5", "PYTHONPATH": str(PROJECT_ROOT),
        }
        command = [sys.executable, "-m", "webapp.cli"]
        for step in ("migrate", "seed-demo"):
            subprocess.run([*command, step], env=env, check=True, cwd=PROJECT_ROOT,
                           stdout=subprocess.DEVNULL)
        server = subprocess.Popen([*command, "serve", "--workers", str(WORKERS)], env=env,
                                  cwd=PROJECT_ROOT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                assert server.poll() is None, "the server exited during startup"
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "not up in time"
                time.sleep(0.2)  # polling a process we do not own: nothing to await
            yield base, database_url, server.pid
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def test_two_workers_serve_fetches_with_one_event_each_and_one_scanner(
    served: tuple[str, str, int],
) -> None:
    base, database_url, pid = served
    # uvicorn's supervisor runs the workers as its child processes (Linux lists them).
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        assert len(children.read_text().split()) >= WORKERS
    token = httpx.post(f"{base}/api/auth/token", data={
        "username": "viewer@aramco.com", "password": get_settings().demo_password,
    }).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
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
    verified = subprocess.run(
        [sys.executable, "-m", "webapp.cli", "blackbox", "verify"],
        env={**os.environ, "OPTRIA_DATABASE_URL": database_url, "OPTRIA_SECRET_KEY": "workers",
             "PYTHONPATH": str(PROJECT_ROOT)},
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
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
