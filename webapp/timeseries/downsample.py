"""Reduce a series for plotting without hiding the peaks an operator must see.

MinMaxLTTB (tsdownsample, Rust) keeps the shape, but its final LTTB pass picks one point per
bucket by triangle area and can drop the window's global minimum or maximum. We add those back
(plus the first and last point) and then trim interior LTTB points to stay within budget.
"""

from __future__ import annotations

import numpy as np
from tsdownsample import MinMaxLTTBDownsampler

from webapp.connectors.base import Series

_DOWNSAMPLER = MinMaxLTTBDownsampler()


def downsample(series: Series, max_points: int) -> Series:
    """At most `max_points` points (ascending), always keeping the global min and max.

    The first and last points are kept too whenever the budget allows it (it always does for
    max_points >= 4; with 3, min and max win over the window's ends). Bad-quality (NaN) points
    take no part in the shape; a window of only bad points is thinned evenly.
    """
    if max_points < 3:
        raise ValueError("max_points must be at least 3")
    n = len(series)
    if n <= max_points:
        return series

    finite = np.flatnonzero(np.isfinite(series.values))
    if finite.size == 0:
        keep = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
        return series.take(keep)

    if finite.size <= max_points:
        shape = finite
    else:
        x = np.ascontiguousarray(series.timestamps[finite])
        y = np.ascontiguousarray(series.values[finite])
        shape = finite[_DOWNSAMPLER.downsample(x, y, n_out=max_points).astype(np.int64)]

    y_finite = series.values[finite]
    # Priority order: what the operator must see first if the budget is tiny.
    must = [int(finite[np.argmin(y_finite)]), int(finite[np.argmax(y_finite)]), n - 1, 0]
    must = list(dict.fromkeys(must))[:max_points]

    optional = np.setdiff1d(shape, must, assume_unique=False)
    room = max_points - len(must)
    if optional.size > room:
        # Thin evenly across the window so no stretch of the trend loses all its points.
        pick = np.unique(np.linspace(0, optional.size - 1, room).round().astype(np.int64))
        optional = optional[pick] if room > 0 else optional[:0]
    keep = np.union1d(optional, np.asarray(must, dtype=np.int64))
    return series.take(keep)
