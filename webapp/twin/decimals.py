"""How many decimals a metric's values are shown with: one rule per metric (DESIGN.md §18).

A value reads the same on its card, in the panel's latest value, on the chart (markers, axis,
limit labels), in the data table, on /trends and in an alarm row, whatever window is open. So
the decimals come from what is known about the signal, never from the points on screen (a
narrow "last 100" and a wide week would otherwise print 36.27 and 36.3 for one reading):

1. The unit's usual resolution, as plant historians display it (°C 1, bar 2, mm/s 2,
   in/s 3, rpm 0, kW 0, % 1 …): what the instrument resolves, whatever the scale.
2. Else (a unit we do not know, or none) the mapping's configured engineering range: about a
   thousandth of its span (0…150 → 1 decimal, 0…10 → 2, 0…3,000 → 0), at most 3.
3. Else 2.

Pure functions, so the table below is pinned by its tests.
"""

from __future__ import annotations

import math

MAX_DECIMALS = 3
DEFAULT_DECIMALS = 2

UNIT_DECIMALS: dict[str, int] = {
    # temperature
    "°c": 1, "degc": 1, "c": 1, "°f": 1, "degf": 1, "f": 1, "k": 1,
    # pressure
    "bar": 2, "barg": 2, "bara": 2, "mbar": 0, "pa": 0, "kpa": 1, "mpa": 3, "psi": 1,
    "psig": 1, "psia": 1,
    # vibration
    "mm/s": 2, "in/s": 3, "ips": 3, "µm": 0, "um": 0, "mil": 2, "g": 2,
    # speed, power, electrical
    "rpm": 0, "hz": 2, "w": 0, "kw": 0, "mw": 2, "a": 1, "v": 0, "kv": 2,
    # flow, level, ratios
    "m3/h": 1, "m³/h": 1, "l/s": 1, "l/min": 1, "kg/s": 2, "kg/h": 0, "t/h": 1, "bbl/d": 0,
    "m": 2, "mm": 0, "%": 1,
}


def range_decimals(span: float) -> int:
    """About a thousandth of the span: 1,000 → 0, 100 → 1, 10 → 2, 1 and below → 3."""
    if not math.isfinite(span) or span <= 0:
        return DEFAULT_DECIMALS
    return max(0, min(MAX_DECIMALS, 3 - math.floor(math.log10(span))))


def metric_decimals(
    unit: str | None, range_low: float | None = None, range_high: float | None = None
) -> int:
    """The decimals every screen shows this metric's values with (see the module docstring)."""
    if unit is not None:
        known = UNIT_DECIMALS.get(unit.strip().lower())
        if known is not None:
            return known
    if (
        range_low is not None and range_high is not None
        and math.isfinite(range_low) and math.isfinite(range_high) and range_low < range_high
    ):
        return range_decimals(range_high - range_low)
    return DEFAULT_DECIMALS
