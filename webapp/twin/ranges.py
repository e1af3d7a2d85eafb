"""A signal's engineering range: the value axis a trend is drawn on (DESIGN.md §18).

An operator reads a trend against a fixed scale, so the axis comes from what is known about
the signal, not from the points on screen (which would rescale it on every reading):

1. The mapping's configured `range_low` … `range_high`, when both are set.
2. Else, when its alarm limits bound both sides (a lo or lolo, and a hi or hihi): the lowest
   to the highest threshold (lolo … hihi, or whatever limits exist), widened by 10 % of their
   span on each side.
3. Else its 7-day history, min … max, rounded outward to nice numbers (1-2-5 steps), with
   one-sided limits counted as values so they stay in view: a vibration signal with only hi
   and hihi is drawn from its normal readings up to its limits, not between the two limits
   where its normal readings would be off the plot. A flat history is widened by 10 % of its
   value (±1 around zero) first.
4. Else one-sided limits alone, as in 2 (a single threshold: a nice range around it).
5. Else (nothing known) 0 … 1.

With one end configured, that end is kept and the other comes from rules 2–5 (one span
beyond the configured end if the derived end falls on its wrong side). Pure functions.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np

RangeSource = Literal["configured", "limits", "history", "default"]
EngineeringRange = tuple[float, float, RangeSource]

LIMIT_MARGIN = 0.10  # of the limits' span, on each side
FLAT_MARGIN = 0.10  # of a flat history's value, on each side
NICE_INTERVALS = 5  # a history range is rounded to steps of about a fifth of its span
DEFAULT_RANGE = (0.0, 1.0)


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def engineering_range(
    range_low: float | None,
    range_high: float | None,
    limits: Mapping[str, float],
    history_values: Iterable[float] | np.ndarray,
) -> EngineeringRange:
    """(low, high, source) with low < high, finite; see the module docstring for the rules.

    `limits`: the signal's active limits, level → threshold. `history_values`: its 7-day
    values (NaN and infinities are ignored)."""
    low, high = _finite(range_low), _finite(range_high)
    if low is not None and high is not None:
        if low < high:
            return low, high, "configured"
        low = high = None  # a pair that cannot be an axis is no setting (the API forbids it)
    derived_low, derived_high, source = _derived_range(limits, history_values)
    if low is None and high is None:
        return derived_low, derived_high, source
    span = derived_high - derived_low
    if low is not None:
        return low, derived_high if derived_high > low else low + span, "configured"
    assert high is not None
    return derived_low if derived_low < high else high - span, high, "configured"


def needs_history(
    range_low: float | None, range_high: float | None, limits: Mapping[str, float]
) -> bool:
    """Whether engineering_range would look at the history: not when both ends are set, nor
    when limits bound both sides (a caller can then skip reading 7 days of data)."""
    low, high = _finite(range_low), _finite(range_high)
    if low is not None and high is not None and low < high:
        return False
    return _two_sided(limits) is None


LOW_LEVELS = frozenset({"lo", "lolo"})
HIGH_LEVELS = frozenset({"hi", "hihi"})


def _thresholds(limits: Mapping[str, float], levels: frozenset[str] | None = None) -> list[float]:
    return [
        threshold
        for level, value in limits.items()
        if (levels is None or level in levels) and (threshold := _finite(value)) is not None
    ]


def _two_sided(limits: Mapping[str, float]) -> tuple[float, float] | None:
    """lowest … highest threshold when limits bound the signal from below and above."""
    if not (_thresholds(limits, LOW_LEVELS) and _thresholds(limits, HIGH_LEVELS)):
        return None
    thresholds = _thresholds(limits)
    lowest, highest = min(thresholds), max(thresholds)
    return (lowest, highest) if highest > lowest else None


def _widened(lowest: float, highest: float) -> tuple[float, float]:
    margin = (highest - lowest) * LIMIT_MARGIN
    if not math.isfinite(lowest - margin) or not math.isfinite(highest + margin):
        return lowest, highest  # at the edge of float64: no room to widen
    return lowest - margin, highest + margin


def _derived_range(
    limits: Mapping[str, float], history_values: Iterable[float] | np.ndarray
) -> EngineeringRange:
    bounds = _two_sided(limits)
    if bounds is not None:
        return (*_widened(*bounds), "limits")
    thresholds = _thresholds(limits)
    values = np.asarray(
        history_values if isinstance(history_values, np.ndarray) else list(history_values),
        dtype=np.float64,
    )
    values = values[np.isfinite(values)]
    if values.size:
        # One-sided limits stay in view of the history.
        lowest = min([float(values.min()), *thresholds])
        highest = max([float(values.max()), *thresholds])
        return (*nice_range(lowest, highest), "history")
    if thresholds:
        lowest, highest = min(thresholds), max(thresholds)
        if highest > lowest:
            return (*_widened(lowest, highest), "limits")
        return (*nice_range(lowest, lowest), "limits")
    return (*DEFAULT_RANGE, "default")


def nice_range(lowest: float, highest: float) -> tuple[float, float]:
    """lowest … highest rounded outward to multiples of a 1-2-5 step of about a fifth of the
    span; a single value is first widened by 10 % of itself (±1 around zero)."""
    if highest <= lowest:
        margin = abs(lowest) * FLAT_MARGIN or 1.0
        if not math.isfinite(lowest + margin) or not math.isfinite(lowest - margin):
            return math.nextafter(lowest, -math.inf), math.nextafter(lowest, math.inf)
        lowest, highest = lowest - margin, lowest + margin
    span = highest - lowest
    if not math.isfinite(span) or span / NICE_INTERVALS < sys.float_info.min:
        return lowest, highest  # at the edges of float64: nothing nicer fits
    mantissa, exponent = nice_step(span)
    step = mantissa * 10.0**exponent
    nice_low = _multiple(math.floor(_snapped(lowest / step)), mantissa, exponent)
    nice_high = _multiple(math.ceil(_snapped(highest / step)), mantissa, exponent)
    if not math.isfinite(nice_low) or not math.isfinite(nice_high):
        return lowest, highest
    return nice_low, nice_high


def nice_step(span: float) -> tuple[int, int]:
    """The 1-2-5 step (mantissa, power of ten) at least span / NICE_INTERVALS."""
    raw = span / NICE_INTERVALS
    exponent = math.floor(math.log10(raw))
    fraction = raw / 10.0**exponent
    for mantissa in (1, 2, 5):
        if fraction <= mantissa * (1 + 1e-9):
            return mantissa, exponent
    return 1, exponent + 1


def _snapped(quotient: float) -> float:
    """0.3 / 0.1 is 2.9999999999999996 in floating point: a hair from a whole step is one."""
    nearest = round(quotient)
    return float(nearest) if abs(quotient - nearest) <= 1e-9 * max(1.0, abs(quotient)) else quotient


def _multiple(count: int, mantissa: int, exponent: int) -> float:
    """count × mantissa × 10^exponent, exactly as its decimal reads (3 × 0.1 → 0.3, not
    0.30000000000000004): dividing by a power of ten rounds once, correctly."""
    if exponent >= 0:
        whole = count * mantissa * 10**exponent
        return float(whole) if abs(whole) < 2**1024 else math.inf if whole > 0 else -math.inf
    return count * mantissa / 10**-exponent
