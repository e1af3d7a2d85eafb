"""The overview's live grid (DESIGN.md §18): one SSE stream per page, card values with their
reading time and a stale mark, rendered once per tick per tenant and locale."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers, browser_login
from tests.peers import add_integration, add_mapping, make_sql_historian, test_sources
from tests.test_live_streams import demo_signal, read_events
from webapp.db import utcnow
from webapp.live.grid import CardReadings
from webapp.live.hub import LiveHub
from webapp.series import Series
from webapp.tenancy.models import UserSession


@dataclass
class Plant:
    client: TestClient
    world: TenantWorld
    historian: sa.Engine
    now: datetime

    def write(self, tag: str, at: datetime, value: float) -> None:
        with self.historian.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO historian (tag, ts, value, quality) VALUES (:t, :ts, :v, 'good')"
            ), {"t": tag, "ts": at.replace(tzinfo=None), "v": value})


@pytest.fixture
def plant(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld,
    tmp_path: Path,
) -> Iterator[Plant]:
    """Tenant A's two pumps on a SQL historian: P-101 fresh (a reading 5 s ago), C-301 last
    heard from 10 minutes ago."""
    now = utcnow().replace(microsecond=0)
    rows = [("FRESH.VIB", now - timedelta(seconds=5), 2.25, "good"),
            ("OLD.VIB", now - timedelta(minutes=10), 4.5, "good")]
    url = make_sql_historian(tmp_path / "historian.db", rows)
    integration = add_integration(session_factory, tenant_a.tenant.id, type="sql", name="hist",
                                  config={"url": url, "table": "historian"})
    for asset, tag in zip(tenant_a.assets, ("FRESH.VIB", "OLD.VIB"), strict=True):
        add_mapping(session_factory, tenant_a.tenant.id, asset_id=asset.id,
                    integration_id=integration, metric="vibration_rms", tag=tag, unit="mm/s")
    historian = sa.create_engine(url)
    browser_login(client, tenant_a.users["viewer"].email)
    yield Plant(client, tenant_a, historian, now)
    historian.dispose()


def card_value(html: str, asset_id: int | None = None) -> BeautifulSoup:
    soup = BeautifulSoup(html, "html.parser")
    scope = soup if asset_id is None else soup.select_one(
        f"[data-role=asset-card][data-asset-id='{asset_id}']")
    value = scope.select_one("[data-role=card-value]")
    assert value is not None
    return value


def test_cards_show_their_reading_time_and_say_when_it_is_stale(plant: Plant) -> None:
    page = plant.client.get("/twins").text
    grid = BeautifulSoup(page, "html.parser").select_one("[data-role=asset-grid]")
    assert (grid["hx-ext"], grid["sse-connect"]) == ("sse", "/twins/stream")
    fresh_id, old_id = (asset.id for asset in plant.world.assets)
    for asset_id in (fresh_id, old_id):
        slot = grid.select_one(f"[data-asset-id='{asset_id}'] [sse-swap]")
        assert (slot["sse-swap"], slot["hx-target"]) == (f"card-{asset_id}", "this")

    fresh, old = card_value(page, fresh_id), card_value(page, old_id)

    assert fresh.select_one(".value").text == "2.25" and "data-stale" not in fresh.attrs
    assert fresh.select_one("[data-role=card-value-time]")["datetime"] == (
        plant.now - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert fresh.select_one("[data-role=card-value-stale]") is None
    assert old["data-stale"] == "true"
    assert old.select_one("[data-role=card-value-stale]").text == "Stale"
    # 24-hour plant time (Asia/Riyadh is UTC+3).
    shown = (plant.now - timedelta(minutes=10) + timedelta(hours=3)).strftime("%H:%M:%S")
    assert old.select_one("[data-role=card-value-time]").text == shown


def test_the_grid_stream_opens_with_every_card_then_sends_only_what_changed(
    plant: Plant,
) -> None:
    fresh_id, old_id = (asset.id for asset in plant.world.assets)
    with plant.client.stream("GET", "/twins/stream") as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        opening = read_events(lines, 2)
        plant.write("FRESH.VIB", plant.now - timedelta(seconds=1), 3.75)
        (update_event,) = read_events(lines, 1)

    assert sorted(e["event"] for e in opening) == sorted([f"card-{fresh_id}", f"card-{old_id}"])
    assert update_event["event"] == f"card-{fresh_id}", "the quiet card is not sent again"
    assert card_value(update_event["data"]).select_one(".value").text == "3.75"


def test_a_revoked_session_ends_the_grid_stream_with_close(
    plant: Plant, owner_engine: sa.Engine
) -> None:
    with plant.client.stream("GET", "/twins/stream") as response:
        lines = response.iter_lines()
        read_events(lines, 2)
        with owner_engine.begin() as connection:
            connection.execute(update(UserSession).values(revoked_at=utcnow()))
        rest = read_events(lines, 50)
    assert rest and rest[-1]["event"] == "close"


def test_another_tenants_cards_never_reach_the_stream(
    plant: Plant, tenant_b: TenantWorld, session_factory: sessionmaker[Session]
) -> None:
    demo = add_integration(session_factory, tenant_b.tenant.id, type="demo", name="Demo",
                           config={"mode": "demo"})
    add_mapping(session_factory, tenant_b.tenant.id, asset_id=tenant_b.assets[0].id,
                integration_id=demo, metric="vibration_rms", tag="PI:P-101.VIB", unit="mm/s")
    with plant.client.stream("GET", "/twins/stream") as response:
        opening = read_events(response.iter_lines(), 2)
    assert {e["event"] for e in opening} == {f"card-{a.id}" for a in plant.world.assets}


def test_many_viewers_of_one_tenant_and_locale_cost_one_render_per_tick() -> None:
    renders: list[float] = []
    interval = 0.05

    async def scenario() -> None:
        hub = LiveHub(interval=interval, sources=test_sources())
        signal = demo_signal(900_011)
        signals = {signal.asset_id: [signal]}

        def render(readings: CardReadings) -> dict[int, bytes]:
            renders.append(time.monotonic())
            (pairs,) = readings.values()
            newest: Series | None = pairs[0][1]
            stamp = int(newest.timestamps[-1]) if newest is not None and len(newest) else 0
            return {signal.asset_id: f"event: card\ndata: {stamp}\n\n".encode()}

        received: list[list[bytes]] = [[] for _ in range(20)]

        async def viewer(bodies: list[bytes]) -> None:
            async def send(message: dict) -> None:
                bodies.append(message["body"])
                if len(bodies) >= 3:
                    raise OSError("enough")  # the viewer leaves
            await hub.stream_grid(("tenant", "en"), send, signals=signals, render=render,
                                  digest=None)

        await asyncio.wait_for(asyncio.gather(*(viewer(b) for b in received)), 10)
        await hub.aclose()
        assert all(len(bodies) == 3 for bodies in received)

    started = time.monotonic()
    asyncio.run(scenario())
    elapsed = time.monotonic() - started
    # The first viewer's opening, then one render per tick for all 20: never one per viewer.
    assert len(renders) >= 3
    assert len(renders) <= 2 + elapsed / interval, f"{len(renders)} renders in {elapsed:.2f} s"
    gaps = [b - a for a, b in itertools.pairwise(renders[1:])]
    assert min(gaps) > interval / 2, "no two renders within one tick"


def test_editing_an_integration_ends_the_grid_stream_so_it_reconnects_with_new_settings(
    plant: Plant, session_factory: sessionmaker[Session]
) -> None:
    """The page's stream would otherwise poll with the old settings and credentials."""
    headers = bearer_headers(plant.client, plant.world.admin.email)
    integration = plant.client.get("/api/integrations", headers=headers).json()["integrations"]
    with plant.client.stream("GET", "/twins/stream") as response:
        lines = response.iter_lines()
        read_events(lines, 2)
        edited = plant.client.patch(f"/api/integrations/{integration[0]['id']}",
                                    json={"is_active": False}, headers=headers)
        assert edited.status_code == 200, edited.text
        rest = read_events(lines, 50)
    assert len(rest) < 50, "the stream ended"
    assert all(event["event"] != "close" for event in rest), "ended to reconnect, not revoked"
    # Reconnected: the deactivated integration's cards are gone from the stream.
    with plant.client.stream("GET", "/twins/stream") as response:
        assert response.status_code == 200
