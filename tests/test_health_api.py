"""Asset health end to end (DESIGN.md §15), both backends: readings in a real SQL historian, the
app's own health pass reading them, the rows it stores, and what the API serves from them.

The expected zones come from the ISO 20816-3 table written out in tests/health_site.py (not
from the code), and every value sits well inside its zone, so a wrong boundary or a wrong
class moves it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers
from tests.health_site import (
    CLASSES,
    ISO_ZONES,
    STEP,
    Site,
    await_active_alarms,
    band_for,
    stored_rows,
    zone_value,
)
from tests.peers import add_integration, add_mapping, closed_port_url, events
from webapp.db import tenant_session
from webapp.tenancy.models import User

pytest_plugins = ("tests.health_site",)  # the `site` fixture

# --- zones A–D for both machine groups and both foundations -----------------------------------


def test_every_zone_of_every_machine_class(site: Site) -> None:
    expected: dict[int, tuple[str, tuple[float, float, float], float]] = {}
    for prefix, (asset_type, group, foundation, machine_class) in CLASSES.items():
        for zone in "ABCD":
            asset_id = site.asset(f"{prefix}-{zone}", asset_type, machine_group=group,
                                  foundation=foundation)
            value = zone_value(zone, ISO_ZONES[machine_class])
            site.signal(asset_id, "vibration_rms", f"{prefix}-{zone}.VIB")
            site.steady(f"{prefix}-{zone}.VIB", value)
            expected[asset_id] = (zone, ISO_ZONES[machine_class], value)

    report = site.run_pass()

    # and tenant A's two assets of the world fixture, with no signal
    assert (report.assets, report.signals, report.failed_reads) == (18, 16, 0)
    for asset_id, (zone, boundaries, value) in expected.items():
        health = site.health(asset_id)
        assert set(health) == {"asset_id", "score", "band", "zone", "computed_at", "model",
                               "components", "time_to_zone_c_hours"}
        assert (health["asset_id"], health["zone"]) == (asset_id, zone), (boundaries, value)
        assert health["band"] == band_for(health["score"])
        assert health["model"] == "iso20816-v1"
        assert health["time_to_zone_c_hours"] is None  # a steady signal goes nowhere
        score = health["score"]
        if zone == "A":
            assert score >= 85 and health["components"] == []
            continue
        assert {"B": 100, "C": 65, "D": 40}[zone] > score
        if zone == "B":
            assert score >= 65  # the middle of zone B alone is no alert
        (component,) = health["components"]
        assert component["name"] == "vibration_zone"
        assert component["penalty"] == pytest.approx(100 - score, abs=0.5)  # score: an integer
        assert f"zone {zone}" in component["detail"]
        shown = re.search(r"Vibration ([0-9.]+) mm/s", component["detail"])
        assert shown is not None and float(shown.group(1)) == pytest.approx(value, abs=0.051)


def test_a_value_in_inches_per_second_is_judged_in_mm_per_second(site: Site) -> None:
    asset_id = site.asset("P-IPS")  # group 2, rigid: B/C at 2.8 mm/s
    site.signal(asset_id, "vibration_rms", "P-IPS.VIB", unit="in/s")
    site.steady("P-IPS.VIB", 0.12)  # 3.05 mm/s: zone C (0.12 mm/s would be zone A)

    site.run_pass()

    assert site.health(asset_id)["zone"] == "C"


# --- the other components ----------------------------------------------------------------------


def test_a_rising_vibration_says_when_it_reaches_zone_c(site: Site) -> None:
    asset_id = site.asset("P-RISE")  # group 2, rigid: B/C at 2.8 mm/s
    # 0.84 → 1.96 mm/s over the last 24 h: 0.0467 mm/s an hour, 0.84 mm/s short of B/C.
    points = 24 * 12
    start = site.now - points * STEP
    rising = [(start + i * STEP, 0.84 + 1.12 * i / points, "good") for i in range(1, points + 1)]
    site.write("P-RISE.VIB", rising)
    site.signal(asset_id, "vibration_rms", "P-RISE.VIB")

    site.run_pass()

    health = site.health(asset_id)
    assert health["time_to_zone_c_hours"] == pytest.approx((2.8 - 1.96) / (1.12 / 24), abs=0.5)
    trend = next(c for c in health["components"] if c["name"] == "vibration_trend")
    assert trend["penalty"] > 0
    assert "zone C" in trend["detail"]


def test_drift_nearness_and_an_active_alarm_each_explain_their_points(
    site: Site, session_factory: sessionmaker[Session]
) -> None:
    asset_id = site.asset("E-DRIFT", "heat_exchanger")
    mapping_id = site.signal(asset_id, "temperature", "E-DRIFT.TEMP", unit="°C")
    # A week around 60 °C (±0.5), then 68 °C now: far off its baseline and past its hi limit.
    week = 7 * 24 * 4
    site.write("E-DRIFT.TEMP", [
        (site.now - timedelta(minutes=15) * i, 60.0 + 0.5 * ((i % 5) - 2) / 2, "good")
        for i in range(2, week)
    ])
    site.write("E-DRIFT.TEMP", [(site.now - timedelta(minutes=1), 68.0, "good")])
    limit = site.client.post("/api/alarm-limits", headers=site.headers, json={
        "mapping_id": mapping_id, "level": "hi", "threshold": 67.0, "priority": "medium",
    })
    assert limit.status_code == 201, limit.text
    active = await_active_alarms(site)
    assert [a["priority"] for a in active] == ["medium"]

    site.run_pass()

    health = site.health(asset_id)
    named = {c["name"]: c for c in health["components"]}
    assert set(named) == {"active_alarms", "limit_nearness", "baseline_deviation"}
    taken = sum(c["penalty"] for c in health["components"])
    assert taken == pytest.approx(100 - health["score"], abs=0.5)
    assert "medium: 1" in named["active_alarms"]["detail"]
    assert "reached its high limit" in named["limit_nearness"]["detail"]
    assert "Temperature" in named["baseline_deviation"]["detail"]
    assert "above its 7-day median" in named["baseline_deviation"]["detail"]
    assert named["baseline_deviation"]["params"]["median"] == pytest.approx(60.0, abs=0.5)
    assert health["zone"] is None  # no vibration signal

    # The same health in the reader's language.
    with tenant_session(session_factory, site.world.tenant.id) as session:
        user = session.get(User, site.world.users["viewer"].id)
        assert user is not None
        user.locale = "ar"
        session.commit()
    arabic = site.health(asset_id, bearer_headers(site.client, site.world.users["viewer"].email))
    assert arabic["score"] == health["score"]
    details = [c["detail"] for c in arabic["components"]]
    assert all(detail not in {c["detail"] for c in health["components"]} for detail in details)
    assert all(any("\u0600" <= ch <= "\u06ff" for ch in detail) for detail in details)


# --- no data ----------------------------------------------------------------------------------


def test_no_fresh_good_reading_is_no_data(site: Site, owner_engine: Engine) -> None:
    stale = site.asset("P-STALE")
    site.signal(stale, "vibration_rms", "P-STALE.VIB")
    site.steady("P-STALE.VIB", 1.0, last_age=timedelta(minutes=11))
    bad_newest = site.asset("P-BAD")
    site.signal(bad_newest, "vibration_rms", "P-BAD.VIB")
    site.steady("P-BAD.VIB", 3.5, last_age=timedelta(minutes=9))  # zone C, 9 minutes ago
    site.write("P-BAD.VIB", [(site.now - timedelta(minutes=1), 0.1, "bad")])
    unmapped = site.asset("P-NONE")

    site.run_pass()

    for asset_id in (stale, unmapped):
        health = site.health(asset_id)
        assert (health["score"], health["band"], health["zone"]) == (None, "no_data", None)
        assert health["components"] == []
    assert site.health(bad_newest)["zone"] == "C"  # the bad reading is not the newest good one
    assert [score for _, score in stored_rows(owner_engine, stale)] == [None]


def test_a_source_that_is_down_gives_no_data_and_the_pass_goes_on(
    site: Site, session_factory: sessionmaker[Session]
) -> None:
    down = add_integration(session_factory, site.world.tenant.id, type="pi_web_api", name="down",
                           config={"base_url": closed_port_url(), "fallback": "synthetic"})
    cut_off = site.asset("P-DOWN")
    add_mapping(session_factory, site.world.tenant.id, asset_id=cut_off, integration_id=down,
                metric="vibration_rms", tag="PI:P-DOWN.VIB", unit="mm/s")
    fine = site.asset("P-FINE")
    site.signal(fine, "vibration_rms", "P-FINE.VIB")
    site.steady("P-FINE.VIB", 0.5)

    report = site.run_pass()

    assert report.failed_reads == 1
    # Its synthetic fallback is no reading of the plant: no score from made-up data.
    assert site.health(cut_off)["band"] == "no_data"
    assert site.health(fine)["zone"] == "A"


# --- what is stored: a trend, not a row a minute ------------------------------------------------


def test_rows_are_stored_when_the_score_moves_or_every_15_minutes(
    site: Site, owner_engine: Engine
) -> None:
    asset_id = site.asset("P-ROWS")
    site.signal(asset_id, "vibration_rms", "P-ROWS.VIB")
    start = site.now - timedelta(minutes=40)
    site.write("P-ROWS.VIB", [(start - i * STEP, 0.5, "good") for i in range(24)])
    minute = timedelta(minutes=1)

    site.run_pass(start)  # 0.5 mm/s: zone A
    site.run_pass(start + minute)  # the same score: nothing new
    site.run_pass(start + 4 * minute)  # still the same
    assert len(stored_rows(owner_engine, asset_id)) == 1

    site.write("P-ROWS.VIB", [(start + i * minute, 2.0, "good") for i in range(5, 22)])  # zone B
    site.run_pass(start + 6 * minute)  # the score moved
    site.run_pass(start + 20 * minute)  # 14 minutes on, the same score
    site.run_pass(start + 21 * minute)  # 15 minutes on: a row keeps the trend going
    site.run_pass(start + 32 * minute)  # the newest reading is 11 minutes old: no data
    rows = stored_rows(owner_engine, asset_id)
    assert [at - start for at, _ in rows] == [
        timedelta(0), 6 * minute, 21 * minute, 32 * minute
    ]
    scores = [score for _, score in rows]
    assert scores[0] is not None and scores[1] is not None and scores[0] > scores[1]
    assert scores[2] == scores[1] and scores[3] is None

    history = site.client.get(f"/api/assets/{asset_id}/health/history",
                              params={"hours": 1}, headers=site.headers)
    assert history.status_code == 200
    body = history.json()
    assert body["asset_id"] == asset_id
    assert [p["score"] for p in body["points"]] == scores
    assert [datetime.fromisoformat(p["timestamp"]) for p in body["points"]] == [
        at.replace(tzinfo=UTC) if at.tzinfo is None else at for at, _ in rows
    ]


def test_history_window_and_bad_hours(site: Site) -> None:
    asset_id = site.asset("P-HIST")
    site.signal(asset_id, "vibration_rms", "P-HIST.VIB")
    site.steady("P-HIST.VIB", 0.5, hours=30)
    site.run_pass(site.now - timedelta(hours=3))
    site.run_pass(site.now)

    def points(hours: int) -> list[dict[str, Any]]:
        response = site.client.get(f"/api/assets/{asset_id}/health/history",
                                   params={"hours": hours}, headers=site.headers)
        assert response.status_code == 200, response.text
        return response.json()["points"]

    assert len(points(1)) == 1 and len(points(4)) == 2 and len(points(24)) == 2
    for hours in ("0", "721", "soon"):
        response = site.client.get(f"/api/assets/{asset_id}/health/history",
                                   params={"hours": hours}, headers=site.headers)
        assert response.status_code == 422
        assert "hours" in response.text


def test_an_assessment_nobody_renewed_is_not_health_now(site: Site) -> None:
    asset_id = site.asset("P-OLD")
    site.signal(asset_id, "vibration_rms", "P-OLD.VIB")
    site.steady("P-OLD.VIB", 0.5, hours=2)
    never = site.health(asset_id)
    assert (never["score"], never["band"], never["computed_at"]) == (None, "no_data", None)

    site.run_pass(site.now - timedelta(minutes=21))
    recent = site.asset("P-RECENT")
    site.signal(recent, "vibration_rms", "P-RECENT.VIB")
    site.steady("P-RECENT.VIB", 0.5, hours=2)
    # P-OLD's steady score is not stored again yet (15 minutes); P-RECENT gets its first row.
    site.run_pass(site.now - timedelta(minutes=19))  # and no pass since (no scanner leading)

    old = site.health(asset_id)
    assert (old["score"], old["band"]) == (None, "no_data")
    assert old["computed_at"] is not None
    # A steady score is written every 15 minutes: a row 19 minutes old is still current.
    assert site.health(recent)["score"] is not None


# --- the twin's asset list ---------------------------------------------------------------------


def test_twin_assets_carry_health(site: Site) -> None:
    calm = site.asset("P-CALM")
    site.signal(calm, "vibration_rms", "P-CALM.VIB")
    site.steady("P-CALM.VIB", 0.5)
    rough = site.asset("P-ROUGH")
    site.signal(rough, "vibration_rms", "P-ROUGH.VIB")
    site.steady("P-ROUGH.VIB", 5.0)  # zone D of group 2 rigid
    site.run_pass()

    listed = site.client.get("/api/twins/assets", headers=site.headers)
    assert listed.status_code == 200
    by_id = {a["id"]: a for a in listed.json()["assets"]}
    assert by_id[calm]["health_band"] == "good" and by_id[calm]["health_score"] >= 85
    assert by_id[rough]["health_band"] == "danger" and by_id[rough]["health_score"] < 40
    never = site.world.assets[0].id  # tenant A's own assets, never assessed
    assert (by_id[never]["health_score"], by_id[never]["health_band"]) == (None, "no_data")
    assert {"machine_group", "foundation", "code", "name"} <= set(by_id[calm])


# --- tenants -----------------------------------------------------------------------------------


def test_another_tenants_asset_health_is_a_plain_404(
    site: Site, tenant_b: TenantWorld, session_factory: sessionmaker[Session],
    owner_engine: Engine,
) -> None:
    b_asset = tenant_b.assets[0].id
    b_integration = add_integration(session_factory, tenant_b.tenant.id, type="sql", name="b",
                                    config={"url": site.historian.url.render_as_string(),
                                            "table": "historian"})
    add_mapping(session_factory, tenant_b.tenant.id, asset_id=b_asset,
                integration_id=b_integration, metric="vibration_rms", tag="B.VIB", unit="mm/s")
    site.steady("B.VIB", 5.0)
    site.run_pass()
    assert len(stored_rows(owner_engine, b_asset)) == 1  # tenant B has a health of its own
    events_before = len(events(owner_engine))
    missing = b_asset + 10_000

    for path in ("/api/assets/{id}/health", "/api/assets/{id}/health/history"):
        foreign = site.client.get(path.format(id=b_asset), headers=site.headers)
        absent = site.client.get(path.format(id=missing), headers=site.headers)
        assert foreign.status_code == absent.status_code == 404
        assert foreign.json()["detail"] == f"Asset {b_asset} not found"
    listed = site.client.get("/api/twins/assets", headers=site.headers).json()["assets"]
    assert b_asset not in {a["id"] for a in listed}
    assert len(events(owner_engine)) == events_before
