"""The metric view's custom window and its one decimals rule, and Arabic dates (DESIGN.md §18).

- `range=custom&from_time&to_time` shows that window, not live, validated like the series API
  (422 saying what was wrong, no event); the form sends plant time with `tz`.
- A metric's values carry the same decimals on its card, latest value, chart and table,
  whatever range is open.
- Arabic dates are isolated (`<bdi>`) and the chart's time labels read right to left.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bs4 import BeautifulSoup, Tag
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, browser_login
from tests.peers import add_integration, add_mapping, event_count, make_sql_historian
from webapp.twin.decimals import metric_decimals, range_decimals

HTMX = {"HX-Request": "true"}
START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)  # 11:00 in Riyadh (the tenants' plant time)
ROWS = [("P.VIB", START + timedelta(minutes=minute), 1.0 + minute, "good") for minute in range(5)]
ROWS += [("P.VIB", START + timedelta(hours=20), 9.0, "good")]  # outside the windows asked for


def soup(text: str) -> BeautifulSoup:
    return BeautifulSoup(text, "html.parser")


# --- the decimals rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "low", "high", "expected"),
    [
        ("mm/s", None, None, 2),
        ("°C", None, None, 1),
        (" °c ", None, None, 1),  # as typed into a mapping
        ("bar", None, None, 2),
        ("in/s", None, None, 3),
        ("rpm", None, None, 0),
        ("kW", None, None, 0),
        ("%", None, None, 1),
        ("mm/s", 0.0, 3000.0, 2),  # a known unit's resolution wins over its range
        ("ppm", 0.0, 5000.0, 0),  # an unknown unit: a thousandth of the range
        ("ppm", 0.0, 150.0, 1),
        ("ppm", 0.0, 10.0, 2),
        ("ppm", 0.0, 1.0, 3),
        ("ppm", 0.0, 0.01, 3),  # at most 3
        ("ppm", 5.0, 5.0, 2),  # no usable range: the default
        ("ppm", 5.0, None, 2),
        ("ppm", float("nan"), 1.0, 2),
        (None, None, None, 2),
        ("", None, None, 2),
    ],
)
def test_a_metric_has_one_number_of_decimals(
    unit: str | None, low: float | None, high: float | None, expected: int
) -> None:
    assert metric_decimals(unit, low, high) == expected


@pytest.mark.parametrize(
    ("span", "expected"),
    [(1000.0, 0), (999.0, 1), (100.0, 1), (99.9, 2), (10.0, 2), (1.0, 3), (0.5, 3),
     (0.0, 2), (-1.0, 2), (float("inf"), 2)],
)
def test_range_decimals_show_about_a_thousandth_of_the_span(span: float, expected: int) -> None:
    assert range_decimals(span) == expected


def decimals_of(text: str) -> int:
    number = re.search(r"-?[\d,]+(?:\.(\d+))?", text)
    assert number is not None, text
    return len(number.group(1) or "")


def shown_values(fragment: BeautifulSoup) -> list[str]:
    """Every value the metric view prints: latest, chart markers, axis, table."""
    values = [fragment.select_one("[data-role=latest-value]").get_text()]
    chart = fragment.select_one("svg[data-role=chart]")
    values += [marker["data-value"] for marker in chart.select(".chart-marker")]
    values += [label.get_text() for label in chart.select("[data-axis=value]")]
    values += [cell.get_text() for cell in fragment.select("[data-role=chart-table] td.num")]
    return values


def test_a_metric_shows_the_same_decimals_on_its_card_chart_and_table_in_every_range(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld,
) -> None:
    demo = add_integration(session_factory, tenant_a.tenant.id, type="demo", name="Demo",
                           config={"mode": "demo"})
    asset = tenant_a.assets[0]
    expected = {"vibration_rms": 2, "temperature": 1, "pressure": 2}
    for metric, tag, unit in (("vibration_rms", "PI:P-101.VIB", "mm/s"),
                              ("temperature", "PI:P-101.TEMP", "°C"),
                              ("pressure", "PI:P-101.PRES", None)):
        add_mapping(session_factory, tenant_a.tenant.id, asset_id=asset.id,
                    integration_id=demo, metric=metric, tag=tag, unit=unit)
    browser_login(client, tenant_a.users["viewer"].email)

    card = soup(client.get("/twins").text).select_one(
        f"[data-role=asset-card][data-asset-id='{asset.id}']"
    )
    for value in card.select("[data-role=card-value]"):
        assert decimals_of(value.select_one(".value").get_text()) == expected[
            value["data-metric"]
        ]

    now = datetime.now(UTC).replace(microsecond=0)
    custom = {"range": "custom", "from_time": (now - timedelta(hours=3)).isoformat(),
              "to_time": now.isoformat()}
    for metric, digits in expected.items():
        for params in ({"range": "100"}, {"range": "24h"}, {"range": "7d"}, custom):
            # The whole page: a live fragment's table rows come with its stream.
            response = client.get(f"/twins/assets/{asset.id}/metrics/{metric}", params=params)
            assert response.status_code == 200, response.text
            values = shown_values(soup(response.text).select_one("[data-role=metric-view]"))
            assert len(values) > 10
            assert {decimals_of(text) for text in values} == {digits}, (metric, params, values)


# --- the custom window ---------------------------------------------------------------------------


@pytest.fixture
def historian(
    session_factory: sessionmaker[Session], tenant_a: TenantWorld, tmp_path: Path
) -> int:
    url = make_sql_historian(tmp_path / "historian.db", ROWS)
    integration = add_integration(session_factory, tenant_a.tenant.id, type="sql",
                                  name="historian", config={"url": url, "table": "historian"})
    asset = tenant_a.assets[0]
    add_mapping(session_factory, tenant_a.tenant.id, asset_id=asset.id,
                integration_id=integration, metric="vibration_rms", tag="P.VIB", unit="mm/s")
    return asset.id


def table_times(fragment: BeautifulSoup) -> list[str]:
    return [time["datetime"] for time in fragment.select("[data-role=chart-table] time")]


def test_a_custom_window_in_plant_time_shows_that_window_and_is_not_live(
    client: TestClient, tenant_a: TenantWorld, historian: int, owner_engine: Engine
) -> None:
    browser_login(client, tenant_a.users["viewer"].email)
    before = event_count(owner_engine, category="SENSOR")
    view = f"/twins/assets/{historian}/metrics/vibration_rms"
    # What the form sends: the plant's wall clock (Riyadh, UTC+3) and its zone.
    response = client.get(view, params={"range": "custom", "from_time": "2026-11-01T11:00",
                                        "to_time": "2026-11-01T11:03", "tz": "Asia/Riyadh"},
                          headers=HTMX)
    assert response.status_code == 200, response.text
    fragment = soup(response.text)
    assert table_times(fragment) == [
        "2026-11-01T08:03:00Z", "2026-11-01T08:02:00Z", "2026-11-01T08:01:00Z",
        "2026-11-01T08:00:00Z",
    ]
    assert fragment.select_one("svg[data-role=chart]")["data-points"] == "4"
    assert event_count(owner_engine, category="SENSOR") == before + 1
    section = fragment.select_one("[data-role=metric-view]")
    assert section["data-range"] == "custom"
    # Not live: no stream, and it says so.
    assert fragment.select("[sse-connect]") == [] and fragment.select("[sse-swap]") == []
    status = fragment.select_one("[data-role=live-status]")
    assert status["data-state"] == "not-live"
    # The form shows the window asked for, in plant time; the export is that window.
    assert fragment.select_one("[data-role=custom-range]").has_attr("open")
    assert fragment.select_one("[data-role=custom-from]")["value"] == "2026-11-01T11:00"
    assert fragment.select_one("[data-role=custom-to]")["value"] == "2026-11-01T11:03"
    assert fragment.select_one("[data-role=custom-range-form] [name=tz]")["value"] == "Asia/Riyadh"
    export = fragment.select_one("[data-role=export-csv]")["href"]
    assert "from_time=2026-11-01T08%3A00%3A00Z" in export
    assert "to_time=2026-11-01T08%3A03%3A00Z" in export
    csv_rows = client.get(export).text.splitlines()[1:]
    assert [row.split(",")[0] for row in csv_rows] == [
        "2026-11-01T08:00:00Z", "2026-11-01T08:01:00Z", "2026-11-01T08:02:00Z",
        "2026-11-01T08:03:00Z",
    ]

    # Without a zone a naive time is UTC, as in the series API; an offset is honoured.
    utc = soup(client.get(view, params={"range": "custom", "from_time": "2026-11-01T08:01",
                                        "to_time": "2026-11-01T08:02"}, headers=HTMX).text)
    assert table_times(utc) == ["2026-11-01T08:02:00Z", "2026-11-01T08:01:00Z"]
    offset = soup(client.get(view, params={"range": "custom",
                                           "from_time": "2026-11-01T11:04:00+03:00",
                                           "to_time": "2026-11-01T12:00:00+03:00",
                                           "tz": "Europe/London"}, headers=HTMX).text)
    assert table_times(offset) == ["2026-11-01T08:04:00Z"]


def test_a_live_range_offers_the_custom_form_prefilled_with_the_last_day(
    client: TestClient, tenant_a: TenantWorld, historian: int
) -> None:
    browser_login(client, tenant_a.users["viewer"].email)
    fragment = soup(client.get(f"/twins/assets/{historian}/metrics/vibration_rms?range=100",
                               headers=HTMX).text)
    assert fragment.select_one("[data-role=metric-live]").has_attr("sse-connect")
    details = fragment.select_one("[data-role=custom-range]")
    assert not details.has_attr("open")
    start = datetime.fromisoformat(fragment.select_one("[data-role=custom-from]")["value"])
    end = datetime.fromisoformat(fragment.select_one("[data-role=custom-to]")["value"])
    assert end - start == timedelta(hours=24)
    riyadh_now = datetime.now(UTC) + timedelta(hours=3)
    assert abs(end - riyadh_now.replace(tzinfo=None)) < timedelta(minutes=2)


@pytest.mark.parametrize(
    ("params", "parameter", "words"),
    [
        ({"range": "custom", "from_time": "2026-11-01T08:00:00Z"}, "to_time", "required"),
        ({"range": "custom", "to_time": "2026-11-01T08:00:00Z"}, "from_time", "required"),
        ({"range": "custom", "from_time": "2026-11-01T09:00:00Z",
          "to_time": "2026-11-01T08:00:00Z"}, "from_time", "after to_time"),
        ({"range": "custom", "from_time": "2024-01-01T00:00:00Z",
          "to_time": "2026-11-01T08:00:00Z"}, "from_time", "366 days"),
        ({"range": "24h", "from_time": "2026-11-01T08:00:00Z"}, "from_time", "only with"),
        ({"range": "custom", "from_time": "2026-11-01T08:00", "to_time": "2026-11-01T09:00",
          "tz": "Mars/Olympus"}, "tz", "unknown timezone"),
        ({"range": "custom", "from_time": "2026-11-01T08:00", "to_time": "2026-11-01T09:00",
          "tz": "../../etc/passwd"}, "tz", "unknown timezone"),
        ({"range": "custom", "from_time": "1800-01-01T00:00:00Z",
          "to_time": "2026-11-01T08:00:00Z"}, "from_time", "between 1900"),
    ],
)
def test_a_window_that_cannot_be_shown_is_a_422_in_the_panel_without_an_event(
    client: TestClient, tenant_a: TenantWorld, historian: int, owner_engine: Engine,
    params: dict[str, str], parameter: str, words: str,
) -> None:
    browser_login(client, tenant_a.users["viewer"].email)
    before = event_count(owner_engine, category="SENSOR")
    view = f"/twins/assets/{historian}/metrics/vibration_rms"
    response = client.get(view, params=params, headers=HTMX)
    assert response.status_code == 422
    error = soup(response.text).select_one("[data-role=error-message]")
    assert error["data-status"] == "422"
    detail = error.select_one("[data-role=error-detail]").get_text()
    assert detail.startswith(f"{parameter}:") and words in detail, detail
    back = error.select_one("[data-role=error-back]")
    assert back["href"] == view
    assert client.get(back["href"], headers=HTMX).status_code == 200
    # The whole page answers the same way (a bookmarked bad window).
    page = client.get(view, params=params)
    assert page.status_code == 422
    assert soup(page.text).select_one("[data-role=asset-panel] [data-role=error-message]")
    assert event_count(owner_engine, category="SENSOR") == before + 1  # only the way back


def test_an_unparsable_time_is_a_422_naming_it(
    client: TestClient, tenant_a: TenantWorld, historian: int
) -> None:
    browser_login(client, tenant_a.users["viewer"].email)
    response = client.get(f"/twins/assets/{historian}/metrics/vibration_rms",
                          params={"range": "custom", "from_time": "yesterday",
                                  "to_time": "2026-11-01T08:00:00Z"}, headers=HTMX)
    assert response.status_code == 422
    assert "from_time" in response.text


def test_a_custom_window_has_no_stream(
    client: TestClient, tenant_a: TenantWorld, historian: int, owner_engine: Engine
) -> None:
    browser_login(client, tenant_a.users["viewer"].email)
    before = event_count(owner_engine, category="SENSOR")
    response = client.get(f"/twins/assets/{historian}/metrics/vibration_rms/stream",
                          params={"range": "custom"})
    assert response.status_code == 422
    assert "not live" in response.text
    assert event_count(owner_engine, category="SENSOR") == before


def test_another_tenants_asset_with_a_custom_window_is_a_404_without_an_event(
    client: TestClient, tenant_b: TenantWorld, historian: int, owner_engine: Engine
) -> None:
    browser_login(client, tenant_b.users["viewer"].email)
    before = event_count(owner_engine)
    response = client.get(f"/twins/assets/{historian}/metrics/vibration_rms",
                          params={"range": "custom", "from_time": "2026-11-01T08:00:00Z",
                                  "to_time": "2026-11-01T09:00:00Z"}, headers=HTMX)
    assert response.status_code == 404
    assert "P.VIB" not in response.text
    assert event_count(owner_engine) == before


# --- Arabic dates ---------------------------------------------------------------------------------


def test_arabic_dates_are_isolated_and_the_time_axis_reads_right_to_left(
    client: TestClient, tenant_a: TenantWorld, historian: int
) -> None:
    browser_login(client, tenant_a.users["viewer"].email)
    view = f"/twins/assets/{historian}/metrics/vibration_rms"
    params = {"range": "custom", "from_time": "2026-11-01T08:00:00Z",
              "to_time": "2026-11-02T06:00:00Z"}
    arabic = soup(client.get(view, params={**params, "lang": "ar"}, headers=HTMX).text)
    labels: list[Tag] = arabic.select("svg[data-role=chart] [data-axis=time]")
    assert labels and all(label["direction"] == "rtl" for label in labels)
    # Mirrored anchors keep each label at its tick: the first (left) one ends there.
    assert [label["text-anchor"] for label in labels] == ["end", "middle", "start"]
    assert "نوفمبر" in labels[0].get_text()
    for time in arabic.select("[data-role=chart-table] time, [data-role=latest-time]"):
        assert time.select_one("bdi") is not None, time

    english = soup(client.get(view, params={**params, "lang": "en"}, headers=HTMX).text)
    labels = english.select("svg[data-role=chart] [data-axis=time]")
    assert [label["text-anchor"] for label in labels] == ["start", "middle", "end"]
    assert not any(label.has_attr("direction") for label in labels)
