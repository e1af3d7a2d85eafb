"""CSV export of a series (DESIGN.md §18): the JSON's points as `text/csv`, one SENSOR event,
the same errors as the JSON API; linked from the metric view."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers, browser_login
from tests.peers import (
    add_integration,
    add_mapping,
    closed_port_url,
    event_count,
    make_sql_historian,
)

START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
ROWS = [
    ("P.VIB", START, 1.25, "good"),
    ("P.VIB", START + timedelta(minutes=1), None, "bad"),
    ("P.VIB", START + timedelta(minutes=2), 0.1 + 0.2, "uncertain"),  # 0.30000000000000004
    ("P.VIB", START + timedelta(minutes=3, microseconds=250_000), 2.5, "good"),
]
WINDOW = {"from_time": "2026-11-01T07:59:00Z", "to_time": "2026-11-01T09:00:00Z"}


@pytest.fixture
def mapped(
    session_factory: sessionmaker[Session], tenant_a: TenantWorld, tmp_path: Path
) -> tuple[int, str]:
    url = make_sql_historian(tmp_path / "historian.db", ROWS)
    integration = add_integration(session_factory, tenant_a.tenant.id, type="sql",
                                  name="historian", config={"url": url, "table": "historian"})
    asset = tenant_a.assets[0]
    add_mapping(session_factory, tenant_a.tenant.id, asset_id=asset.id,
                integration_id=integration, metric="vibration_rms", tag="P.VIB", unit="mm/s")
    return asset.id, asset.code


def test_the_csv_holds_the_jsons_points_and_writes_one_event(
    client: TestClient, tenant_a: TenantWorld, mapped: tuple[int, str], owner_engine: Engine
) -> None:
    asset_id, code = mapped
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    base = f"/api/twins/assets/{asset_id}/metrics/vibration_rms/series"
    json_points = client.get(base, params=WINDOW, headers=headers).json()["points"]
    before = event_count(owner_engine, category="SENSOR")

    response = client.get(base + ".csv", params=WINDOW, headers=headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="{code}_vibration_rms_')
    assert disposition.endswith('.csv"')
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["timestamp", "value", "unit", "quality"]
    assert rows[1:] == [
        ["2026-11-01T08:00:00Z", "1.25", "mm/s", "good"],
        ["2026-11-01T08:01:00Z", "", "mm/s", "bad"],
        ["2026-11-01T08:02:00Z", "0.30000000000000004", "mm/s", "uncertain"],
        ["2026-11-01T08:03:00.250000Z", "2.5", "mm/s", "good"],
    ]
    # The same points as the JSON, written the same way.
    assert [row[0] for row in rows[1:]] == [p["timestamp"] for p in json_points]
    assert [float(row[1]) if row[1] else None for row in rows[1:]] == [
        p["value"] for p in json_points
    ]
    assert event_count(owner_engine, category="SENSOR") == before + 1
    assert response.headers["x-truncated"] == "false"
    cut = client.get(base + ".csv", params={**WINDOW, "limit": 2}, headers=headers)
    assert cut.headers["x-truncated"] == "true"  # like the JSON's `truncated`
    assert len(cut.text.splitlines()) == 3


def test_bad_windows_unknown_metrics_and_dead_sources_answer_like_the_json(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld, mapped: tuple[int, str],
    session_factory: sessionmaker[Session], owner_engine: Engine,
) -> None:
    asset_id, _ = mapped
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    base = f"/api/twins/assets/{asset_id}/metrics"

    bad_limit = client.get(f"{base}/vibration_rms/series.csv?limit=0", headers=headers)
    assert bad_limit.status_code == 422 and "limit" in bad_limit.text
    backwards = client.get(f"{base}/vibration_rms/series.csv", headers=headers, params={
        "from_time": "2026-11-02T00:00:00Z", "to_time": "2026-11-01T00:00:00Z"})
    assert backwards.status_code == 422
    assert client.get(f"{base}/flow/series.csv", headers=headers).status_code == 404
    other = tenant_b.assets[0].id
    before = event_count(owner_engine)
    assert client.get(f"/api/twins/assets/{other}/metrics/vibration_rms/series.csv",
                      headers=headers).status_code == 404
    assert event_count(owner_engine) == before

    down = add_integration(session_factory, tenant_a.tenant.id, type="pi_web_api", name="down",
                           config={"base_url": closed_port_url()})
    add_mapping(session_factory, tenant_a.tenant.id, asset_id=asset_id, integration_id=down,
                metric="temperature", tag="PI:T", unit="°C")
    unavailable = client.get(f"{base}/temperature/series.csv", headers=headers)
    assert unavailable.status_code == 503
    assert unavailable.headers["content-type"].startswith("application/json")


def test_the_metric_view_links_to_the_csv_of_its_window(
    client: TestClient, tenant_a: TenantWorld, mapped: tuple[int, str]
) -> None:
    asset_id, _ = mapped
    browser_login(client, tenant_a.users["viewer"].email)

    def link(chart_range: str) -> str:
        page = client.get(f"/twins/assets/{asset_id}/metrics/vibration_rms?range={chart_range}",
                          headers={"HX-Request": "true"})
        anchor = BeautifulSoup(page.text, "html.parser").select_one("[data-role=export-csv]")
        assert anchor is not None and anchor.has_attr("download")
        return str(anchor["href"])

    assert link("100") == (
        f"/api/twins/assets/{asset_id}/metrics/vibration_rms/series.csv?limit=100"
    )
    day = link("24h")
    assert "mode=raw" in day and "from_time=" in day and "limit=10000" in day
    download = client.get(day)
    assert download.status_code == 200
    assert download.text.splitlines()[0] == "timestamp,value,unit,quality"
    assert "mode=plot" in link("7d")
