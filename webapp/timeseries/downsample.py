"""Reduce a series for plotting without hiding the peaks an operator must see.

MinMaxLTTB (tsdownsample, Rust) keeps the shape, but its final LTTB pass picks one point per
bucket by triangle area and can drop the window's global minimum or maximum. We add those back
(plus the first and last point) and then trim interior LTTB points to stay within budget.
"""

from __future__ import annotations

import numpy as np
from tsdownsample import MinMaxLTTBDownsampler

from webapp.series import Series

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

    finite_mask = np.isfinite(series.values)
    if finite_mask.all():  # the common case: work on the arrays as they are, no copies
        finite = None
        x, y = series.timestamps, series.values
    else:
        finite = np.flatnonzero(finite_mask)  # positions of the finite values in `series`
        if finite.size == 0:
            # Evenly, and distinct: the picks are more than 1 apart (n > max_points).
            return series.take(np.linspace(0, n - 1, max_points).round().astype(np.int64))
        x, y = series.timestamps[finite], series.values[finite]

    if y.size <= max_points + 1:
        # Nothing to shape (a window one point over budget, e.g. a reduced read's probe
        # point): keep every point and let the even thinning below drop the excess.
        shape = np.arange(y.size)
    else:
        x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
        shape = _DOWNSAMPLER.downsample(x, y, n_out=max_points).astype(np.int64)
    # Priority order: what the operator must see first if the budget is tiny.
    extremes = np.array([np.argmin(y), np.argmax(y)], dtype=np.int64)
    if finite is not None:  # back to positions in the whole series
        shape, extremes = finite[shape], finite[extremes]
    must = np.array(
        list(dict.fromkeys([int(extremes[0]), int(extremes[1]), n - 1, 0]))[:max_points],
        dtype=np.int64,
    )

    # Index sets as one boolean mask: sorted and unique for free (numpy's set functions sort,
    # and on windows this small that was most of the cost).
    keep = np.zeros(n, dtype=bool)
    keep[shape] = True
    keep[must] = False
    optional = np.flatnonzero(keep)
    room = max_points - must.size
    if optional.size > room:
        # Thin evenly across the window so no stretch of the trend loses all its points. The
        # picks are more than 1 apart, so rounding keeps them distinct.
        optional = optional[np.linspace(0, optional.size - 1, room).round().astype(np.int64)]
        keep[:] = False
        keep[optional] = True
    keep[must] = True
    return series.take(np.flatnonzero(keep))
