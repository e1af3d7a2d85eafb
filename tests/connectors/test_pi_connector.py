"""PI Web API connector against a real HTTP server speaking PI Web API's JSON."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest

from webapp.connectors.base import ConnectorError
from webapp.connectors.pi_web_api import PIWebAPIConnector
from webapp.series import QUALITY_BAD, QUALITY_UNCERTAIN, ns_to_datetime

from .conftest import (
    END,
    LOOPBACK_PEERS,
    PI_COUNT,
    PIFixture,
    assert_series_equal,
    free_port,
    run,
    run_closing,
)

TAG = "PI:P-101.VIB"


@pytest.fixture
def connector(pi: PIFixture) -> Iterator[PIWebAPIConnector]:
    yield PIWebAPIConnector(pi.config(), timeout=2.0, egress=LOOPBACK_PEERS)


@pytest.fixture
def small_pages(pi: PIFixture) -> Iterator[int]:
    """Shrink the server's per-call cap so paging is exercised with little data."""
    pi.server.max_count_cap = 700
    yield 700
    pi.server.max_count_cap = 150_000


def recorded_calls(pi: PIFixture, since: int) -> list[dict[str, str]]:
    return [q for path, q in pi.server.requests[since:] if path.endswith("/recorded")]


def test_latest_n_points_are_exact_with_quality(
    pi: PIFixture, connector: PIWebAPIConnector
) -> None:
    series = run_closing(connector, connector.fetch_timeseries(TAG, None, END, limit=100))
    assert_series_equal(series, pi.expected.tail(100))
    # Questionable, Substituted → uncertain; Good=false and digital states → bad with NaN.
    assert series.quality[-10:-5].tolist() == [QUALITY_UNCERTAIN] * 2 + [QUALITY_BAD] * 3
    assert np.isnan(series.values[-8:-5]).all()


def test_window_is_inclusive_and_seven_digit_stamps_parse(
    pi: PIFixture, connector: PIWebAPIConnector
) -> None:
    ts = pi.expected.timestamps
    start, stop = ns_to_datetime(int(ts[2000])), ns_to_datetime(int(ts[2100]))  # whole seconds
    series = run_closing(connector, connector.fetch_timeseries(TAG, start, stop, limit=1000))
    assert_series_equal(series, pi.expected.window(int(ts[2000]), int(ts[2100])))
    assert len(series) == 101
    assert series.timestamps[1] % 1_000_000_000 == 123_456_700  # 100 ns kept


def test_latest_n_of_a_window_asks_newest_first_in_one_call(
    pi: PIFixture, connector: PIWebAPIConnector
) -> None:
    ts = pi.expected.timestamps
    before = len(pi.server.requests)
    series = run_closing(
        connector, connector.fetch_timeseries(TAG, ns_to_datetime(int(ts[0])), END, limit=5)
    )
    assert_series_equal(series, pi.expected.tail(5))
    (call,) = recorded_calls(pi, before)
    assert call["maxCount"] == "5"
    assert call["startTime"] > call["endTime"]  # reverse order request


def test_pages_past_the_per_call_cap(
    pi: PIFixture, connector: PIWebAPIConnector, small_pages: int
) -> None:
    connector.max_count_per_call = small_pages
    before = len(pi.server.requests)
    series = run_closing(connector, connector.fetch_timeseries(TAG, None, END, limit=2500))
    assert_series_equal(series, pi.expected.tail(2500))
    calls = recorded_calls(pi, before)
    assert len(calls) == 4
    assert all(int(c["maxCount"]) <= small_pages for c in calls)


def test_whole_history_when_window_holds_fewer_than_limit(
    pi: PIFixture, connector: PIWebAPIConnector, small_pages: int
) -> None:
    connector.max_count_per_call = small_pages
    series = run_closing(connector, connector.fetch_timeseries(TAG, None, END, limit=10_000))
    assert_series_equal(series, pi.expected)
    assert len(series) == PI_COUNT


def test_paging_across_repeated_timestamps_loses_and_repeats_nothing(
    pi: PIFixture, connector: PIWebAPIConnector
) -> None:
    connector.max_count_per_call = 3
    pi.server.max_count_cap = 3
    try:
        series = run_closing(
            connector, connector.fetch_timeseries("PI:P-101.DUP", None, END, limit=100)
        )
    finally:
        pi.server.max_count_cap = 150_000
    np.testing.assert_array_equal(series.timestamps, pi.dup_expected.timestamps)
    assert sorted(series.values.tolist()) == pi.dup_expected.values.tolist()


def test_web_id_is_resolved_once(pi: PIFixture) -> None:
    connector = PIWebAPIConnector(pi.config(), timeout=2.0, egress=LOOPBACK_PEERS)

    async def twice() -> None:
        await connector.fetch_latest(TAG)
        await connector.fetch_timeseries(TAG, None, END, limit=3)
        await connector.aclose()

    before = len(pi.server.requests)
    run(twice())
    lookups = [p for p, _ in pi.server.requests[before:] if p.endswith("/points")]
    assert len(lookups) == 1


def test_latest_value(pi: PIFixture, connector: PIWebAPIConnector) -> None:
    latest = run_closing(connector, connector.fetch_latest(TAG))
    assert_series_equal(latest, pi.expected.tail(1))


def test_plot_keeps_extremes_within_budget(pi: PIFixture, connector: PIWebAPIConnector) -> None:
    start = END - timedelta(hours=40)
    series = run_closing(connector, connector.fetch_plot(TAG, start, END, max_points=60))
    window = pi.expected.window(int(series.timestamps[0]), int(series.timestamps[-1]))
    assert len(series) == 60, "a reduced window fills the whole budget"
    assert np.all(np.diff(series.timestamps) > 0)
    assert np.nanmax(series.values) == np.nanmax(window.values)
    assert np.nanmin(series.values) == np.nanmin(window.values)
    # Every value is a real recorded value, bit for bit.
    index = np.searchsorted(pi.expected.timestamps, series.timestamps)
    np.testing.assert_array_equal(pi.expected.timestamps[index], series.timestamps)
    np.testing.assert_array_equal(pi.expected.quality[index], series.quality)


def test_unknown_tag_names_the_tag_and_pi_error(connector: PIWebAPIConnector) -> None:
    with pytest.raises(ConnectorError) as info:
        run_closing(connector, connector.fetch_timeseries("PI:NOPE.VIB", None, END))
    assert "'PI:NOPE.VIB'" in str(info.value)
    assert "PI Point not found" in str(info.value)


def test_bad_credentials(pi: PIFixture) -> None:
    connector = PIWebAPIConnector(pi.config(password="wrong"), timeout=2.0, egress=LOOPBACK_PEERS)
    with pytest.raises(ConnectorError, match="rejected the credentials") as info:
        run_closing(connector, connector.fetch_latest(TAG))
    assert "wrong" not in str(info.value)


def test_connection_check(pi: PIFixture, connector: PIWebAPIConnector) -> None:
    run_closing(connector, connector.test_connection())
    other = PIWebAPIConnector(pi.config(data_server="NOSUCH"), timeout=2.0, egress=LOOPBACK_PEERS)
    with pytest.raises(ConnectorError, match="'NOSUCH' not found"):
        run_closing(other, other.test_connection())


def assert_fails_fast(connector: PIWebAPIConnector, match: str, bound: float) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectorError, match=match):
        run_closing(connector, connector.fetch_timeseries(TAG, None, END))
    assert time.monotonic() - started < bound


def test_hanging_server_times_out(pi: PIFixture) -> None:
    connector = PIWebAPIConnector(
        pi.config(base_url=pi.server.url("slow")), timeout=0.5, egress=LOOPBACK_PEERS
    )
    assert_fails_fast(connector, r"did not answer within 0\.5 s", 1.5)


def test_garbage_answer_is_reported(pi: PIFixture) -> None:
    connector = PIWebAPIConnector(
        pi.config(base_url=pi.server.url("garbage")), timeout=0.5, egress=LOOPBACK_PEERS
    )
    assert_fails_fast(connector, "not JSON", 1.0)


def test_unreachable_server(pi: PIFixture) -> None:
    dead = f"http://127.0.0.1:{free_port()}/piwebapi"
    connector = PIWebAPIConnector(pi.config(base_url=dead), timeout=0.5, egress=LOOPBACK_PEERS)
    assert_fails_fast(connector, "unreachable", 1.0)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"data_server": "S"}, "base_url"),
        ({"base_url": "ftp://x/piwebapi", "data_server": "S"}, "base_url"),
        ({"base_url": "https://pi/piwebapi"}, "data_server"),
        ({"base_url": "https://pi/piwebapi", "data_server": "S", "verify_tls": "no"}, "verify_tls"),
        ({"base_url": "https://pi/piwebapi", "data_server": "S", "password": 5}, "password"),
        ({"base_url": "https://pi/piwebapi", "data_server": "S", "fallback": "zero"}, "fallback"),
    ],
)
def test_config_errors_name_the_key(config: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=f'"{key}"'):
        PIWebAPIConnector.validate_config(config)
