"""Demo connector: deterministic, window/limit semantics, realistic values per metric."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from webapp.connectors.demo import DemoConnector, demo_values
from webapp.series import QUALITY_GOOD, datetime_to_ns

from .conftest import MINUTE_NS, run

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
TAG = "PI:P-101.VIB"


@pytest.fixture
def demo() -> DemoConnector:
    return DemoConnector({"mode": "demo"})


def minutes(*values: int) -> list[int]:
    return [datetime_to_ns(T0) + v * MINUTE_NS for v in values]


def test_same_window_twice_and_across_instances_is_identical(demo: DemoConnector) -> None:
    window = (T0 - timedelta(hours=6), T0, 1000)
    first = run(demo.fetch_timeseries(TAG, *window))
    second = run(DemoConnector({}).fetch_timeseries(TAG, *window))
    np.testing.assert_array_equal(first.timestamps, second.timestamps)
    np.testing.assert_array_equal(first.values, second.values)
    # History is the pure function sampled on whole minutes.
    np.testing.assert_array_equal(first.values, demo_values(TAG, first.timestamps))
    assert np.all(first.timestamps % MINUTE_NS == 0)
    assert np.all(first.quality == QUALITY_GOOD)


def test_windows_that_overlap_agree_on_shared_points(demo: DemoConnector) -> None:
    a = run(demo.fetch_timeseries(TAG, T0 - timedelta(days=2), T0, 10_000))
    b = run(demo.fetch_timeseries(TAG, T0 - timedelta(hours=1), T0 + timedelta(hours=1), 1000))
    shared = np.intersect1d(a.timestamps, b.timestamps)
    assert shared.size == 61
    np.testing.assert_array_equal(
        a.window(int(shared[0]), int(shared[-1])).values,
        b.window(int(shared[0]), int(shared[-1])).values,
    )


def test_latest_is_the_function_at_that_instant(demo: DemoConnector) -> None:
    before = time.time_ns()
    latest = run(demo.fetch_latest(TAG))
    after = time.time_ns()
    assert len(latest) == 1
    assert before <= latest.timestamps[0] <= after
    assert latest.values[0] == demo_values(TAG, latest.timestamps)[0]
    assert latest.quality[0] == QUALITY_GOOD


def test_sub_minute_values_sit_smoothly_between_minute_samples() -> None:
    grid = np.array(minutes(0, 1), dtype=np.int64)
    ends = demo_values(TAG, grid)
    halfway = demo_values(TAG, np.array([grid[0] + MINUTE_NS // 2]))[0]
    # Noise and spikes interpolate linearly; only the slow drift curves (tiny over 30 s).
    assert abs(halfway - ends.mean()) < 0.01
    assert demo_values(TAG, grid[:1] + 1)[0] == pytest.approx(ends[0], abs=1e-6)


def test_window_includes_both_ends(demo: DemoConnector) -> None:
    series = run(demo.fetch_timeseries(TAG, T0, T0 + timedelta(minutes=5), limit=100))
    assert series.timestamps.tolist() == minutes(0, 1, 2, 3, 4, 5)


def test_latest_n_of_window_ascending(demo: DemoConnector) -> None:
    series = run(demo.fetch_timeseries(TAG, T0, T0 + timedelta(minutes=5, seconds=30), limit=3))
    assert series.timestamps.tolist() == minutes(3, 4, 5)


def test_without_from_time_latest_n_at_or_before_to_time(demo: DemoConnector) -> None:
    series = run(demo.fetch_timeseries(TAG, None, T0 + timedelta(seconds=59), limit=4))
    assert series.timestamps.tolist() == minutes(-3, -2, -1, 0)


def test_window_between_samples_and_zero_limit_are_empty(demo: DemoConnector) -> None:
    gap = run(demo.fetch_timeseries(TAG, T0 + timedelta(seconds=1), T0 + timedelta(seconds=59)))
    assert len(gap) == 0
    assert len(run(demo.fetch_timeseries(TAG, None, T0, limit=0))) == 0


def test_history_has_a_beginning(demo: DemoConnector) -> None:
    origin = datetime(2020, 1, 1, tzinfo=UTC)
    series = run(demo.fetch_timeseries(TAG, None, origin + timedelta(minutes=5), limit=10**12))
    assert series.timestamps[0] == datetime_to_ns(origin) and len(series) == 6
    assert len(run(demo.fetch_timeseries(TAG, None, origin - timedelta(days=1)))) == 0


def test_one_year_window_is_complete(demo: DemoConnector) -> None:
    series = run(demo.fetch_timeseries(TAG, T0 - timedelta(days=365), T0, limit=10**9))
    assert len(series) == 365 * 24 * 60 + 1
    assert np.all(np.diff(series.timestamps) == MINUTE_NS)
    assert np.isfinite(series.values).all()


# C-301 is a compressor: its alarm episodes (about an hour in every 4) take vibration
# into zones C and D (~5.6 and ~7.9 mm/s), or temperature or pressure past their hi and hihi
# limits, so the 99th percentile of those three reaches the episodes' plateaus.
@pytest.mark.parametrize(
    ("suffix", "low", "high"),
    [
        ("VIB", 1.0, 8.5),
        ("TEMP", 35.0, 115.0),
        ("PRES", 4.0, 38.0),
        ("FLOW", 50.0, 500.0),
        ("POWER", 200.0, 900.0),
        ("SPEED", 2700.0, 3300.0),
        ("DP", 0.3, 3.0),
        ("LEVEL", 5.0, 100.0),
        ("RPM_CUSTOM", 0.0, 100.0),
    ],
)
def test_values_are_realistic_per_metric(
    demo: DemoConnector, suffix: str, low: float, high: float
) -> None:
    series = run(demo.fetch_timeseries(f"PI:C-301.{suffix}", T0 - timedelta(days=30), T0, 10**6))
    p1, p99 = np.percentile(series.values, [1, 99])
    assert low <= p1 < p99 <= high
    assert np.ptp(series.values) > 0.05 * (high - low)  # it moves


def test_vibration_has_occasional_one_minute_spikes(demo: DemoConnector) -> None:
    values = run(demo.fetch_timeseries(TAG, T0 - timedelta(days=7), T0, 10**6)).values
    # A spike: > 1 mm/s above the median of its 9 minutes (episodes ramp, they do not jump).
    local = np.median(np.lib.stride_tricks.sliding_window_view(values, 9), axis=1)
    spikes = np.flatnonzero(values[4:-4] - local > 1.0) + 4
    assert 0 < spikes.size < 0.02 * values.size
    # Never two in a row, so a spike stays beyond a limit for under two minutes.
    assert np.all(np.diff(spikes) > 1)


def test_tags_differ_and_values_are_stable_across_processes() -> None:
    grid = np.array(minutes(*range(10)), dtype=np.int64)
    assert not np.array_equal(demo_values("PI:P-101.VIB", grid), demo_values("PI:P-102.VIB", grid))
    # Another interpreter with a different str-hash seed computes the very same numbers.
    script = (
        "import sys, numpy as np; from webapp.connectors.demo import demo_values; "
        "print(demo_values(sys.argv[1], np.array(sys.argv[2:], dtype=np.int64)).tobytes().hex())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", script, TAG, *map(str, grid)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.strip()
    assert bytes.fromhex(out) == demo_values(TAG, grid).tobytes()
