"""downsample(): MinMaxLTTB plus the global extremes tsdownsample alone can drop."""

from __future__ import annotations

import numpy as np
import pytest
from tsdownsample import MinMaxLTTBDownsampler

from webapp.connectors.base import make_series
from webapp.series import QUALITY_BAD, Series
from webapp.timeseries.downsample import downsample

START = 1_795_000_000_000_000_000
MINUTE = 60_000_000_000


def spike_then_dip(n: int = 1000) -> Series:
    """The global max immediately followed by the global min: one LTTB bucket, one survivor."""
    values = np.zeros(n)
    values[n // 2], values[n // 2 + 1] = 10.0, -9.5
    return make_series(START + np.arange(n, dtype=np.int64) * MINUTE, values)


def check_shape(result: Series, series: Series, max_points: int) -> None:
    assert len(result) <= max_points
    assert np.all(np.diff(result.timestamps) > 0)
    assert np.isin(result.timestamps, series.timestamps).all()


def test_tsdownsample_alone_drops_the_minimum_but_we_keep_it() -> None:
    series = spike_then_dip()
    raw = MinMaxLTTBDownsampler().downsample(series.timestamps, series.values, n_out=20)
    assert 501 not in raw  # the library loses the -9.5 dip...
    result = downsample(series, 20)
    check_shape(result, series, 20)
    assert result.values.min() == -9.5  # ...we don't
    assert result.values.max() == 10.0
    assert result.timestamps[0] == series.timestamps[0]
    assert result.timestamps[-1] == series.timestamps[-1]


@pytest.mark.parametrize("max_points", [3, 4, 7, 100, 500])
def test_budget_order_extremes_and_ends(max_points: int) -> None:
    rng = np.random.default_rng(max_points)
    values = np.cumsum(rng.normal(size=20_000))
    series = make_series(START + np.arange(values.size, dtype=np.int64) * MINUTE, values)
    result = downsample(series, max_points)
    check_shape(result, series, max_points)
    assert result.values.min() == values.min()
    assert result.values.max() == values.max()
    if max_points >= 4:
        assert result.timestamps[0] == series.timestamps[0]
        assert result.timestamps[-1] == series.timestamps[-1]
        assert len(result) >= max_points - 2  # the budget is used, not wasted


def test_short_series_is_returned_whole() -> None:
    series = spike_then_dip(50)
    assert downsample(series, 50) is series
    assert downsample(series, 500) is series


def test_bad_points_do_not_shape_the_curve() -> None:
    series = spike_then_dip()
    quality = np.zeros(len(series), dtype=np.uint8)
    quality[100:400] = QUALITY_BAD  # a long outage
    quality[-1] = QUALITY_BAD
    series = make_series(series.timestamps, series.values, quality)
    result = downsample(series, 30)
    check_shape(result, series, 30)
    assert np.nanmin(result.values) == -9.5 and np.nanmax(result.values) == 10.0
    assert np.isnan(result.values[1:-1]).sum() == 0  # only the ends may be bad
    assert result.timestamps[-1] == series.timestamps[-1]  # "bad now" stays visible


def test_all_bad_window_is_thinned_evenly() -> None:
    ts = START + np.arange(1000, dtype=np.int64) * MINUTE
    series = make_series(ts, np.full(1000, np.nan))
    result = downsample(series, 10)
    assert len(result) == 10 and result.timestamps[0] == ts[0] and result.timestamps[-1] == ts[-1]


def test_max_points_below_three_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        downsample(spike_then_dip(), 2)
