"""scripts/twin_smoke_test.py against a live server: passes on a healthy demo, fails loudly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from tests.peers import served
from webapp.config import Settings
from webapp.db import tenant_session
from webapp.demo.seed import seed_demo_signal_mappings, seed_demo_tenant

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "twin_smoke_test.py"
PASSWORD = "smoke-test-password"


def run_smoke(base_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--base-url", base_url, "--password", PASSWORD, *extra],
        capture_output=True, text=True, timeout=60,
    )


def seed_demo(factory: sessionmaker[Session], settings: Settings) -> None:
    with tenant_session(factory, None) as session:
        seed_demo_tenant(session, password=PASSWORD)
        seed_demo_signal_mappings(session, settings)


def test_smoke_script_passes_against_a_live_demo(
    app: FastAPI, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    seed_demo(session_factory, settings)
    with served(app) as base_url:
        result = run_smoke(base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 assets" in result.stdout
    assert "series vibration_rms: 100 points" in result.stdout
    assert "Smoke test passed" in result.stdout


def test_smoke_script_fails_on_bad_credentials_and_unreachable_server(
    app: FastAPI, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    seed_demo(session_factory, settings)
    with served(app) as base_url:
        rejected = run_smoke(base_url, "--email", "nobody@example.com")
    assert rejected.returncode == 1
    assert "token: HTTP 401" in rejected.stderr
    unreachable = run_smoke(base_url)  # the server has stopped
    assert unreachable.returncode == 1
    assert "cannot reach" in unreachable.stderr
