"""/trends (DESIGN.md §18 "Trends an operator can trust"), both backends, read through the
data-role hooks: several pens on one time axis, each on its own engineering range (configured,
from its alarm limits, from its 7-day history), compared windows, 422 for pens that cannot
make a trend, 404 for another tenant's asset with nothing recorded, one SENSOR event per pen
read, and a source that is down costing only its own pen.

Signals come from an SQLite historian table holding known values, so every expected range and
every drawn height is worked out here by hand."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from bs4 import BeautifulSoup, Tag
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import PASSWORD, TenantWorld, bearer_headers
from tests.connectors.fake_pi import PASSWORD as PI_PASSWORD
from tests.peers import (
    add_integration,
    add_mapping,
    closed_port_url,
    events,
    make_sql_historian,
    pi_config,
    utcnow,
)

HTMX = {"HX-Request": "true"}
PLANT_TZ = ZoneInfo("Asia/Riyadh")  # the worlds' tenants (conftest)


@dataclass
class Trend:
    client: TestClient
    world: TenantWorld
    engine: Engine
    vibration: str  # P-101 vibration_rms: configured range 0 … 10, reads 2.5 now
    temperature: str  # C-301 temperature: limits lo 20, hi 80, reads 68 now
    pressure: str  # P-101 pressure: neither; its 7-day history spans 3.2 … 7.9, reads 7 now
    ids: dict[str, int]  # mapping ids by metric


def pen(asset: Any, metric: str) -> str:
    return f"{asset.id}:{metric}"


@pytest.fixture
def trend(
    client: TestClient, owner_engine: Engine, session_factory: sessionmaker[Session],
    tenant_a: TenantWorld, tmp_path: Path,
) -> Trend:
    now = utcnow()
    rows = []
    for minutes in (5, 65, 125, 185):  # inside the last 8 hours
        at = now - timedelta(minutes=minutes)
        rows += [("P-101.VIB", at, 2.5, "good"), ("C-301.TEMP", at, 68.0, "good"),
                 ("P-101.PRES", at, 7.0, "good")]
    for minutes in (30, 90):  # the same hours one day earlier (compare=1d)
        rows += [("P-101.VIB", now - timedelta(days=1, minutes=minutes), 4.0, "good")]
    # Days ago, outside the charted window but inside the 7-day history.
    rows += [("P-101.PRES", now - timedelta(days=3), 3.2, "good"),
             ("P-101.PRES", now - timedelta(days=4), 7.9, "good"),
             ("C-301.TEMP", now - timedelta(days=3), 500.0, "good")]
    url = make_sql_historian(tmp_path / "historian.db", rows)
    tenant_id = tenant_a.tenant.id
    historian = add_integration(session_factory, tenant_id, type="sql", name="Historian",
                                config={"url": url, "table": "historian"})
    p101, c301 = tenant_a.assets
    ids = {
        metric: add_mapping(session_factory, tenant_id, asset_id=asset.id,
                            integration_id=historian, metric=metric, tag=tag, unit=unit)
        for asset, metric, tag, unit in (
            (p101, "vibration_rms", "P-101.VIB", "mm/s"),
            (c301, "temperature", "C-301.TEMP", "°C"),
            (p101, "pressure", "P-101.PRES", "bar"),
        )
    }
    engineer = bearer_headers(client, tenant_a.users["engineer"].email)
    patched = client.patch(f"/api/mappings/{ids['vibration_rms']}",
                           json={"range_low": 0, "range_high": 10}, headers=engineer)
    assert patched.status_code == 200, patched.text
    for level, threshold in (("lo", 20.0), ("hi", 80.0)):
        limit = client.post("/api/alarm-limits", headers=engineer, json={
            "mapping_id": ids["temperature"], "level": level, "threshold": threshold,
            "priority": "medium",
        })
        assert limit.status_code == 201, limit.text
    return Trend(client, tenant_a, owner_engine, pen(p101, "vibration_rms"),
                 pen(c301, "temperature"), pen(p101, "pressure"), ids)


def sign_in(client: TestClient, email: str) -> None:
    """Sign in through the form like a browser (GETs need no CSRF token)."""
    response = client.post("/login", data={"email": email, "password": PASSWORD},
                           follow_redirects=False)
    assert response.status_code == 303, response.text


def page(client: TestClient, *pens: str, headers: dict[str, str] | None = None,
         **params: str):  # type: ignore[no-untyped-def]
    return client.get("/trends", params={"pen": list(pens), **params}, headers=headers)


def soup(response) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    return BeautifulSoup(response.text, "html.parser")


def sensor_events(engine: Engine) -> list[dict[str, Any]]:
    return events(engine, category="SENSOR")


def lines(doc: BeautifulSoup, *, compare: str | None = None) -> list[Tag]:
    found = doc.select("svg[data-role=trend-chart] [data-role=pen]")
    return [g for g in found if g.get("data-compare") == compare]


def legend(doc: BeautifulSoup) -> dict[tuple[str, str], Tag]:
    box = doc.select_one("[data-role=pen-legend]")
    assert box is not None, "the chart has a legend"
    return {
        (entry["data-asset-id"], entry["data-metric"]): entry
        for entry in box.select("[data-role=pen-legend-entry]")
    }


def path_points(g: Tag) -> list[tuple[float, float]]:
    path = g.select_one("path")
    assert path is not None, "the pen is drawn"
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", path["d"])]


def plot_box(doc: BeautifulSoup) -> tuple[float, float, float, float]:
    plot = doc.select_one("svg[data-role=trend-chart] rect.chart-plot")
    return (float(plot["x"]), float(plot["y"]), float(plot["width"]), float(plot["height"]))


def key(pen_value: str) -> tuple[str, str]:
    asset_id, metric = pen_value.split(":")
    return asset_id, metric


# --- pens on their own ranges ----------------------------------------------------------------


def test_each_pen_is_drawn_on_its_own_engineering_range(trend: Trend) -> None:
    sign_in(trend.client, trend.world.users["viewer"].email)
    response = page(trend.client, trend.vibration, trend.temperature, trend.pressure)
    assert response.status_code == 200, response.text
    doc = soup(response)

    entries = legend(doc)
    assert list(entries) == [key(trend.vibration), key(trend.temperature), key(trend.pressure)]
    ranges = {
        pen_key: (float(e["data-range-low"]), float(e["data-range-high"]), e["data-range-source"])
        for pen_key, e in entries.items()
    }
    assert ranges[key(trend.vibration)] == (0.0, 10.0, "configured")
    # lo 20 … hi 80 widened by 10 % of their span (6) on each side; the 500 three days ago
    # does not stretch an axis that limits define.
    assert ranges[key(trend.temperature)] == pytest.approx((14.0, 86.0, "limits"))
    # 3.2 … 7.9 over the last 7 days, rounded out to steps of 1 (the window alone reads 7).
    assert ranges[key(trend.pressure)] == (3.0, 8.0, "history")

    # The legend says so in words: low – high and the unit.
    shown = {
        pen_key: (
            float(e.select_one("[data-role=pen-range-low]").get_text()),
            float(e.select_one("[data-role=pen-range-high]").get_text()),
            e.select_one("[data-role=pen-unit]").get_text(),
        )
        for pen_key, e in entries.items()
    }
    assert shown == {
        key(trend.vibration): (0.0, 10.0, "mm/s"),
        key(trend.temperature): (14.0, 86.0, "°C"),
        key(trend.pressure): (3.0, 8.0, "bar"),
    }
    for pen_key, entry in entries.items():
        assert entry.select_one("[data-role=pen-asset-code]").get_text() in ("P-101", "C-301")
        assert entry.select_one("[data-role=pen-metric]").get_text() in (
            "Vibration RMS", "Temperature", "Pressure"), pen_key
        assert entry.select_one("[data-role=pen-error]") is None

    # Each pen's steady reading sits at its own height: the bottom of the plot is its low,
    # the top its high.
    _x, top, _w, height = plot_box(doc)
    expected_fraction = {  # (high − value) / (high − low)
        key(trend.vibration): (10 - 2.5) / 10,
        key(trend.temperature): (86 - 68) / 72,
        key(trend.pressure): (8 - 7) / 5,
    }
    drawn = lines(doc)
    assert [(g["data-asset-id"], g["data-metric"]) for g in drawn] == list(entries)
    for g in drawn:
        points = path_points(g)
        assert len(points) == 4 == int(g["data-points"])
        wanted = top + expected_fraction[(g["data-asset-id"], g["data-metric"])] * height
        assert all(abs(y - wanted) <= 0.06 for _x, y in points), (g["data-metric"], points)
        xs = [x for x, _y in points]
        assert xs == sorted(xs), "time runs left to right"
    # Muted pen colours, one per pen, and a number beside each so colour is never alone.
    assert len({next(c for c in g["class"] if c.startswith("pen-")) for g in drawn}) == 3
    assert [t.get_text() for t in doc.select("[data-role=pen-tag]")] == ["1", "2", "3"]


def test_one_sensor_event_per_pen_read(trend: Trend) -> None:
    viewer = trend.world.users["viewer"]
    sign_in(trend.client, viewer.email)
    before = len(events(trend.engine))
    response = page(trend.client, trend.vibration, trend.temperature, trend.pressure)
    assert response.status_code == 200
    new = events(trend.engine)[before:]
    assert [e["event_category"] for e in new] == ["SENSOR"] * 3
    # The pens are read side by side: one event each, in whichever order the reads ended.
    assert sorted((e["asset_id"], e["payload"]["metric"]) for e in new) == sorted(
        (int(key(p)[0]), key(p)[1]) for p in (trend.vibration, trend.temperature, trend.pressure)
    )
    assert all(e["payload"]["user_id"] == viewer.id for e in new)
    assert [e["payload"]["points_count"] for e in new] == [4, 4, 4]

    # Compared windows are reads too: one more event each.
    before = len(events(trend.engine))
    assert page(trend.client, trend.vibration, trend.pressure, compare="1d").status_code == 200
    new = events(trend.engine)[before:]
    assert sorted((e["event_category"], e["payload"]["metric"]) for e in new) == [
        ("SENSOR", "pressure"), ("SENSOR", "pressure"),
        ("SENSOR", "vibration_rms"), ("SENSOR", "vibration_rms"),
    ]

    # A refresh of the chart block (htmx, once a minute) reads every pen again.
    before = len(events(trend.engine))
    assert page(trend.client, trend.vibration, headers=HTMX).status_code == 200
    assert [e["payload"]["metric"] for e in events(trend.engine)[before:]] == ["vibration_rms"]


def test_compare_overlays_the_same_window_a_day_earlier(trend: Trend) -> None:
    sign_in(trend.client, trend.world.users["viewer"].email)
    doc = soup(page(trend.client, trend.vibration, trend.temperature, compare="1d"))
    assert doc.select_one("[data-role=trend]")["data-compare"] == "1d"
    compared = lines(doc, compare="1d")
    assert [(g["data-asset-id"], g["data-metric"]) for g in compared] == [
        key(trend.vibration), key(trend.temperature)
    ]
    # Yesterday's two vibration readings of 4.0 lie on the same 0 … 10 range, within today's
    # window (shifted forward by a day); the temperature had none then.
    _x, top, _w, height = plot_box(doc)
    left, _t, width, _h = plot_box(doc)
    vibration, temperature = compared
    points = path_points(vibration)
    assert len(points) == 2 == int(vibration["data-points"])
    assert all(abs(y - (top + 0.6 * height)) <= 0.06 for _x, y in points)
    assert all(left <= x <= left + width for x, _y in points)
    assert int(temperature["data-points"]) == 0 and temperature.select_one("path") is None
    # Dashed, in the same colour as the pen it is compared with.
    live = {(g["data-asset-id"], g["data-metric"]): g for g in lines(doc)}
    for g in compared:
        assert "is-compare" in g["class"]
        colour = next(c for c in g["class"] if c.startswith("pen-"))
        assert colour in live[(g["data-asset-id"], g["data-metric"])]["class"]
    notes = [e.select_one("[data-role=pen-compare]") for e in legend(doc).values()]
    assert [n["data-compare"] for n in notes] == ["1d", "1d"]

    week = soup(page(trend.client, trend.vibration, compare="7d"))
    assert [g["data-compare"] for g in week.select("[data-role=pen][data-compare]")] == ["7d"]
    plain = soup(page(trend.client, trend.vibration))
    assert plain.select("[data-role=pen][data-compare]") == []


def test_time_axis_is_the_window_in_plant_time_left_to_right(trend: Trend) -> None:
    sign_in(trend.client, trend.world.users["viewer"].email)
    doc = soup(page(trend.client, trend.vibration))
    assert doc.select_one("[data-role=trend]")["data-range"] == "8h"  # the default window
    start_at, end_at = (
        datetime.fromisoformat(t["datetime"].replace("Z", "+00:00"))
        for t in doc.select("[data-role=trend-window] time")
    )
    assert end_at - start_at == timedelta(hours=8)
    assert abs(end_at - datetime.now(UTC)) < timedelta(minutes=1)
    labels = doc.select("svg[data-role=trend-chart] [data-axis=time]")
    xs = [float(label["x"]) for label in labels]
    assert xs == sorted(xs) and len(xs) >= 2
    assert labels[0].get_text() == start_at.astimezone(PLANT_TZ).strftime("%H:%M")
    assert labels[-1].get_text() == end_at.astimezone(PLANT_TZ).strftime("%H:%M")

    for chart_range, hours in (("24h", 24), ("7d", 168)):
        doc = soup(page(trend.client, trend.vibration, range=chart_range))
        start_at, end_at = (
            datetime.fromisoformat(t["datetime"].replace("Z", "+00:00"))
            for t in doc.select("[data-role=trend-window] time")
        )
        assert end_at - start_at == timedelta(hours=hours), chart_range
        first = doc.select_one("svg[data-role=trend-chart] [data-axis=time]").get_text()
        assert re.fullmatch(r"\d{1,2} \w+ \d{2}:\d{2}", first), first  # 24-hour, with the date

    # The latest 100 readings: all six (yesterday's two as well), the axis from the oldest.
    last_100 = soup(page(trend.client, trend.vibration, range="100"))
    assert int(lines(last_100)[0]["data-points"]) == 6
    start_at = datetime.fromisoformat(
        last_100.select_one("[data-role=trend-window] time")["datetime"].replace("Z", "+00:00")
    )
    assert timedelta(days=1, minutes=89) <= utcnow() - start_at <= timedelta(days=1, minutes=91)


def test_the_chart_refreshes_itself_unless_the_window_is_custom(trend: Trend) -> None:
    sign_in(trend.client, trend.world.users["viewer"].email)
    doc = soup(page(trend.client, trend.vibration, trend.pressure))
    slot = doc.select_one("#trend-chart")
    assert slot["hx-get"] == f"/trends?pen={trend.vibration}&pen={trend.pressure}"
    assert slot["hx-trigger"] == "every 60000ms"  # once a minute: each refresh reads every pen
    fragment = page(trend.client, trend.vibration, trend.pressure, headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert len(lines(soup(fragment))) == 2
    assert "HX-Request" in fragment.headers["Vary"]

    end = utcnow().replace(microsecond=0)
    custom = soup(page(trend.client, trend.vibration, range="custom",
                       from_time=(end - timedelta(hours=2)).isoformat(),
                       to_time=end.isoformat()))
    assert custom.select_one("[data-role=trend]")["data-live"] == "false"
    assert not custom.select_one("#trend-chart").has_attr("hx-trigger")
    assert int(lines(custom)[0]["data-points"]) == 2  # 5 and 65 minutes before the end


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({}, "pen"),
        ({"pen": ["P-101"]}, "pen"),
        ({"pen": ["1:"]}, "pen"),
        ({"pen": ["abc:temperature"]}, "pen"),
        ({"pen": ["1:Temperature"]}, "pen"),
        ({"pen": ["0:temperature"]}, "pen"),
        ({"pen": ["99999999999:temperature"]}, "pen"),
        ({"pen": ["1:a", "1:a"]}, "pen"),
        ({"pen": [f"1:m{i}" for i in range(9)]}, "pen"),
        ({"pen": ["1:a"], "compare": "2d"}, "compare"),
        ({"pen": ["1:a"], "range": "1h"}, "range"),
        ({"pen": ["1:a"], "range": "custom"}, "from_time"),
        ({"pen": ["1:a"], "range": "24h", "from_time": "2026-01-01T00:00:00Z"}, "from_time"),
        ({"pen": ["1:a"], "range": "custom", "from_time": "2026-01-02T00:00:00Z",
          "to_time": "2026-01-01T00:00:00Z"}, "from_time"),
    ],
)
def test_pens_that_cannot_make_a_trend_are_422_naming_the_problem(
    client: TestClient, owner_engine: Engine, tenant_a: TenantWorld,
    params: dict[str, Any], named: str,
) -> None:
    sign_in(client, tenant_a.users["viewer"].email)
    before = events(owner_engine)
    response = client.get("/trends", params=params)
    assert response.status_code == 422, response.text
    assert named in response.text
    assert events(owner_engine) == before, "a refused trend reads and records nothing"


def test_problems_are_named_in_words_and_the_form_stays(trend: Trend) -> None:
    sign_in(trend.client, trend.world.users["viewer"].email)
    cases = {
        ("x",): "malformed",
        (trend.vibration, trend.vibration): "listed twice",
        tuple(f"{i}:m" for i in range(1, 10)): "at most 8 pens",
    }
    for pens, words in cases.items():
        doc = soup(page(trend.client, *pens))
        message = doc.select_one("[data-role=error-message]")
        assert message["data-status"] == "422" and message["data-parameter"] == "pen"
        assert words in message.get_text(" ", strip=True)
        assert doc.select_one("[data-role=pen-form] select[name=pen]") is not None

    # The navigation's plain /trends is a start, not a mistake: a calm prompt and the form.
    start = page(trend.client)
    doc = soup(start)
    assert start.status_code == 422
    prompt = doc.select_one("[data-role=error-message]")
    assert prompt["data-parameter"] == "pen" and "alert-error" not in prompt["class"]
    options = doc.select("[data-role=pen-form] select[name=pen] option[value]")
    assert {o["value"] for o in options} - {""} == {
        trend.vibration, trend.temperature, trend.pressure
    }


def test_another_tenants_or_unknown_asset_or_metric_is_404_with_no_event(
    trend: Trend, session_factory: sessionmaker[Session], tenant_b: TenantWorld,
    tmp_path: Path,
) -> None:
    url = make_sql_historian(tmp_path / "b.db", [("B.VIB", utcnow(), 50.0, "good")])
    integration = add_integration(session_factory, tenant_b.tenant.id, type="sql", name="h",
                                  config={"url": url, "table": "historian"})
    add_mapping(session_factory, tenant_b.tenant.id, asset_id=tenant_b.assets[0].id,
                integration_id=integration, metric="vibration_rms", tag="B.VIB")
    foreign = pen(tenant_b.assets[0], "vibration_rms")
    sign_in(trend.client, trend.world.users["viewer"].email)
    before = events(trend.engine)
    for pens in (
        (foreign,),
        (trend.vibration, foreign),  # found before any pen is read: nothing is read
        ("2000000000:vibration_rms",),
        (pen(trend.world.assets[1], "vibration_rms"),),  # C-301 maps no vibration
        (pen(trend.world.assets[0], "flow_rate"),),
    ):
        response = page(trend.client, *pens)
        assert response.status_code == 404, (pens, response.text)
        assert "B.VIB" not in response.text and "of TENANT_B" not in response.text
    assert events(trend.engine) == before
    # The same pen is fine for its own tenant.
    sign_in(trend.client, tenant_b.users["viewer"].email)
    assert page(trend.client, foreign).status_code == 200


# --- a source that is down ----------------------------------------------------------------------


def test_a_source_down_for_one_pen_shows_inline_and_the_others_draw(
    trend: Trend, session_factory: sessionmaker[Session],
) -> None:
    tenant_id = trend.world.tenant.id
    dead = add_integration(session_factory, tenant_id, type="pi", name="PI down",
                           config=pi_config(closed_port_url()))
    add_mapping(session_factory, tenant_id, asset_id=trend.world.assets[1].id,
                integration_id=dead, metric="flow_rate", tag="PI:C-301.FLOW", unit="m3/h")
    down = pen(trend.world.assets[1], "flow_rate")
    sign_in(trend.client, trend.world.users["viewer"].email)
    before = len(events(trend.engine))
    response = page(trend.client, trend.vibration, down, trend.pressure, compare="1d")
    assert response.status_code == 200, response.text
    doc = soup(response)

    entries = legend(doc)
    error = entries[key(down)].select_one("[data-role=pen-error]")
    assert error is not None and "unavailable" in error.get_text(" ", strip=True)
    assert entries[key(down)]["data-state"] == "unavailable"
    assert entries[key(down)].select_one("[data-role=pen-compare-error]") is not None
    for healthy in (trend.vibration, trend.pressure):
        assert entries[key(healthy)].select_one("[data-role=pen-error]") is None
    drawn = {(g["data-asset-id"], g["data-metric"]): g for g in lines(doc)}
    assert drawn[key(down)]["data-state"] == "unavailable"
    assert drawn[key(down)].select_one("path") is None
    assert len(path_points(drawn[key(trend.vibration)])) == 4
    assert len(path_points(drawn[key(trend.pressure)])) == 4

    new = events(trend.engine)[before:]
    sensor = sorted(e["payload"]["metric"] for e in new if e["event_category"] == "SENSOR")
    assert sensor == ["pressure", "pressure", "vibration_rms", "vibration_rms"]
    warnings = [e for e in new if e["event_category"] == "CONNECTOR"]
    assert [w["payload"]["metric"] for w in warnings] == ["flow_rate", "flow_rate"]
    assert PI_PASSWORD not in response.text


# --- the form, the links, the languages ---------------------------------------------------------


def test_pens_are_added_and_removed_with_plain_links_and_a_form(trend: Trend) -> None:
    sign_in(trend.client, trend.world.users["viewer"].email)
    doc = soup(page(trend.client, trend.vibration, trend.temperature, compare="1d"))
    form = doc.select_one("form[data-role=pen-form]")
    assert form["method"] == "get" and form["action"] == "/trends"
    hidden = [(i["name"], i["value"]) for i in form.select("input[type=hidden]")]
    assert hidden == [("pen", trend.vibration), ("pen", trend.temperature), ("compare", "1d")]
    options = {o["value"]: o for o in form.select("select[name=pen] option") if o["value"]}
    assert set(options) == {trend.vibration, trend.temperature, trend.pressure}
    assert options[trend.vibration].has_attr("disabled")
    assert not options[trend.pressure].has_attr("disabled")
    assert form.select_one("button[type=submit][data-role=add-pen]") is not None

    # Submitting the form is a GET with one more pen.
    added = page(trend.client, trend.vibration, trend.temperature, trend.pressure, compare="1d")
    assert len(lines(soup(added))) == 3

    removes = {item["data-pen"]: item.select_one("[data-role=remove-pen]")
               for item in doc.select("[data-role=pen-item]")}
    assert removes[trend.vibration]["href"] == f"/trends?pen={trend.temperature}&compare=1d"
    assert removes[trend.temperature]["href"] == f"/trends?pen={trend.vibration}&compare=1d"
    assert trend.client.get(removes[trend.vibration]["href"]).status_code == 200
    lone = soup(page(trend.client, trend.vibration))
    assert lone.select("[data-role=remove-pen]") == []  # the last pen stays

    links = {a["data-range"]: a["href"] for a in doc.select("[data-role=range-switch] a")}
    assert links["24h"] == (
        f"/trends?pen={trend.vibration}&pen={trend.temperature}&range=24h&compare=1d"
    )
    assert trend.client.get(links["7d"]).status_code == 200


def test_the_metric_view_opens_its_pen_in_trends(trend: Trend) -> None:
    sign_in(trend.client, trend.world.users["viewer"].email)
    asset_id, metric = key(trend.pressure)
    view = soup(trend.client.get(f"/twins/assets/{asset_id}/metrics/{metric}", headers=HTMX))
    link = view.select_one("[data-role=open-trends]")
    assert link is not None and link["href"] == f"/trends?pen={trend.pressure}"
    opened = soup(trend.client.get(link["href"]))
    assert [(g["data-asset-id"], g["data-metric"]) for g in lines(opened)] == [(asset_id, metric)]
    nav = [a["href"] for a in opened.select("nav.main-nav a")]
    assert "/trends" in nav
    assert opened.select_one("nav.main-nav a[aria-current=page]")["href"] == "/trends"


def test_arabic_keeps_time_left_to_right_and_codes_isolated(trend: Trend) -> None:
    sign_in(trend.client, trend.world.users["viewer"].email)
    doc = soup(page(trend.client, trend.vibration, trend.temperature, lang="ar"))
    assert doc.html["dir"] == "rtl"
    svg = doc.select_one("svg[data-role=trend-chart]")
    assert svg["direction"] == "ltr"
    xs = [float(label["x"]) for label in svg.select("[data-axis=time]")]
    assert xs == sorted(xs)
    for entry in legend(doc).values():
        assert entry.select_one("[data-role=pen-asset-code]").name == "bdi"
        assert entry.select_one("[data-role=pen-unit]").name == "bdi"
    assert doc.select_one("h1").get_text() != "Trends", "the heading is translated"
