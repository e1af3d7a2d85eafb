"""An alarm in real Chromium (DESIGN.md §14 "Screens"): it appears on the banner and on its
asset's card without a reload, and an operator acknowledges it on /alarms.

This module gets its own demo server (the live server is per module), so the asset, the SQLite
historian integration, the mapping and the limit it creates through the API touch no other
journey. The reading that breaches the limit is written to the historian table the live hub
polls; the app's own scanner raises the alarm.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import IN_CI
from tests.e2e.conftest import LiveServer, log_in
from tests.peers import make_sql_historian

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the dev extra is missing: skip, but never silently in CI
    if IN_CI:
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.e2e

DEMO_ADMIN = "demo@aramco.com"
DEMO_ENGINEER = "engineer@aramco.com"
DEMO_OPERATOR = "operator@aramco.com"
TAG = "E2E-901.VIB"
# The banner polls every 10 s; the scanner needs a tick or two on top.
ALARM_TIMEOUT_MS = 25_000


@dataclass
class WatchedSignal:
    asset_id: int
    historian: sa.Engine

    def write(self, value: float) -> None:
        with self.historian.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO historian (tag, ts, value, quality) "
                        "VALUES (:tag, :ts, :value, 'good')"),
                {"tag": TAG, "ts": datetime.now(UTC).replace(tzinfo=None), "value": value},
            )


def _token(api: httpx.Client, email: str, password: str) -> dict[str, str]:
    response = api.post("/api/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def watched_signal(
    live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WatchedSignal]:
    """A new asset whose vibration comes from an SQLite historian, with a high-priority hi
    limit at 10 mm/s — all through the API, as an administrator and an engineer would."""
    path: Path = tmp_path_factory.mktemp("historian") / "historian.db"
    url = make_sql_historian(path, [(TAG, datetime.now(UTC), 2.0, "good")])
    password = live_server.settings.demo_password
    with httpx.Client(base_url=live_server.base_url, timeout=10) as api:
        admin = _token(api, DEMO_ADMIN, password)
        engineer = _token(api, DEMO_ENGINEER, password)
        asset = api.post("/api/assets", headers=engineer, json={
            "code": "E2E-901", "name": "Alarm test pump", "asset_type": "centrifugal_pump",
            "criticality": "medium", "location": "Test bay",
        })
        assert asset.status_code == 201, asset.text
        integration = api.post("/api/integrations", headers=admin, json={
            "type": "sql", "name": "E2E historian", "config": {"url": url, "table": "historian"},
        })
        assert integration.status_code == 201, integration.text
        mapping = api.post("/api/mappings", headers=engineer, json={
            "asset_id": asset.json()["id"], "integration_id": integration.json()["id"],
            "internal_metric_name": "vibration_rms", "external_tag": TAG, "unit": "mm/s",
        })
        assert mapping.status_code == 201, mapping.text
        limit = api.post("/api/alarm-limits", headers=engineer, json={
            "mapping_id": mapping.json()["id"], "level": "hi", "threshold": 10.0,
            "priority": "high",
        })
        assert limit.status_code == 201, limit.text
    historian = sa.create_engine(url)
    yield WatchedSignal(asset.json()["id"], historian)
    historian.dispose()


def test_an_alarm_appears_live_and_an_operator_acknowledges_it(
    page: Page, live_server: LiveServer, watched_signal: WatchedSignal
) -> None:
    log_in(page, live_server, DEMO_OPERATOR)
    asset_id = watched_signal.asset_id
    card = page.locator(f"[data-role=asset-card][data-asset-id='{asset_id}']")
    expect(card).to_be_visible()
    expect(card).not_to_have_attribute("data-alarm-priority", re.compile(".*"))
    banner = page.locator("[data-role=alarm-banner]")
    expect(banner).to_be_visible()
    listed = banner.locator(f"[data-role=alarm-assets] [data-asset-id='{asset_id}']")
    expect(listed).to_have_count(0)

    watched_signal.write(12.5)  # above the 10 mm/s limit

    # No reload: the banner's poll brings the alarm, and the card takes its mark from it.
    expect(card).to_have_attribute("data-alarm-priority", "high", timeout=ALARM_TIMEOUT_MS)
    mark = card.locator("[data-role=card-alarm]")
    expect(mark).to_be_visible()
    expect(mark).to_have_text("High-priority alarm")
    expect(listed).to_have_attribute("data-priority", "high")
    high = banner.locator("[data-role=alarm-count][data-priority=high]")
    expect(high).to_have_attribute("data-active", "true")
    assert int(high.get_attribute("data-count") or 0) >= 1
    assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1

    # The banner leads to /alarms, where the operator acknowledges the alarm from its row.
    banner.click()
    expect(page).to_have_url(re.compile(r"/alarms$"))
    row = page.locator("[data-role=active-alarms] [data-role=alarm-row]").filter(
        has=page.locator("[data-role=alarm-asset]", has_text="E2E-901")
    )
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-priority", "high")
    expect(row).to_have_attribute("data-state", "unack_active")
    expect(row.locator("[data-role=alarm-state]")).to_have_text("Active, unacknowledged")
    page.evaluate("() => { window.sameDocument = true; }")
    row.locator("[data-role=ack-button]").click()

    expect(row).to_have_attribute("data-state", "ack_active")
    assert page.evaluate("() => window.sameDocument === true"), "swapped in place, no page load"
    expect(row.locator("[data-role=alarm-state]")).to_have_text("Active, acknowledged")
    expect(row.locator("[data-role=ack-button]")).to_have_count(0)
    expect(row.locator("[data-role=acknowledged]")).to_be_visible()
    # Still counted: an acknowledged alarm is active until its value returns to normal.
    expect(page.locator("[data-role=alarm-count][data-priority=high]")).to_have_attribute(
        "data-active", "true"
    )
