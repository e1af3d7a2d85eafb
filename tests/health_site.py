"""A tenant whose readings sit in a real SQL historian, for the health tests (DESIGN.md §15):
the app's own health pass reads them, as the scanner would."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers
from tests.peers import add_integration, add_mapping, make_sql_historian
from webapp.assets.models import AssetAIScore
from webapp.health.service import HealthMonitor, HealthReport

# ISO 20816-3 zone boundaries A/B, B/C, C/D in mm/s RMS (DESIGN.md §15).
ISO_ZONES = {
    (1, "rigid"): (2.3, 4.5, 7.1),
    (1, "flexible"): (3.5, 7.1, 11.0),
    (2, "rigid"): (1.4, 2.8, 4.5),
    (2, "flexible"): (2.3, 4.5, 7.1),
}
# (asset type, machine_group, foundation as sent) → the class §15 says applies.
CLASSES = {
    "G1R": ("gas_compressor", None, None, (1, "rigid")),  # the defaults of a compressor
    "G2R": ("centrifugal_pump", None, None, (2, "rigid")),  # the defaults of anything else
    "G1F": ("centrifugal_pump", 1, "flexible", (1, "flexible")),
    "G2F": ("gas_turbine", 2, "flexible", (2, "flexible")),
}
BANDS = ((85, "good"), (65, "watch"), (40, "alert"), (0, "danger"))
STEP = timedelta(minutes=5)


def zone_value(zone: str, boundaries: tuple[float, float, float]) -> float:
    """A value well inside `zone`."""
    a_b, b_c, c_d = boundaries
    return {"A": 0.5 * a_b, "B": (a_b + b_c) / 2, "C": (b_c + c_d) / 2, "D": 1.3 * c_d}[zone]


def band_for(score: int) -> str:
    return next(band for lowest, band in BANDS if score >= lowest)


@dataclass
class Site:
    client: TestClient
    world: TenantWorld
    factory: sessionmaker[Session]
    historian: Engine
    integration_id: int
    headers: dict[str, str]  # tenant A's engineer
    now: datetime

    @property
    def monitor(self) -> HealthMonitor:
        return self.client.app.state.scanner.health

    def asset(self, code: str, asset_type: str = "centrifugal_pump", **fields: Any) -> int:
        body = {"code": code, "name": f"{code} machine", "asset_type": asset_type, **fields}
        response = self.client.post("/api/assets", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def signal(self, asset_id: int, metric: str, tag: str, unit: str | None = "mm/s") -> int:
        return add_mapping(self.factory, self.world.tenant.id, asset_id=asset_id,
                           integration_id=self.integration_id, metric=metric, tag=tag, unit=unit)

    def write(self, tag: str, points: list[tuple[datetime, float | None, str]]) -> None:
        with self.historian.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO historian (tag, ts, value, quality) VALUES (:t, :ts, :v, :q)"),
                [{"t": tag, "ts": at.astimezone(UTC).replace(tzinfo=None), "v": value, "q": q}
                 for at, value, q in points],
            )

    def steady(self, tag: str, value: float, *, hours: float = 24, last_age: timedelta = STEP
               ) -> None:
        """`value` every 5 minutes over the last `hours`, the newest `last_age` before now."""
        count = int(hours * 3600 / STEP.total_seconds())
        newest = self.now - last_age
        self.write(tag, [(newest - i * STEP, value, "good") for i in range(count)])

    def run_pass(self, now: datetime | None = None) -> HealthReport:
        return self.client.portal.call(self.monitor.run_pass, now or self.now)  # type: ignore[union-attr]

    def health(self, asset_id: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = self.client.get(f"/api/assets/{asset_id}/health",
                                   headers=headers or self.headers)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def site(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld,
    tmp_path: Path,
) -> Iterator[Site]:
    url = make_sql_historian(tmp_path / "historian.db", [])
    integration = add_integration(session_factory, tenant_a.tenant.id, type="sql",
                                  name="historian", config={"url": url, "table": "historian"})
    historian = sa.create_engine(url)
    headers = bearer_headers(client, tenant_a.users["engineer"].email)
    now = datetime.now(UTC).replace(microsecond=0)
    yield Site(client, tenant_a, session_factory, historian, integration, headers, now)
    historian.dispose()


def await_active_alarms(site: Site) -> list[dict[str, Any]]:
    """Until the app's scanner (ticking on its own) has activated an alarm."""
    deadline = time.monotonic() + 30.0  # a tick or two; generous for a loaded CI machine
    while True:
        active = site.client.get("/api/alarms", headers=site.headers).json()["alarms"]
        if active:
            return active
        scanner = site.client.app.state.scanner
        assert time.monotonic() < deadline, (
            "the scanner never activated the alarm: "
            f"{scanner.ticks} ticks, last {scanner.last_tick}, "
            f"leading={scanner.leadership._connection is not None or not scanner.leadership.shared}"
        )
        time.sleep(0.05)


def stored_rows(owner_engine: Engine, asset_id: int) -> list[tuple[datetime, float | None]]:
    table = AssetAIScore.__table__
    with owner_engine.connect() as connection:
        rows = connection.execute(
            select(table.c.computed_at, table.c.score)
            .where(table.c.asset_id == asset_id).order_by(table.c.id)
        )
        return [(at, score) for at, score in rows]
