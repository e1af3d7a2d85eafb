"""The card grid's latest values come from the live hub: fast, flagged, and never held up."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, browser_login
from tests.peers import (
    add_integration,
    add_mapping,
    event_count,
    pi_config,
    silent_port,
    test_sources,
)
from webapp.connectors.demo import demo_values
from webapp.live.hub import LiveHub
from webapp.series import datetime_to_ns
from webapp.timeseries.service import Signal
from webapp.twin.views import CARD_READ_BUDGET_SECONDS


def card_values(page: str, asset_id: int) -> dict[str, str]:
    card = BeautifulSoup(page, "html.parser").select_one(
        f"[data-role=asset-card][data-asset-id='{asset_id}']"
    )
    assert card is not None
    return {
        value["data-metric"]: " ".join(value.select_one(".card-value-number").text.split())
        for value in card.select("[data-role=card-value]")
    }


def test_cards_show_the_first_two_metrics_with_units_and_write_no_event(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld,
    owner_engine: Engine,
) -> None:
    demo = add_integration(
        session_factory, tenant_a.tenant.id, type="demo", name="Demo", config={"mode": "demo"}
    )
    asset = tenant_a.assets[0]
    for metric, tag, unit in (
        ("vibration_rms", "PI:P-101.VIB", "mm/s"),
        ("temperature", "PI:P-101.TEMP", "°C"),
        ("pressure", "PI:P-101.PRES", "bar"),
    ):
        add_mapping(session_factory, tenant_a.tenant.id, asset_id=asset.id, integration_id=demo,
                    metric=metric, tag=tag, unit=unit)
    browser_login(client, tenant_a.users["viewer"].email)
    values = card_values(client.get("/twins").text, asset.id)
    assert list(values) == ["vibration_rms", "temperature"], "first two metrics, in mapping order"
    assert values["vibration_rms"].endswith("mm/s") and values["temperature"].endswith("°C")
    assert float(values["vibration_rms"].split()[0]) > 0
    assert event_count(owner_engine, category="SENSOR") == 0, "a summary, not a series read"


def test_a_silent_source_cannot_hold_up_the_grid(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    with silent_port() as port:
        dead = add_integration(
            session_factory, tenant_a.tenant.id, type="pi", name="Hung PI",
            config=pi_config(f"http://127.0.0.1:{port}/piwebapi"),
        )
        asset = tenant_a.assets[0]
        add_mapping(session_factory, tenant_a.tenant.id, asset_id=asset.id, integration_id=dead,
                    metric="vibration_rms", tag="PI:P-101.VIB", unit="mm/s")
        browser_login(client, tenant_a.users["viewer"].email)
        started = time.monotonic()
        page = client.get("/twins")
        elapsed = time.monotonic() - started
    assert page.status_code == 200
    assert elapsed < CARD_READ_BUDGET_SECONDS + 1.0
    assert card_values(page.text, asset.id)["vibration_rms"].startswith("—")


def test_an_edited_integration_reaches_a_running_feed() -> None:
    def signal(config: dict[str, str]) -> Signal:
        return Signal(
            tenant_id=1, asset_id=1, mapping_id=1, metric="vibration_rms", unit="mm/s",
            external_tag="PI:P-101.VIB", scaling_factor=1.0, offset_value=0.0,
            integration_id=910_001, integration_type="demo", integration_config=config,
        )

    async def scenario() -> dict[str, str]:
        hub = LiveHub(interval=0.05, sources=test_sources())
        first = hub.attach(signal({"mode": "demo"}))
        again = hub.attach(signal({"mode": "demo", "note": "edited"}))
        await hub.aclose()
        assert first is again, "one feed per (integration, tag)"
        return again.signal.integration_config

    assert asyncio.run(scenario()) == {"mode": "demo", "note": "edited"}


def test_demo_card_value_is_the_demo_reading() -> None:
    async def scenario() -> tuple[int, float]:
        hub = LiveHub(interval=0.05, sources=test_sources())
        sig = Signal(
            tenant_id=1, asset_id=1, mapping_id=1, metric="temperature", unit="°C",
            external_tag="PI:P-101.TEMP", scaling_factor=2.0, offset_value=1.0,
            integration_id=910_002, integration_type="demo", integration_config={"mode": "demo"},
        )
        result = await hub.latest(sig)
        await hub.aclose()
        assert result is not None
        series, source = result
        assert source == "live"
        return int(series.timestamps[0]), float(series.values[0])

    stamp, value = asyncio.run(scenario())
    assert value == float(demo_values("PI:P-101.TEMP", [stamp])[0]) * 2.0 + 1.0
    assert abs(stamp - datetime_to_ns(datetime.now(UTC))) < 5e9, "read at the current instant"
