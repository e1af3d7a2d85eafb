"""Browser tests (DESIGN.md §7, §10, §13): the app on a real uvicorn, driven by real Chromium.

One SQLite database, migrated and seeded with the ARAMCO_DEMO tenant, served once for the
module; every test gets a fresh browser context (its own cookies) and leaves a screenshot in
test-artifacts/e2e/<test-name>.png. Without /usr/bin/chromium (or the playwright package) the
tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from tests.conftest import IN_CI, test_settings
from webapp.cli import migrate, seed_demo
from webapp.config import PROJECT_ROOT, Settings
from webapp.main import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "e2e"
STREAM_INTERVAL_SECONDS = 0.5
# Wide enough for the side-by-side layout (the panel becomes a drawer below 60rem).
VIEWPORT = {"width": 1440, "height": 900}
DEFAULT_TIMEOUT_MS = 10_000


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message}: browser tests must run in CI")
    pytest.skip(message)


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    settings: Settings

    def url(self, path: str) -> str:
        return self.base_url + path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    """The demo tenant on a fresh SQLite file, served by uvicorn in a background thread.
    A module may set LIVE_SERVER_SETTINGS (a dict of Settings fields) for its own server."""
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'optria.db'}"
    # No PI: the seed maps the demo connector, whatever the environment says.
    settings = test_settings(
        url,
        stream_interval_seconds=STREAM_INTERVAL_SECONDS,
        pi_base_url=None,
        pi_data_server=None,
        **getattr(request.module, "LIVE_SERVER_SETTINGS", {}),
    )
    migrate(settings)
    seed_demo(settings)
    application = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="e2e-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive():
            pytest.fail("uvicorn stopped during startup")
        if time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail("uvicorn did not start within 15 s")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", settings)
    finally:
        # Open SSE streams end when uvicorn shuts down; force it if they linger.
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        application.state.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (install Debian chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    if shutil.which(str(CHROMIUM)) is None:
        _unavailable(f"{CHROMIUM} is not executable")
    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def log_in(page, server: LiveServer, email: str, *, lang: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Fill and submit the login form like a user (on the login page the app redirected to, if
    it did); lands on the twin overview, signed in as `email`. English fields are found by
    their labels (so they must have them); another language's by name."""
    from playwright.sync_api import expect  # imported here: this module must load without it

    if lang is not None:
        page.goto(f"/login?lang={lang}")
    elif "/login" not in page.url:
        page.goto("/login")
    form = page.locator("form[action^='/login']")
    if lang is None:
        email_field, password_field = form.get_by_label("Email"), form.get_by_label("Password")
    else:
        email_field = form.locator("input[name=email]")
        password_field = form.locator("input[name=password]")
    email_field.fill(email)
    password_field.fill(server.settings.demo_password)
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/twins(\?.*)?$"))
    expect(page.locator("[data-role=current-user]")).to_contain_text(email)


def _artifact_name(node_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", node_name)


@pytest.fixture
def page(browser, live_server: LiveServer, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh context (no cookies), English UI; screenshot saved after the test."""
    context = browser.new_context(
        base_url=live_server.base_url,
        viewport=VIEWPORT,
        locale="en-US",
        reduced_motion="reduce",  # no slide-in animation under bounding-box checks
        service_workers="block",
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    # The CSP forbids inline script and eval: a violation is a bug, not noise.
    tab.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    try:
        yield tab
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            tab.screenshot(path=str(ARTIFACTS / f"{_artifact_name(request.node.name)}.png"))
        finally:
            context.close()
    assert not problems, "JavaScript or CSP errors on the page: " + "; ".join(problems)
