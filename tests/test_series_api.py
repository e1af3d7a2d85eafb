"""GET /api/twins/assets/{id}/metrics and .../metrics/{metric}/series (DESIGN.md §5, §8).

Expected values are computed from the sources themselves: the demo connector's pure function
`demo_values(tag, t)` and SQL historian tables the tests write. Every test runs on SQLite and
PostgreSQL (the app's database); the historians are SQLite files either way.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import PASSWORD, TenantWorld, bearer_headers
from tests.peers import (
    MINUTE,
    MINUTE_NS,
    add_integration,
    add_mapping,
    closed_port_url,
    floor_minute,
    iso,
    make_sql_historian,
    minute_range,
    pi_config,
    response_ns,
    same_floats,
    served,
    silent_port,
    utcnow,
)
from webapp.connectors.demo import demo_values
from webapp.series import datetime_to_ns

TAG = "PI:P-101.VIB"
METRIC = "vibration_rms"
TIMEOUT = 2.0  # test_settings' connector_timeout_seconds


@dataclass
class Demo:
    world: TenantWorld
    asset_id: int
    integration_id: int
    mapping_id: int
    headers: dict[str, str]
    metric: str = METRIC

    def url(self, metric: str = METRIC, asset_id: int | None = None) -> str:
        return f"/api/twins/assets/{asset_id or self.asset_id}/metrics/{metric}/series"


@pytest.fixture
def demo(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> Demo:
    tenant_id, asset_id = tenant_a.tenant.id, tenant_a.assets[0].id
    integration_id = add_integration(
        session_factory, tenant_id, type="demo", name="Demo source", config={}
    )
    mapping_id = add_mapping(
        session_factory, tenant_id, asset_id=asset_id, integration_id=integration_id,
        metric=METRIC, tag=TAG, unit="mm/s",
    )
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    return Demo(tenant_a, asset_id, integration_id, mapping_id, headers)


def get_series(client: TestClient, demo: Demo, **params: Any) -> dict[str, Any]:
    response = client.get(demo.url(), params=params, headers=demo.headers)
    assert response.status_code == 200, response.text
    return response.json()


def values_of(body: dict[str, Any]) -> list[float | None]:
    return [point["value"] for point in body["points"]]


def assert_demo_points(body: dict[str, Any], expected_ns: np.ndarray, tag: str = TAG) -> None:
    """Timestamps exactly `expected_ns`; values exactly the demo source's; all good quality."""
    got_ns = response_ns(body["points"])
    np.testing.assert_array_equal(got_ns, expected_ns)
    assert same_floats(values_of(body), demo_values(tag, expected_ns).tolist())
    assert {point["quality"] for point in body["points"]} <= {"good"}
    assert {point["unit"] for point in body["points"]} <= {body["unit"]}


def past_minute(hours_ago: int = 3) -> datetime:
    """A whole minute safely in the past."""
    return floor_minute(utcnow()) - timedelta(hours=hours_ago)


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_lists_active_mappings_on_active_integrations_in_mapping_id_order(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    tenant_id, asset_id = tenant_a.tenant.id, tenant_a.assets[0].id
    demo_id = add_integration(session_factory, tenant_id, type="demo", name="d", config={})
    sql_id = add_integration(
        session_factory, tenant_id, type="sql", name="h",
        config={"url": "sqlite:////nonexistent/h.db", "table": "historian"},
    )
    dead_id = add_integration(
        session_factory, tenant_id, type="demo", name="retired", config={}, is_active=False
    )
    # Created in non-alphabetical order: the list must follow mapping ids, not names.
    arranged = [
        ("temperature", "PI:P-101.TEMP", "°C", demo_id, True),
        ("pressure", "PI:P-101.PRES", "bar", demo_id, False),  # inactive mapping
        ("flow_rate", "HIST.FLOW", "m³/h", sql_id, True),
        ("power", "PI:P-101.POWER", "kW", dead_id, True),  # inactive integration
        ("axial_vibration", "PI:P-101.AX", None, demo_id, True),
    ]
    types = {demo_id: "demo", sql_id: "sql", dead_id: "demo"}
    for metric, tag, unit, integration_id, active in arranged:
        add_mapping(
            session_factory, tenant_id, asset_id=asset_id, integration_id=integration_id,
            metric=metric, tag=tag, unit=unit, is_active=active,
        )
    # Another asset's mapping is not this asset's metric.
    add_mapping(
        session_factory, tenant_id, asset_id=tenant_a.assets[1].id, integration_id=demo_id,
        metric="vibration_rms", tag="PI:C-301.VIB", unit="mm/s",
    )
    headers = bearer_headers(client, tenant_a.users["viewer"].email)

    response = client.get(f"/api/twins/assets/{asset_id}/metrics", headers=headers)

    assert response.status_code == 200, response.text
    listed = [row for row in arranged if row[4] and row[3] != dead_id]
    assert response.json() == {
        "asset_id": asset_id,
        "metrics": [metric for metric, *_ in listed],
        "details": [
            {"name": metric, "unit": unit, "external_tag": tag, "integration_type": types[iid]}
            for metric, tag, unit, iid, _active in listed
        ],
    }


def test_metrics_of_an_unmapped_asset_is_an_empty_list(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    asset_id = tenant_a.assets[1].id
    response = client.get(f"/api/twins/assets/{asset_id}/metrics", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"asset_id": asset_id, "metrics": [], "details": []}


def test_metrics_of_an_unknown_asset_is_404_and_a_bad_id_422(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    for asset_id, status in (("999999", 404), (str(2**31 - 1), 404), ("0", 422),
                             (str(2**31), 422), ("P-101", 422)):
        response = client.get(f"/api/twins/assets/{asset_id}/metrics", headers=headers)
        assert response.status_code == status, asset_id


# --- raw windows -----------------------------------------------------------------------------


def test_default_is_the_latest_100_minutes_at_or_before_now(
    client: TestClient, demo: Demo
) -> None:
    before = utcnow()
    body = get_series(client, demo)
    after = utcnow()

    assert {k: body[k] for k in ("asset_id", "metric", "unit", "source", "integration_type",
                                  "mode", "truncated")} == {
        "asset_id": demo.asset_id, "metric": METRIC, "unit": "mm/s", "source": "live",
        "integration_type": "demo", "mode": "raw", "truncated": True,  # the demo never ends
    }
    assert len(body["points"]) == 100
    got = response_ns(body["points"])
    # The newest point is the last whole minute at or before the request's "now".
    assert datetime_to_ns(floor_minute(before)) <= got[-1] <= datetime_to_ns(after)
    assert got[-1] % MINUTE_NS == 0
    expected = got[-1] - np.arange(99, -1, -1, dtype=np.int64) * MINUTE_NS
    assert_demo_points(body, expected)
    assert all(point["timestamp"].endswith(":00Z") for point in body["points"])


def test_window_ends_on_whole_minutes_are_both_included(client: TestClient, demo: Demo) -> None:
    start = past_minute()
    end = start + 30 * MINUTE
    body = get_series(client, demo, from_time=iso(start), to_time=iso(end))
    assert_demo_points(body, minute_range(start, end))
    assert len(body["points"]) == 31 and body["truncated"] is False


def test_window_ends_between_minutes_keep_only_the_minutes_inside(
    client: TestClient, demo: Demo
) -> None:
    start = past_minute()
    body = get_series(
        client, demo, from_time=iso(start + timedelta(seconds=30)),
        to_time=iso(start + 5 * MINUTE + timedelta(seconds=30)),
    )
    assert_demo_points(body, minute_range(start + MINUTE, start + 5 * MINUTE))


def test_raw_limit_keeps_the_latest_points_of_the_window(client: TestClient, demo: Demo) -> None:
    start = past_minute()
    end = start + 30 * MINUTE
    body = get_series(client, demo, from_time=iso(start), to_time=iso(end), limit=7)
    assert_demo_points(body, minute_range(end - 6 * MINUTE, end))
    assert body["truncated"] is True

    exact = get_series(client, demo, from_time=iso(start), to_time=iso(end), limit=31)
    assert_demo_points(exact, minute_range(start, end))
    assert exact["truncated"] is False  # nothing more existed


def test_to_time_without_from_time_gives_the_latest_points_at_or_before_it(
    client: TestClient, demo: Demo
) -> None:
    end = past_minute()
    body = get_series(client, demo, to_time=iso(end), limit=12)
    assert_demo_points(body, minute_range(end - 11 * MINUTE, end))
    assert body["truncated"] is True


def test_naive_timestamps_mean_utc(client: TestClient, demo: Demo) -> None:
    start = past_minute()
    end = start + 10 * MINUTE
    riyadh = timezone(timedelta(hours=3))
    spellings = [
        (start.strftime("%Y-%m-%dT%H:%M:%S"), end.strftime("%Y-%m-%dT%H:%M:%S")),  # naive
        (start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")),
        (start.isoformat(), end.isoformat()),  # +00:00
        (start.astimezone(riyadh).isoformat(), end.astimezone(riyadh).isoformat()),  # +03:00
    ]
    bodies = [get_series(client, demo, from_time=f, to_time=t) for f, t in spellings]
    assert_demo_points(bodies[0], minute_range(start, end))
    assert all(body == bodies[0] for body in bodies[1:])


def test_to_time_in_the_future_is_clamped_to_now(client: TestClient, demo: Demo) -> None:
    start = floor_minute(utcnow()) - 5 * MINUTE
    before = utcnow()
    body = get_series(
        client, demo, from_time=iso(start), to_time=iso(utcnow() + timedelta(days=2))
    )
    after = utcnow()
    got = response_ns(body["points"])
    assert got[0] == datetime_to_ns(start)
    assert datetime_to_ns(floor_minute(before)) <= got[-1] <= datetime_to_ns(after)
    assert_demo_points(body, np.arange(got[0], got[-1] + 1, MINUTE_NS, dtype=np.int64))


def test_a_window_wholly_after_now_is_200_without_points(client: TestClient, demo: Demo) -> None:
    later = utcnow() + timedelta(hours=1)
    for mode in ("raw", "plot"):
        body = get_series(
            client, demo, from_time=iso(later), to_time=iso(later + timedelta(hours=1)), mode=mode
        )
        assert body["points"] == [] and body["truncated"] is False and body["mode"] == mode


def test_a_window_of_exactly_366_days_is_allowed(client: TestClient, demo: Demo) -> None:
    end = past_minute()
    body = get_series(
        client, demo, from_time=iso(end - timedelta(days=366)), to_time=iso(end), limit=5
    )
    assert_demo_points(body, minute_range(end - 4 * MINUTE, end))


BAD_PARAMETERS: list[tuple[dict[str, str], str]] = [
    ({"from_time": "2026-11-02T00:00:00Z", "to_time": "2026-11-01T00:00:00Z"}, "from_time"),
    ({"from_time": "2025-01-01T00:00:00Z", "to_time": "2026-01-03T00:00:00Z"}, "from_time"),
    ({"from_time": "yesterday"}, "from_time"),
    ({"to_time": "2026-13-01T00:00:00"}, "to_time"),
    ({"limit": "0"}, "limit"),
    ({"limit": "10001"}, "limit"),
    ({"limit": "abc"}, "limit"),
    ({"limit": "-5"}, "limit"),
    ({"mode": "bogus"}, "mode"),
    ({"mode": "plot", "limit": "2"}, "limit"),
    # Dates that overflow once converted to UTC, or that no plant history can hold.
    ({"to_time": "9999-12-31T23:59:59-05:00"}, "to_time"),
    ({"from_time": "0001-01-01T00:00:00+01:00"}, "from_time"),
    ({"to_time": "0001-01-01T00:00:00", "mode": "plot"}, "to_time"),
    ({"from_time": "1800-01-01T00:00:00Z"}, "from_time"),
]


def test_bad_parameters_are_422_naming_the_parameter(client: TestClient, demo: Demo) -> None:
    for params, culprit in BAD_PARAMETERS:
        response = client.get(demo.url(), params=params, headers=demo.headers)
        assert response.status_code == 422, (params, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, list) and detail
        assert any(error["loc"][-1] == culprit for error in detail), (params, detail)
        assert all(error["msg"] for error in detail)


def test_the_limit_bounds_are_inclusive(client: TestClient, demo: Demo) -> None:
    end = past_minute()
    one = get_series(client, demo, to_time=iso(end), limit=1)
    assert_demo_points(one, minute_range(end, end))
    most = get_series(client, demo, to_time=iso(end), limit=10000)
    assert_demo_points(most, minute_range(end - 9999 * MINUTE, end))


# --- plot mode -------------------------------------------------------------------------------


def extremes_ns(tag: str, window_ns: np.ndarray) -> tuple[int, int]:
    values = demo_values(tag, window_ns)
    return int(window_ns[np.argmin(values)]), int(window_ns[np.argmax(values)])


def test_plot_defaults_to_the_last_24_hours_and_keeps_the_global_extremes(
    client: TestClient, demo: Demo
) -> None:
    before = utcnow()
    body = get_series(client, demo, mode="plot", limit=60)
    after = utcnow()

    assert body["mode"] == "plot" and body["truncated"] is True
    got = response_ns(body["points"])
    assert 3 <= len(got) <= 60
    assert np.all(np.diff(got) > 0), "ascending, no repeats"
    # The window's ends are kept: its last whole minute at or before now, and 24 h before now.
    assert datetime_to_ns(floor_minute(before)) <= got[-1] <= datetime_to_ns(after)
    assert got[-1] - got[0] in (1439 * MINUTE_NS, 1440 * MINUTE_NS)
    window = np.arange(got[0], got[-1] + 1, MINUTE_NS, dtype=np.int64)
    low, high = extremes_ns(TAG, window)
    assert low in got and high in got
    # Every point shown is a real sample of the source, not an average.
    assert same_floats(values_of(body), demo_values(TAG, got).tolist())


def test_plot_of_an_explicit_window_stays_within_the_limit_and_keeps_extremes(
    client: TestClient, demo: Demo
) -> None:
    end = past_minute()
    start = end - timedelta(days=3)
    low, high = extremes_ns(TAG, minute_range(start, end))
    for limit in (3, 4, 500):
        body = get_series(client, demo, mode="plot", limit=limit, from_time=iso(start),
                          to_time=iso(end))
        got = response_ns(body["points"])
        assert len(got) <= limit and body["truncated"] is True, limit
        assert np.all(np.diff(got) > 0)
        assert low in got and high in got, limit
        assert same_floats(values_of(body), demo_values(TAG, got).tolist())
        if limit >= 4:
            assert got[0] == datetime_to_ns(start) and got[-1] == datetime_to_ns(end)


def test_plot_of_a_window_with_at_most_limit_points_is_returned_whole(
    client: TestClient, demo: Demo
) -> None:
    start = past_minute()
    end = start + 20 * MINUTE  # 21 points
    for limit in (21, 26):  # exactly the window, and more than it
        body = get_series(client, demo, mode="plot", limit=limit, from_time=iso(start),
                          to_time=iso(end))
        assert_demo_points(body, minute_range(start, end))
        assert body["truncated"] is False, f"nothing was downsampled (limit {limit})"


def test_plot_of_a_window_one_point_over_the_limit_is_downsampled(
    client: TestClient, demo: Demo
) -> None:
    start = past_minute()
    end = start + 20 * MINUTE  # 21 points
    body = get_series(client, demo, mode="plot", limit=20, from_time=iso(start), to_time=iso(end))
    got = response_ns(body["points"])
    assert len(got) <= 20 and body["truncated"] is True
    low, high = extremes_ns(TAG, minute_range(start, end))
    assert low in got and high in got


# --- values: scaling and exactness -----------------------------------------------------------


def test_scaling_factor_and_offset_are_applied(
    client: TestClient, session_factory: sessionmaker[Session], demo: Demo
) -> None:
    factor, offset = 0.0393700787, -1.25  # mm/s → in/s, then a calibration offset
    scaled_id = add_mapping(
        session_factory, demo.world.tenant.id, asset_id=demo.asset_id,
        integration_id=demo.integration_id, metric="vibration_ips", tag=TAG, unit="in/s",
        scaling_factor=factor, offset_value=offset,
    )
    assert scaled_id
    start = past_minute()
    end = start + 15 * MINUTE
    response = client.get(
        demo.url("vibration_ips"), params={"from_time": iso(start), "to_time": iso(end)},
        headers=demo.headers,
    )
    assert response.status_code == 200
    body = response.json()
    expected_ns = minute_range(start, end)
    raw = demo_values(TAG, expected_ns)
    np.testing.assert_array_equal(response_ns(body["points"]), expected_ns)
    assert same_floats(values_of(body), (raw * factor + offset).tolist())
    assert body["unit"] == "in/s" and {p["unit"] for p in body["points"]} == {"in/s"}
    # Same instants, unscaled mapping: the source's values exactly.
    plain = get_series(client, demo, from_time=iso(start), to_time=iso(end))
    assert same_floats(values_of(plain), raw.tolist())


def test_a_scaled_value_that_overflows_is_bad_not_a_500(
    client: TestClient,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    tmp_path: Path,
) -> None:
    """1e308 × 10 is not a float64: the point is bad (null), its neighbours keep their values."""
    base = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    rows = [("BIG", base, 1.0, "good"), ("BIG", base + MINUTE, 1e308, "good"),
            ("BIG", base + 2 * MINUTE, -2.0, "uncertain")]
    url = make_sql_historian(tmp_path / "big.db", rows)
    tenant_id, asset_id = tenant_a.tenant.id, tenant_a.assets[0].id
    integration_id = add_integration(
        session_factory, tenant_id, type="sql", name="h", config={"url": url, "table": "historian"}
    )
    add_mapping(
        session_factory, tenant_id, asset_id=asset_id, integration_id=integration_id,
        metric="scaled", tag="BIG", scaling_factor=10.0, offset_value=0.5,
    )
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    response = client.get(
        f"/api/twins/assets/{asset_id}/metrics/scaled/series",
        params={"from_time": iso(base), "to_time": iso(base + 2 * MINUTE)}, headers=headers,
    )
    assert response.status_code == 200, response.text
    points = response.json()["points"]
    assert [(p["value"], p["quality"]) for p in points] == [
        (1.0 * 10.0 + 0.5, "good"), (None, "bad"), (-2.0 * 10.0 + 0.5, "uncertain"),
    ]


@pytest.fixture
def historian_world(
    client: TestClient,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    tmp_path: Path,
) -> tuple[Demo, list[tuple[str, datetime, float | None, str | int | None]]]:
    """A SQL historian with awkward floats and every quality spelling, mapped unscaled."""
    base = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    values: list[tuple[float | None, str | int | None]] = [
        (0.1 + 0.2, "good"),  # 0.30000000000000004
        (1 / 3, None),  # NULL quality means good
        (2.718281828459045, 192),  # OPC DA good
        (-1e-310, "good"),  # a negative subnormal
        (5e-324, "good"),  # the smallest subnormal
        (1.7976931348623157e308, "good"),
        (123456789.12345679, "uncertain"),
        (42.5, 100),  # OPC DA uncertain
        (None, "bad"),
        (17.25, "bad"),  # a bad reading's number is not trusted
        (99.0, 0),  # OPC DA bad
        (-273.15, "GOOD "),  # labels are matched case/space-insensitively
    ]
    rows = [("HIST.P101.VIB", base + i * MINUTE, v, q) for i, (v, q) in enumerate(values)]
    rows.append(("HIST.OTHER", base + 3 * MINUTE, 1e9, "good"))  # another tag, same instant
    url = make_sql_historian(tmp_path / "historian.db", rows)
    tenant_id, asset_id = tenant_a.tenant.id, tenant_a.assets[0].id
    integration_id = add_integration(
        session_factory, tenant_id, type="sql", name="Plant historian",
        config={"url": url, "table": "historian"},
    )
    mapping_id = add_mapping(
        session_factory, tenant_id, asset_id=asset_id, integration_id=integration_id,
        metric=METRIC, tag="HIST.P101.VIB", unit="mm/s",
    )
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    return Demo(tenant_a, asset_id, integration_id, mapping_id, headers), rows[:-1]


def test_sql_historian_values_and_qualities_come_back_unchanged(
    client: TestClient, historian_world: tuple[Demo, list[Any]]
) -> None:
    world, rows = historian_world
    body = get_series(
        client, world, from_time=iso(rows[0][1]), to_time=iso(rows[-1][1]), limit=1000
    )
    assert body["source"] == "live" and body["integration_type"] == "sql"
    assert body["truncated"] is False
    expected_quality = [
        "good", "good", "good", "good", "good", "good", "uncertain", "uncertain",
        "bad", "bad", "bad", "good",
    ]
    assert [p["quality"] for p in body["points"]] == expected_quality
    assert [p["timestamp"] for p in body["points"]] == [
        ts.strftime("%Y-%m-%dT%H:%M:%SZ") for _, ts, _, _ in rows
    ]
    for point, (_, _, value, _), quality in zip(
        body["points"], rows, expected_quality, strict=True
    ):
        if quality == "bad":
            assert point["value"] is None
        else:
            assert point["value"] == value
            assert np.float64(point["value"]).tobytes() == np.float64(value).tobytes()


def test_sql_historian_limit_takes_the_newest_rows(
    client: TestClient, historian_world: tuple[Demo, list[Any]]
) -> None:
    world, rows = historian_world
    body = get_series(client, world, to_time=iso(rows[-1][1] + timedelta(days=1)), limit=3)
    assert body["truncated"] is True
    assert [p["timestamp"] for p in body["points"]] == [
        ts.strftime("%Y-%m-%dT%H:%M:%SZ") for _, ts, _, _ in rows[-3:]
    ]


# --- not found -------------------------------------------------------------------------------


def test_unknown_asset_or_metric_is_404(
    client: TestClient, session_factory: sessionmaker[Session], demo: Demo
) -> None:
    cases = [
        demo.url(asset_id=999_999),
        demo.url(asset_id=2**31 - 1),
        demo.url("temperature"),  # not mapped
        demo.url(asset_id=demo.world.assets[1].id),  # asset exists, metric mapped elsewhere
    ]
    for url in cases:
        response = client.get(url, headers=demo.headers)
        assert response.status_code == 404, (url, response.text)
        assert isinstance(response.json()["detail"], str)


def test_inactive_mapping_or_integration_is_404_until_reactivated(
    client: TestClient, demo: Demo
) -> None:
    admin = bearer_headers(client, demo.world.admin.email)
    assert client.get(demo.url(), headers=demo.headers).status_code == 200

    patch = client.patch(f"/api/mappings/{demo.mapping_id}", json={"is_active": False},
                         headers=admin)
    assert patch.status_code == 200
    assert client.get(demo.url(), headers=demo.headers).status_code == 404
    client.patch(f"/api/mappings/{demo.mapping_id}", json={"is_active": True}, headers=admin)
    assert client.get(demo.url(), headers=demo.headers).status_code == 200

    patch = client.patch(f"/api/integrations/{demo.integration_id}", json={"is_active": False},
                         headers=admin)
    assert patch.status_code == 200
    assert client.get(demo.url(), headers=demo.headers).status_code == 404
    listed = client.get(f"/api/twins/assets/{demo.asset_id}/metrics", headers=demo.headers)
    assert listed.json()["metrics"] == []
    client.patch(f"/api/integrations/{demo.integration_id}", json={"is_active": True},
                 headers=admin)
    assert client.get(demo.url(), headers=demo.headers).status_code == 200


# --- source failures -------------------------------------------------------------------------


def source_world(
    client: TestClient,
    session_factory: sessionmaker[Session],
    world: TenantWorld,
    integration_type: str,
    config: dict[str, Any],
    tag: str = TAG,
    metric: str = METRIC,
) -> Demo:
    tenant_id, asset_id = world.tenant.id, world.assets[0].id
    integration_id = add_integration(
        session_factory, tenant_id, type=integration_type, name="Flaky source", config=config
    )
    mapping_id = add_mapping(
        session_factory, tenant_id, asset_id=asset_id, integration_id=integration_id,
        metric=metric, tag=tag, unit="mm/s",
    )
    headers = bearer_headers(client, world.users["viewer"].email)
    return Demo(world, asset_id, integration_id, mapping_id, headers, metric)


def assert_503_naming_the_source(
    response: Any, integration_type: str, tag: str, metric: str = METRIC
) -> str:
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert metric in detail and tag in detail and integration_type in detail
    return detail


DEAD_SOURCES: list[tuple[str, Any, str, str]] = [
    ("pi", lambda tmp: pi_config(closed_port_url()), TAG, "unreachable"),
    ("sql", lambda tmp: {"url": f"sqlite:///{tmp}/no/such/dir/h.db", "table": "historian"},
     "T1", "SQL historian"),
    ("sql", lambda tmp: {"url": make_sql_historian(tmp / "h.db", []), "table": "missing"},
     "T1", "not found"),
]


def test_a_dead_source_is_503_with_a_clear_detail(
    client: TestClient,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    tmp_path: Path,
) -> None:
    """PI at a closed port; SQL at a missing database path; SQL without its table."""
    for integration_type, config_of, tag, reason in DEAD_SOURCES:
        world = source_world(
            client, session_factory, tenant_a, integration_type, config_of(tmp_path), tag,
            metric=f"m_{integration_type}_{reason.split()[0].lower()}",
        )
        for mode in ("raw", "plot"):
            started = time.monotonic()
            response = client.get(world.url(world.metric), params={"mode": mode},
                                  headers=world.headers)
            assert time.monotonic() - started < TIMEOUT + 1
            detail = assert_503_naming_the_source(response, integration_type, tag, world.metric)
            assert reason in detail, detail
            assert "s3cret" not in detail  # the PI password never shows


def test_a_sql_password_never_shows_in_the_503(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    port = closed_port_url().rsplit(":", 1)[1].split("/")[0]
    url = f"postgresql+psycopg2://reader:TopSecret42@127.0.0.1:{port}/historian"
    world = source_world(client, session_factory, tenant_a, "sql",
                         {"url": url, "table": "historian"}, "T1")
    response = client.get(world.url(), headers=world.headers)
    detail = assert_503_naming_the_source(response, "sql", "T1")
    # A URL is named scheme://host[:port]/database only (DESIGN.md §16): no user, no password.
    assert "TopSecret42" not in response.text and "reader" not in response.text
    assert f"postgresql://127.0.0.1:{port}/historian" in detail


def test_hanging_sources_are_503_within_the_timeout_and_pin_no_database_connection(
    app: FastAPI, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    """More concurrent reads of a silent peer (it accepts the connection, never answers) than
    the database pool holds: each ends in 503 within the timeout, and a healthy read during the
    hang answers at once. (The integrations suite uses the fake PI's slow mount.)"""
    tenant_id, asset_id = tenant_a.tenant.id, tenant_a.assets[0].id
    hanging = 20  # the app engine's pool holds 5 + 10 overflow connections
    with silent_port() as port:
        dead = add_integration(
            session_factory, tenant_id, type="pi", name="silent",
            config=pi_config(f"http://127.0.0.1:{port}/piwebapi"),
        )
        healthy = add_integration(session_factory, tenant_id, type="demo", name="d", config={})
        for metric, integration_id in ((METRIC, dead), ("healthy", healthy)):
            add_mapping(session_factory, tenant_id, asset_id=asset_id,
                        integration_id=integration_id, metric=metric, tag=TAG)
        base = f"/api/twins/assets/{asset_id}/metrics"

        async def scenario(base_url: str) -> tuple[list[tuple[int, float, Any]], float]:
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
                token = await http.post("/api/auth/token", data={
                    "username": tenant_a.users["viewer"].email, "password": PASSWORD,
                })
                headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

                async def timed(path: str) -> tuple[int, float, Any]:
                    started = time.monotonic()
                    response = await http.get(path, headers=headers)
                    return response.status_code, time.monotonic() - started, response.json()

                stuck = [asyncio.create_task(timed(f"{base}/{METRIC}/series"))
                         for _ in range(hanging)]
                await asyncio.sleep(0.5)  # every hanging read is now waiting on the peer
                status, healthy_elapsed, _ = await timed(f"{base}/healthy/series")
                assert status == 200
                return await asyncio.gather(*stuck), healthy_elapsed

        with served(app) as base_url:
            results, healthy_elapsed = asyncio.run(scenario(base_url))

    assert healthy_elapsed < 1.0, healthy_elapsed
    for status, elapsed, body in results:
        assert status == 503, body
        assert METRIC in body["detail"] and "did not answer" in body["detail"]
        assert TIMEOUT - 0.5 < elapsed < TIMEOUT + 1.0, elapsed


def test_a_config_the_connector_cannot_use_is_503_not_500(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    """Configs written before today's validation (or by hand) must not crash the series, nor
    may a connector's unexpected exception (a port out of range blows up inside the client)."""
    configs = [
        {"base_url": "ftp://x"},
        pi_config("http://127.0.0.1:99999/piwebapi"),
    ]
    for i, config in enumerate(configs):
        world = source_world(client, session_factory, tenant_a, "pi", config, metric=f"m{i}")
        response = client.get(world.url(world.metric), headers=world.headers)
        assert_503_naming_the_source(response, "pi", TAG, world.metric)


def test_a_dead_source_with_synthetic_fallback_answers_uncertain_fallback_points(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    world = source_world(
        client, session_factory, tenant_a, "pi",
        pi_config(closed_port_url(), fallback="synthetic"),
    )
    end = past_minute()
    start = end - 20 * MINUTE
    for mode in ("raw", "plot"):
        response = client.get(
            world.url(),
            params={"from_time": iso(start), "to_time": iso(end), "mode": mode, "limit": 100},
            headers=world.headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["source"] == "fallback" and body["integration_type"] == "pi"
        assert body["mode"] == mode and len(body["points"]) == 21
        assert {p["quality"] for p in body["points"]} == {"uncertain"}
        np.testing.assert_array_equal(response_ns(body["points"]), minute_range(start, end))
        assert all(isinstance(p["value"], float) for p in body["points"])
