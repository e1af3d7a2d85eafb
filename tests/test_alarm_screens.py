"""The alarm screens (DESIGN.md §14 "Screens"), both backends, read through the data-role hooks:
the banner on every page, /alarms (rows, acknowledging, suppressed and closed lists, KPIs and
the rate chart), the cards' alarm marks, the panel's alarm list and the limits on the trend.

Alarms are arranged as in production: limits through the API on a signal mapped to an SQLite
historian table, readings written to that table, the app's own scanner raising the alarms."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from bs4 import BeautifulSoup, Tag
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers, browser_login
from tests.peers import add_integration, add_mapping, events, make_sql_historian
from tests.test_alarms_api import DEADLINE_SECONDS, Plant, alarm_events, one, plant
from tests.test_live_streams import read_events
from tests.test_ui_shell import (
    test_no_external_host_anywhere as assert_no_external_host,
)
from tests.test_ui_shell import (
    test_no_inline_script_handlers_or_styles_on_any_page as assert_csp_safe_markup,
)
from webapp.alarms.charts import build_rate_chart
from webapp.blackbox.service import record_event
from webapp.db import tenant_session, utcnow
from webapp.series import Series, datetime_to_ns
from webapp.twin.charts import HEIGHT, PAD_BOTTOM, PAD_TOP, ChartLimit, build_chart

__all__ = ["plant"]  # the alarms API suite's fixture, used here
HTMX = {"HX-Request": "true"}
MISSING_ID = 2_000_000_000


def soup(response) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    return BeautifulSoup(response.text, "html.parser")


def counts_of(page: BeautifulSoup) -> dict[str, int]:
    banner = page.select_one("[data-role=alarm-banner]")
    assert banner is not None, "the page has the alarm banner"
    return {
        count["data-priority"]: int(count["data-count"])
        for count in banner.select("[data-role=alarm-count]")
    }


def rows_of(page: BeautifulSoup, role: str = "active-alarms") -> list[Tag]:
    table = page.select_one(f"[data-role={role}]")
    assert table is not None, role
    return table.select("[data-role=alarm-row]")


def login(plant: Plant, role: str) -> str:
    return browser_login(plant.client, plant.world.users[role].email)


def ack(plant: Plant, alarm_id: int, csrf: str):  # type: ignore[no-untyped-def]
    return plant.client.post(f"/alarms/{alarm_id}/ack",
                             headers={**HTMX, "X-CSRF-Token": csrf})


# --- the banner ------------------------------------------------------------------------------


def test_banner_on_every_page_counts_active_alarms_per_priority(plant: Plant) -> None:
    login(plant, "viewer")
    calm = soup(plant.client.get("/twins"))
    assert counts_of(calm) == {"high": 0, "medium": 0, "low": 0}
    banner = calm.select_one("[data-role=alarm-banner]")
    assert banner.name == "a" and banner["href"] == "/alarms"
    assert banner["data-state"] == "normal"
    assert banner.select("[data-active]") == [], "calm: no priority is highlighted"
    # Kept live by a poll of its own block, at most every 10 s.
    slot = calm.select_one("#alarm-banner")
    assert slot["hx-get"] == "/alarms/banner"
    every = re.search(r"every (\d+)s", slot["hx-trigger"])
    assert every and int(every.group(1)) <= 10

    plant.limit(level="hi", threshold=10.0, priority="medium")
    plant.limit(level="hihi", threshold=20.0, priority="high")
    plant.write(12.0)
    plant.await_alarms(one)
    fragment = plant.client.get("/alarms/banner", headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert counts_of(soup(fragment)) == {"high": 0, "medium": 1, "low": 0}

    plant.write(25.0)
    plant.await_alarms(lambda alarms: len(alarms) == 2)
    asset_id = plant.world.assets[0].id
    for url in ("/twins", f"/twins/assets/{asset_id}", "/alarms", "/blackbox"):
        page = soup(plant.client.get(url))
        assert counts_of(page) == {"high": 1, "medium": 1, "low": 0}, url
        banner = page.select_one("[data-role=alarm-banner]")
        assert banner["data-state"] == "alarm" and banner["data-highest"] == "high", url
        active = banner.select("[data-role=alarm-count][data-active]")
        assert sorted(count["data-priority"] for count in active) == ["high", "medium"]
        # A word beside every number, not colour alone.
        assert all(count.select_one(".alarm-count-label").get_text(strip=True) for count in active)


def test_the_banner_fragment_opened_directly_is_the_alarms_page(plant: Plant) -> None:
    login(plant, "viewer")
    response = plant.client.get("/alarms/banner", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/alarms"


def test_a_page_rendered_on_the_event_loop_fetches_its_counts_at_once(plant: Plant) -> None:
    login(plant, "viewer")
    page = soup(plant.client.get(f"/twins/assets/{MISSING_ID}"))  # the async 404 handler
    assert page.select_one("[data-role=error-message]") is not None
    assert page.select_one("[data-role=alarm-banner]")["data-state"] == "unknown"
    assert page.select_one("#alarm-banner")["hx-trigger"].startswith("load")


def test_suppressed_alarms_are_not_counted_nor_marked(plant: Plant) -> None:
    login(plant, "viewer")
    limit = plant.limit(level="hi", threshold=10.0, priority="high")
    plant.write(12.0)
    plant.await_alarms(one)
    shelved = plant.client.post(
        f"/api/alarm-limits/{limit['id']}/shelve",
        json={"minutes": 30, "reason": "Sensor being recalibrated"},
        headers=plant.headers["operator"],
    )
    assert shelved.status_code == 200, shelved.text

    page = soup(plant.client.get("/twins"))
    assert counts_of(page) == {"high": 0, "medium": 0, "low": 0}
    card = page.select_one(f"[data-role=asset-card][data-asset-id='{plant.world.assets[0].id}']")
    assert not card.has_attr("data-alarm-priority")

    alarms = soup(plant.client.get("/alarms"))
    assert rows_of(alarms) == []
    (row,) = rows_of(alarms, "suppressed-alarms")
    assert row["data-suppressed"] == "shelved" and row["data-state"] == "unack_active"
    suppression = row.select_one("[data-role=alarm-suppression]")
    assert "Shelved" in suppression.get_text() and suppression.select_one("time[datetime]")
    assert suppression.select_one("[data-role=shelve-reason]").get_text() == (
        "Sensor being recalibrated"
    )


# --- /alarms ----------------------------------------------------------------------------------


def test_rows_come_in_priority_order_with_state_priority_and_reading(plant: Plant) -> None:
    login(plant, "viewer")
    plant.limit(level="hi", threshold=10.0, priority="low")
    plant.limit(level="hihi", threshold=20.0, priority="high")
    plant.write(25.0)
    plant.await_alarms(lambda alarms: len(alarms) == 2)
    plant.limit(level="lo", threshold=2.0, priority="medium")
    plant.write(1.0)  # hi and hihi return to normal (unacknowledged), lo activates
    expected = plant.await_alarms(
        lambda alarms: len(alarms) == 3 and all(a["state"] != "ack_active" for a in alarms)
        and sum(a["state"] == "rtn_unack" for a in alarms) == 2
    )

    page = soup(plant.client.get("/alarms"))
    rows = rows_of(page)
    assert [int(row["data-alarm-id"]) for row in rows] == [a["id"] for a in expected]
    assert [(row["data-priority"], row["data-state"]) for row in rows] == [
        ("high", "rtn_unack"), ("medium", "unack_active"), ("low", "rtn_unack"),
    ]
    high = rows[0]
    assert high.select_one("[data-role=alarm-asset]").get_text(strip=True) == "P-101"
    assert high.select_one("[data-role=alarm-metric]").get_text(strip=True) == "Vibration RMS"
    assert high.select_one("[data-role=alarm-level]")["data-level"] == "hihi"
    assert high.select_one("[data-role=alarm-priority]").get_text(strip=True) == "High"
    assert high.select_one("[data-role=alarm-state]").get_text(strip=True) == (
        "Returned to normal, unacknowledged"
    )
    value = high.select_one("[data-role=alarm-value]")
    # mm/s: two decimals, as on the metric's card and chart.
    assert value.select_one("[data-role=trigger-value]").get_text() == "25.00"
    assert value.select_one("[data-role=threshold]").get_text() == "20.00"
    assert "≥" in value.get_text() and value.get_text().count("mm/s") == 2
    assert "≤" in rows[1].select_one("[data-role=alarm-value]").get_text()
    moment = high.select_one("time[data-role=alarm-time]")
    assert moment["datetime"].endswith("Z")
    # Shown in the plant's timezone (Asia/Riyadh, UTC+3), 24-hour clock.
    activated = datetime.fromisoformat(moment["datetime"].replace("Z", "+00:00"))
    assert (activated + timedelta(hours=3)).strftime("%H:%M:%S") in moment.get_text()


def test_ack_button_only_for_operators_and_only_when_acknowledgeable(plant: Plant) -> None:
    plant.limit(level="hi", threshold=10.0, priority="high")
    plant.limit(level="hihi", threshold=20.0, priority="high")
    plant.write(25.0)
    first, second = plant.await_alarms(lambda alarms: len(alarms) == 2)
    acked = plant.client.post(f"/api/alarms/{first['id']}/ack", headers=plant.headers["operator"])
    assert acked.status_code == 200

    login(plant, "viewer")
    page = soup(plant.client.get("/alarms"))
    assert len(rows_of(page)) == 2 and page.select("[data-role=ack-button]") == []

    csrf = login(plant, "operator")
    rows = {int(row["data-alarm-id"]): row for row in rows_of(soup(plant.client.get("/alarms")))}
    assert rows[first["id"]]["data-state"] == "ack_active"
    assert rows[first["id"]].select("[data-role=ack-button]") == []
    assert rows[first["id"]].select_one("[data-role=acknowledged] time[datetime]") is not None
    button = rows[second["id"]].select_one("[data-role=ack-button]")
    assert button["hx-post"] == f"/alarms/{second['id']}/ack"
    assert button["hx-target"] == "closest tr" and button["hx-swap"] == "outerHTML"
    # Without JavaScript the button posts its form, with the CSRF token.
    form = button.find_parent("form")
    assert form["method"] == "post" and form["action"] == button["hx-post"]
    assert form.select_one("input[name=csrf_token]")["value"] == csrf


def test_acknowledging_from_a_row_moves_its_state_and_writes_the_event(
    plant: Plant, owner_engine: Engine
) -> None:
    plant.limit(level="hi", threshold=10.0, priority="medium")
    plant.write(12.0)
    (alarm,) = plant.await_alarms(one)
    csrf = login(plant, "operator")

    response = ack(plant, alarm["id"], csrf)
    assert response.status_code == 200, response.text
    assert "<html" not in response.text
    assert response.headers["HX-Trigger-After-Settle"] == "alarms-changed"
    (row,) = soup(response).select("[data-role=alarm-row]")
    assert (row["data-alarm-id"], row["data-state"]) == (str(alarm["id"]), "ack_active")
    assert row.select("[data-role=ack-button]") == []
    # Keyboard focus has somewhere to land: the acknowledgement has the button's id.
    assert row.select_one("#ack-" + str(alarm["id"]))["data-role"] == "acknowledged"
    kinds = alarm_events(owner_engine, plant.world.tenant.id)
    assert [kind for kind, _ in kinds] == ["ACTIVATED", "ACKNOWLEDGED"]
    assert kinds[1][1]["user_id"] == plant.world.users["operator"].id
    assert plant.alarms()[0]["state"] == "ack_active"

    # Again: 409, said in the row, never a 500; nothing more written.
    again = ack(plant, alarm["id"], csrf)
    assert again.status_code == 409
    (row,) = soup(again).select("[data-role=alarm-row]")
    assert row["data-state"] == "ack_active"
    error = row.select_one("[data-role=error-message][role=alert]")
    assert error["data-status"] == "409" and "Already acknowledged" in error.get_text()
    assert len(alarm_events(owner_engine, plant.world.tenant.id)) == 2


def test_acknowledging_a_returned_alarm_closes_it_into_recently_closed(
    plant: Plant, owner_engine: Engine
) -> None:
    plant.limit(level="hi", threshold=10.0, priority="low")
    plant.write(12.0)
    (alarm,) = plant.await_alarms(one)
    plant.write(3.0)
    plant.await_alarms(lambda alarms: alarms and alarms[0]["state"] == "rtn_unack")
    csrf = login(plant, "operator")
    (row,) = soup(ack(plant, alarm["id"], csrf)).select("[data-role=alarm-row]")
    assert row["data-state"] == "closed"
    assert [kind for kind, _ in alarm_events(owner_engine, plant.world.tenant.id)][-2:] == [
        "ACKNOWLEDGED", "CLOSED",
    ]
    page = soup(plant.client.get("/alarms"))
    assert rows_of(page) == []
    (closed,) = rows_of(page, "closed-alarms")
    assert closed["data-alarm-id"] == str(alarm["id"]) and closed["data-state"] == "closed"
    assert closed.select_one("time[data-role=closed-time]") is not None


def test_a_plain_form_post_acknowledges_and_returns_to_the_alarms_page(plant: Plant) -> None:
    plant.limit(level="hi", threshold=10.0, priority="high")
    plant.write(12.0)
    (alarm,) = plant.await_alarms(one)
    csrf = login(plant, "operator")
    response = plant.client.post(f"/alarms/{alarm['id']}/ack", data={"csrf_token": csrf},
                                 follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/alarms"
    assert plant.alarms()[0]["state"] == "ack_active"
    again = plant.client.post(f"/alarms/{alarm['id']}/ack", data={"csrf_token": csrf})
    assert again.status_code == 409
    page = soup(again)
    assert page.html is not None
    assert page.select_one("[data-role=error-message]")["data-status"] == "409"


def test_another_tenants_alarm_is_404_and_nothing_is_written(
    plant: Plant, session_factory: sessionmaker[Session], tenant_b: TenantWorld,
    owner_engine: Engine, tmp_path: Path,
) -> None:
    url = make_sql_historian(tmp_path / "b.db", [("B.VIB", utcnow(), 50.0, "good")])
    b_integration = add_integration(session_factory, tenant_b.tenant.id, type="sql", name="h",
                                    config={"url": url, "table": "historian"})
    b_mapping = add_mapping(session_factory, tenant_b.tenant.id, asset_id=tenant_b.assets[0].id,
                            integration_id=b_integration, metric="vibration_rms", tag="B.VIB")
    b_headers = bearer_headers(plant.client, tenant_b.users["engineer"].email)
    created = plant.client.post(
        "/api/alarm-limits",
        json={"mapping_id": b_mapping, "level": "hi", "threshold": 10, "priority": "high"},
        headers=b_headers,
    )
    assert created.status_code == 201
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not (b_alarms := plant.client.get("/api/alarms", headers=b_headers).json()["alarms"]):
        assert time.monotonic() < deadline, "tenant B's alarm never came"
        time.sleep(0.05)
    b_alarm = b_alarms[0]["id"]
    before = events(owner_engine, tenant_id=tenant_b.tenant.id)

    csrf = login(plant, "operator")
    for alarm_id in (b_alarm, MISSING_ID):
        response = ack(plant, alarm_id, csrf)
        assert response.status_code == 404
        missing = soup(response).select_one("[data-role=alarm-row-missing]")
        assert missing.select_one("[data-role=error-message]")["data-status"] == "404"
        assert str(b_alarm) not in response.text or alarm_id == b_alarm
        assert "HX-Trigger-After-Settle" not in response.headers
    assert events(owner_engine, tenant_id=tenant_b.tenant.id) == before
    assert plant.client.get("/api/alarms", headers=b_headers).json()["alarms"][0]["state"] == (
        "unack_active"
    )
    # Nor does A's page show B's alarm, or count it.
    page = soup(plant.client.get("/alarms"))
    assert rows_of(page) == [] and counts_of(page) == {"high": 0, "medium": 0, "low": 0}


def test_acknowledging_needs_an_operator_and_the_csrf_token(
    plant: Plant, owner_engine: Engine
) -> None:
    plant.limit(level="hi", threshold=10.0, priority="high")
    plant.write(12.0)
    (alarm,) = plant.await_alarms(one)
    viewer_csrf = login(plant, "viewer")
    assert ack(plant, alarm["id"], viewer_csrf).status_code == 403
    login(plant, "operator")
    assert plant.client.post(f"/alarms/{alarm['id']}/ack", headers=HTMX).status_code == 403
    assert [kind for kind, _ in alarm_events(owner_engine, plant.world.tenant.id)] == [
        "ACTIVATED"
    ]


def test_kpis_and_the_rate_chart(plant: Plant) -> None:
    login(plant, "viewer")
    plant.limit(level="hi", threshold=10.0, priority="high")
    plant.write(12.0)
    plant.await_alarms(one)
    page = soup(plant.client.get("/alarms"))
    kpis = {
        kpi["data-kpi"]: kpi.select_one("dd.num").get_text(strip=True)
        for kpi in page.select("[data-role=alarm-kpis] [data-role=kpi]")
    }
    assert kpis["activations"] == "1" and kpis["per_10min_peak"] == "1"
    assert kpis["flood_intervals"] == "0" and kpis["standing"] == "0"
    assert set(kpis) >= {"per_10min_avg", "chattering", "top10_share"}
    chart = page.select_one("svg[data-role=alarm-rate-chart]")
    assert chart is not None and chart.select_one("title").get_text(strip=True)
    (bar,) = chart.select("[data-role=rate-bar]")
    assert bar["data-count"] == "1" and bar.select_one("title")
    assert chart.select_one("[data-role=flood-line]")["data-threshold"] == "10"
    axes = {label["data-axis"] for label in chart.select("[data-role=axis-label]")}
    assert axes == {"unit", "value", "time"}
    (actor,) = page.select("[data-role=bad-actors] [data-role=bad-actor]")
    assert "P-101" in actor.get_text() and "Vibration RMS" in actor.get_text()


def test_the_active_list_is_its_own_polled_block(plant: Plant) -> None:
    login(plant, "viewer")
    page = soup(plant.client.get("/alarms"))
    slot = page.select_one("#alarm-list")
    assert slot["hx-get"] == "/alarms" and "every 10s" in slot["hx-trigger"]
    assert "alarms-changed from:body" in slot["hx-trigger"]
    fragment = plant.client.get("/alarms", headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert soup(fragment).select_one("[data-role=active-alarms]") is not None
    assert soup(fragment).select_one("[data-role=alarm-kpis]") is None


def test_alarms_page_in_arabic(plant: Plant) -> None:
    login(plant, "viewer")
    plant.limit(level="hi", threshold=10.0, priority="high")
    plant.write(12.0)
    plant.await_alarms(one)
    page = soup(plant.client.get("/alarms?lang=ar"))
    assert (page.html["lang"], page.html["dir"]) == ("ar", "rtl")
    assert page.select_one("h1").get_text(strip=True) == "الإنذارات"
    (row,) = rows_of(page)
    assert row.select_one("[data-role=alarm-priority]").get_text(strip=True) == "عالية"
    assert row.select_one("[data-role=alarm-metric]").get_text(strip=True) == "الاهتزاز (RMS)"
    # The comparison keeps its left-to-right order; the code is isolated.
    assert row.select_one("[data-role=alarm-value]")["dir"] == "ltr"
    assert row.select_one("[data-role=alarm-asset]").name == "bdi"
    banner = page.select_one("[data-role=alarm-banner]")
    assert banner.select_one(".alarm-banner-title").get_text(strip=True) == "الإنذارات"
    plant.client.get("/twins?lang=en")


def test_alarm_screens_are_csp_safe_and_air_gapped(plant: Plant) -> None:
    plant.limit(level="hi", threshold=10.0, priority="high")
    plant.write(12.0)
    (alarm,) = plant.await_alarms(one)
    csrf = login(plant, "operator")
    asset_id = plant.world.assets[0].id
    pages = {
        url: plant.client.get(url).text
        for url in ("/alarms", "/twins", f"/twins/assets/{asset_id}/metrics/vibration_rms")
    }
    pages["banner"] = plant.client.get("/alarms/banner", headers=HTMX).text
    pages["list"] = plant.client.get("/alarms", headers=HTMX).text
    pages["acknowledged row"] = ack(plant, alarm["id"], csrf).text
    pages["409 row"] = ack(plant, alarm["id"], csrf).text
    pages["404 row"] = ack(plant, MISSING_ID, csrf).text
    assert_csp_safe_markup(pages)
    assert_no_external_host(pages)


# --- cards, panel, chart ------------------------------------------------------------------------


def test_cards_carry_the_alarm_priority_only_when_abnormal(plant: Plant) -> None:
    login(plant, "viewer")
    pump, other = plant.world.assets
    page = soup(plant.client.get("/twins"))
    for card in page.select("[data-role=asset-card]"):
        assert not card.has_attr("data-alarm-priority")
        assert card.select_one("[data-role=card-alarm]").has_attr("hidden")

    plant.limit(level="hi", threshold=10.0, priority="low")
    plant.limit(level="hihi", threshold=20.0, priority="medium")
    plant.write(25.0)
    plant.await_alarms(lambda alarms: len(alarms) == 2)
    page = soup(plant.client.get("/twins"))
    card = page.select_one(f"[data-role=asset-card][data-asset-id='{pump.id}']")
    assert card["data-alarm-priority"] == "medium", "its highest"
    mark = card.select_one("[data-role=card-alarm]")
    assert not mark.has_attr("hidden") and mark["data-priority"] == "medium"
    assert mark.get_text(strip=True) == "Medium-priority alarm"
    calm = page.select_one(f"[data-role=asset-card][data-asset-id='{other.id}']")
    assert not calm.has_attr("data-alarm-priority")
    # The poll that keeps the cards live: the banner says which asset is in alarm.
    listed = soup(plant.client.get("/alarms/banner", headers=HTMX)).select(
        "[data-role=alarm-assets] [data-asset-id]"
    )
    assert [(item["data-asset-id"], item["data-priority"]) for item in listed] == [
        (str(pump.id), "medium")
    ]
    grid = page.select_one("#asset-grid")
    assert grid["data-alarm-label-medium"] == "Medium-priority alarm"


def test_panel_heading_has_the_name_alone_and_the_code_beside_it(plant: Plant) -> None:
    login(plant, "viewer")
    asset = plant.world.assets[0]
    panel = soup(plant.client.get(f"/twins/assets/{asset.id}", headers=HTMX)).select_one(
        "[data-role=asset-panel]"
    )
    assert panel.select_one("[data-role=asset-name]").get_text(strip=True) == asset.name
    assert panel.select_one("[data-role=asset-code]").get_text(strip=True) == asset.code
    assert panel.select_one("[data-role=asset-code]").name == "bdi"


def test_panel_lists_the_assets_alarms_with_ack_for_operators(plant: Plant) -> None:
    asset = plant.world.assets[0]
    high = plant.limit(level="hihi", threshold=20.0, priority="high")
    plant.limit(level="hi", threshold=10.0, priority="low")
    plant.write(25.0)
    plant.await_alarms(lambda alarms: len(alarms) == 2)
    plant.client.post(f"/api/alarm-limits/{high['id']}/shelve",
                      json={"minutes": 10, "reason": "trip test"},
                      headers=plant.headers["operator"])

    login(plant, "viewer")
    panel = soup(plant.client.get(f"/twins/assets/{asset.id}", headers=HTMX))
    rows = rows_of(panel, "asset-alarm-list")
    assert [(row["data-priority"], row.get("data-suppressed")) for row in rows] == [
        ("low", None), ("high", "shelved"),
    ]
    assert panel.select("[data-role=ack-button]") == []

    login(plant, "operator")
    panel = soup(plant.client.get(f"/twins/assets/{asset.id}", headers=HTMX))
    assert len(panel.select("[data-role=asset-alarms] [data-role=ack-button]")) == 2
    other = soup(plant.client.get(f"/twins/assets/{plant.world.assets[1].id}", headers=HTMX))
    assert rows_of(other, "asset-alarm-list") == []
    assert other.select_one("[data-role=asset-alarms] [data-role=empty-state]") is not None


def test_the_metric_chart_draws_limits_off_scale_marks_and_the_normal_band(
    plant: Plant,
) -> None:
    for value in (5.0, 6.0, 7.0, 8.0, 9.0):
        plant.write(value)
    plant.limit(level="lo", threshold=5.5, priority="low")
    plant.limit(level="hi", threshold=8.5, priority="medium")
    plant.limit(level="hihi", threshold=50.0, priority="high")
    # The axis is the engineering range (§18): set here, so the far hihi lies beyond it.
    ranged = plant.client.patch(f"/api/mappings/{plant.mapping_id}",
                                json={"range_low": 4.0, "range_high": 10.0},
                                headers=plant.headers["engineer"])
    assert ranged.status_code == 200, ranged.text
    asset_id = plant.world.assets[0].id
    login(plant, "viewer")
    chart = soup(plant.client.get(f"/twins/assets/{asset_id}/metrics/vibration_rms",
                                  headers=HTMX)).select_one("svg[data-role=chart]")
    limits = {line["data-level"]: line for line in chart.select("[data-role=chart-limit]")}
    assert set(limits) == {"lo", "hi", "hihi"}
    assert limits["hihi"]["data-off-scale"] == "above"
    assert not limits["hi"].has_attr("data-off-scale")
    assert not limits["lo"].has_attr("data-off-scale")
    # Each with a label: level and threshold.
    assert limits["hi"].select_one("text").get_text(" ", strip=True) == "high 8.50 mm/s"
    assert "50.00" in limits["hihi"].select_one("text").get_text()
    top = float(limits["hihi"].select_one("line")["y1"])
    assert top == PAD_TOP, "an off-scale limit sits at the edge it lies beyond"
    band = chart.select_one("[data-role=chart-normal-band]")
    hi_y = float(limits["hi"].select_one("line")["y1"])
    lo_y = float(limits["lo"].select_one("line")["y1"])
    assert float(band["y"]) == pytest.approx(hi_y, abs=0.11)
    assert float(band["y"]) + float(band["height"]) == pytest.approx(lo_y, abs=0.2)


def test_the_streamed_chart_shows_the_same_limit_lines(plant: Plant) -> None:
    plant.limit(level="hi", threshold=8.0, priority="medium")
    ranged = plant.client.patch(f"/api/mappings/{plant.mapping_id}",
                                json={"range_low": 0.0, "range_high": 5.0},
                                headers=plant.headers["engineer"])
    assert ranged.status_code == 200, ranged.text
    plant.write(3.0)
    login(plant, "viewer")
    asset_id = plant.world.assets[0].id
    view = soup(plant.client.get(f"/twins/assets/{asset_id}/metrics/vibration_rms",
                                 headers=HTMX))
    stream_url = view.select_one("[sse-connect]")["sse-connect"]
    with plant.client.stream("GET", stream_url) as response:
        assert response.status_code == 200
        latest, chart = read_events(response.iter_lines(), 2)
    assert (latest["event"], chart["event"]) == ("latest", "chart")
    streamed = BeautifulSoup(chart["data"], "html.parser").select_one("svg[data-role=chart]")
    drawn = view.select_one("svg[data-role=chart]")
    assert [(g["data-level"], g.get("data-off-scale")) for g in
            streamed.select("[data-role=chart-limit]")] == [("hi", "above")]
    assert [(g["data-level"], g.get("data-off-scale")) for g in
            drawn.select("[data-role=chart-limit]")] == [("hi", "above")]


# --- the chart data, pure ------------------------------------------------------------------------


def series_of(values: list[float]) -> Series:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stamps = np.array([datetime_to_ns(start + timedelta(minutes=i)) for i in range(len(values))],
                      dtype=np.int64)
    return Series(stamps, np.array(values, dtype=np.float64), np.zeros(len(values), dtype=np.uint8))


def test_limit_lines_sit_at_their_value_or_the_edge_they_lie_beyond() -> None:
    chart = build_chart(
        series_of([10.0, 12.0, 14.0]), unit="bar", timezone="UTC", locale="en",
        limits=(ChartLimit("lolo", 1.0), ChartLimit("lo", 11.0), ChartLimit("hi", 13.0),
                ChartLimit("hihi", 40.0)),
    )
    lines = {line.level: line for line in chart.limits}
    assert lines["lolo"].off_scale == "below" and lines["lolo"].y == HEIGHT - PAD_BOTTOM
    assert lines["hihi"].off_scale == "above" and lines["hihi"].y == PAD_TOP
    assert lines["lo"].off_scale is None and lines["hi"].off_scale is None
    assert PAD_TOP < lines["hi"].y < lines["lo"].y < HEIGHT - PAD_BOTTOM
    assert (lines["hi"].value, lines["lo"].value) == ("13.00", "11.00")  # the axis's decimals
    assert chart.normal_band is not None
    assert chart.normal_band.y == pytest.approx(lines["hi"].y)
    assert chart.normal_band.y + chart.normal_band.height == pytest.approx(lines["lo"].y)


def test_one_sided_limits_shade_to_the_plot_edge_and_none_shade_nothing() -> None:
    only_high = build_chart(series_of([1.0, 2.0]), unit=None, timezone="UTC", locale="en",
                            limits=(ChartLimit("hi", 1.5),))
    assert only_high.normal_band is not None
    assert only_high.normal_band.y + only_high.normal_band.height == HEIGHT - PAD_BOTTOM
    plain = build_chart(series_of([1.0, 2.0]), unit=None, timezone="UTC", locale="en")
    assert plain.limits == () and plain.normal_band is None
    # Both limits above everything drawn: stacked labels at the top, no band in view.
    above = build_chart(series_of([1.0, 2.0]), unit=None, timezone="UTC", locale="en",
                        limits=(ChartLimit("hi", 50.0), ChartLimit("hihi", 90.0)))
    assert [line.off_scale for line in above.limits] == ["above", "above"]
    assert len({line.label_y for line in above.limits}) == 2, "labels do not overlap"
    assert above.normal_band is not None  # normal is everything below hi: the whole plot


def test_rate_chart_marks_flood_intervals() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rate = build_rate_chart(start, [0, 3, 0, 12], timezone="UTC", locale="en")
    assert rate.interval_count == 4 and rate.peak == 12
    assert [(bar.count, bar.flood) for bar in rate.bars] == [(3, False), (12, True)]
    assert rate.plot_top <= min(bar.y for bar in rate.bars)
    assert rate.bars[1].y < rate.flood_y < rate.bars[0].y


def test_alarm_events_read_in_the_viewers_language_on_the_blackbox_screen(
    client: TestClient, tenant_a: TenantWorld, session_factory: sessionmaker[Session]
) -> None:
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        record_event(
            session, tenant_id=tenant_a.tenant.id, asset_id=tenant_a.assets[0].id,
            source_system="OPTRIA_ALARMS", source_type="ACTIVATED", event_category="ALARM",
            severity="CRITICAL", summary="Activated: P-101 Vibration RMS high (12.5 ≥ 10)",
            payload={"alarm_id": 1, "limit_id": 1, "metric": "vibration_rms", "level": "hi",
                     "priority": "high", "threshold": 10.0, "value": 12.5, "user_id": None},
        )
        session.commit()
    browser_login(client, tenant_a.users["viewer"].email)
    for lang, words in (("en", "Alarm activated: Vibration RMS high"), ("ar", "تم تفعيل إنذار")):
        page = client.get(f"/blackbox?category=ALARM&lang={lang}", headers={"HX-Request": "true"})
        (row,) = BeautifulSoup(page.text, "html.parser").select("[data-role=event-row]")
        text = row.get_text(" ", strip=True)
        assert words in text and "12.5 ≥ 10.0" in text, text


def test_the_metric_charts_value_axis_is_the_engineering_range(plant: Plant) -> None:
    """§18: the axis is the mapping's range, both ends labelled, whatever the readings do."""
    ranged = plant.client.patch(f"/api/mappings/{plant.mapping_id}",
                                json={"range_low": 0.0, "range_high": 20.0},
                                headers=plant.headers["engineer"])
    assert ranged.status_code == 200, ranged.text
    asset_id = plant.world.assets[0].id
    login(plant, "viewer")

    def value_axis() -> list[str]:
        chart = soup(plant.client.get(f"/twins/assets/{asset_id}/metrics/vibration_rms",
                                      headers=HTMX)).select_one("svg[data-role=chart]")
        return [label.text for label in chart.select("[data-axis=value]")]

    plant.write(3.0)
    calm = value_axis()
    plant.write(7.5)
    # mm/s: two decimals, like the metric's every other value.
    assert calm == value_axis() == ["0.00", "10.00", "20.00"]
    plant.write(26.0)  # beyond the range: the axis stretches as far as the value, no further
    assert value_axis() == ["0.00", "13.00", "26.00"]
