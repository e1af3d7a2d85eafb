"""Asset health (DESIGN.md §15): one explainable score per asset, 0–100, as pure functions.

No database, no clock, no I/O: the caller hands in each signal's newest good reading, its last
24 h, its 7-day baseline and its active limits, the asset's active alarms and `now`; the same
inputs always give the same health. Every point taken off is a component carrying the numbers its
sentence is built from, so an operator can see why.

Guarantees (each pinned by tests/test_health_model.py):
- Fresh means a good reading at or before now and no older than 10 minutes. No fresh reading on
  any of the asset's signals → score None, band "no_data", zone None, no components. A signal
  that is not fresh contributes nothing (its value is too old to judge by).
- Score = 100 − the sum of the component penalties (each rounded to 0.1), rounded half up and
  clamped to 0…100. Only penalties > 0 are listed, largest first.
- Bands: ≥ 85 good, 65–84 watch, 40–64 alert, < 40 danger, None → no_data.
- Vibration zone: the newest fresh good `vibration_rms` in mm/s (in/s × 25.4; an unknown unit
  gives no zone) against the ISO 20816-3 boundaries of the asset's machine group and foundation;
  a value on a boundary is in the upper zone. Its penalty is piecewise linear in mm/s, hence
  continuous across zones: 0 up to half of A/B, 5 at A/B, 15 in the middle of zone B, 36 at B/C,
  61 at C/D, 90 from 1.5 × C/D on. So zone A alone scores ≥ 95 (≥ 85 promised), a value at or
  past B/C alone ≤ 64, at or past C/D alone ≤ 39. Several vibration signals: the worst counts.
- Active alarms: 25 per high, 12 per medium, 5 per low priority alarm, at most 60 in all, so
  alarms alone never take the score below alert.
- Limit nearness, per metric: a limit's "way" runs from the metric's 7-day median (or, without
  one on the normal side, the nearest limit on the other side) to the threshold; over the last
  10 % of it the penalty grows linearly to 10, and stays 10 once the limit is reached (so it does
  not drop when the alarm trips; a reached limit counts even with no way to measure along). At
  most 25 for all metrics.
- Vibration trend: a least-squares line through the good points of the last 24 h (at least 10
  points over at least 6 h). Rising while the value is still below B/C → `time_to_zone_c_hours`,
  the hours until the line reaches B/C (beyond a week the extrapolation of one day is
  meaningless: None), and a penalty growing linearly from 0 at 72 h to 20 at 0 h. Flat or
  falling → None and no penalty.
- Baseline deviation, per metric: robust z = (latest − median) / (1.4826 × MAD) of the 7-day
  baseline; beyond |z| 3 the penalty is 3 per unit of z, at most 15 per metric and 25 in all.
  It names a drift before any limit trips.
- Nearness and deviation give one component per metric (the sentence names it). Capped rules
  fill their cap largest first; a component keeps what was left of the cap, so the listed
  penalties always add up to what was taken off.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from webapp.series import QUALITY_GOOD, Series

MODEL_NAME = "iso20816-v1"

NS_PER_HOUR = 3_600 * 1_000_000_000
FRESH_NS = 10 * 60 * 1_000_000_000  # §15: no good reading within 10 minutes → no data
VIBRATION_METRIC = "vibration_rms"

# ISO 20816-3 zone boundaries A/B, B/C, C/D in mm/s RMS by (machine group, foundation).
ZONE_BOUNDARIES: dict[tuple[int, str], tuple[float, float, float]] = {
    (1, "rigid"): (2.3, 4.5, 7.1),
    (1, "flexible"): (3.5, 7.1, 11.0),
    (2, "rigid"): (1.4, 2.8, 4.5),
    (2, "flexible"): (2.3, 4.5, 7.1),
}
ZONES = ("A", "B", "C", "D")
FOUNDATIONS = ("rigid", "flexible")
DEFAULT_FOUNDATION = "rigid"
# §15: machines above 300 kW (group 1) are, by default, the compressors and turbines.
GROUP_1_TYPE_WORDS = ("compressor", "turbine")

# The zone penalty at each knot; between knots it is linear, beyond the last it stays.
# 36 at B/C and 61 at C/D make a value crossing them score 64 and 39 (alert, danger);
# 5 at A/B keeps all of zone A at 95 or more; 15 mid-B keeps the calmer half of B "good".
ZONE_PENALTY_AT_AB = 5.0
ZONE_PENALTY_MID_B = 15.0
ZONE_PENALTY_AT_BC = 36.0
ZONE_PENALTY_AT_CD = 61.0
ZONE_PENALTY_MAX = 90.0
ZONE_PENALTY_MAX_AT = 1.5  # × C/D

ALARM_PENALTIES = {"high": 25.0, "medium": 12.0, "low": 5.0}
ALARM_PENALTY_CAP = 60.0

NEAR_SHARE = 0.10  # the last 10 % of the way to a limit
NEAR_PENALTY = 10.0  # per metric, reached at the threshold
NEAR_PENALTY_CAP = 25.0
HIGH_LEVELS = ("hihi", "hi")  # most severe first
LOW_LEVELS = ("lolo", "lo")

TREND_WINDOW_NS = 24 * NS_PER_HOUR
TREND_MIN_POINTS = 10
TREND_MIN_SPAN_HOURS = 6.0  # a line through a few minutes says nothing about tomorrow
TREND_HORIZON_HOURS = 7 * 24.0  # further out, a one-day fit is no forecast
TREND_PENALTY_HOURS = 72.0  # the penalty starts when zone C is this close
TREND_PENALTY_MAX = 20.0

BASELINE_MIN_VALUES = 10
MAD_TO_SIGMA = 1.4826  # MAD × 1.4826 estimates σ for normally distributed data
DEVIATION_FREE_Z = 3.0
DEVIATION_PENALTY_PER_Z = 3.0
DEVIATION_PENALTY = 15.0  # per metric
DEVIATION_PENALTY_CAP = 25.0

BAND_EDGES = ((85, "good"), (65, "watch"), (40, "alert"))

# Accepted spellings of vibration velocity units once lower-cased and stripped of "rms",
# spaces and punctuation: the factor to mm/s. Peak or peak-to-peak units are not RMS: no zone.
_MM_PER_S_FACTORS = {
    "mm/s": 1.0,
    "mm/sec": 1.0,
    "in/s": 25.4,
    "in/sec": 25.4,
    "inch/s": 25.4,
    "ips": 25.4,
}
_UNIT_NOISE = str.maketrans("", "", " \t()[]-_,")


def N_(message: str) -> str:
    """Marks a string for extraction; translated where it is shown."""
    return message


def identity(message: str) -> str:
    return message


SENTENCES = {
    "vibration_zone": N_("Vibration %(value)s mm/s RMS is in ISO 20816-3 zone %(zone)s"),
    "active_alarms": N_("Active alarms — high: %(high)s, medium: %(medium)s, low: %(low)s"),
    "limit_nearness/near": N_(
        "%(metric)s at %(value)s is close to its %(level)s limit (%(threshold)s)"
    ),
    "limit_nearness/reached": N_(
        "%(metric)s at %(value)s has reached its %(level)s limit (%(threshold)s)"
    ),
    "vibration_trend": N_(
        "Vibration is rising by %(rate)s mm/s a day and would reach zone C (%(boundary)s mm/s) "
        "in about %(hours)s h"
    ),
    "baseline_deviation/above": N_(
        "%(metric)s at %(value)s is well above its 7-day median of %(median)s (robust z %(z)s)"
    ),
    "baseline_deviation/below": N_(
        "%(metric)s at %(value)s is well below its 7-day median of %(median)s (robust z %(z)s)"
    ),
}
# The same words the alarm screens use for levels (partials/_labels.html).
LEVEL_LABELS = {
    "hihi": N_("high-high"),
    "hi": N_("high"),
    "lo": N_("low"),
    "lolo": N_("low-low"),
}


@dataclass(frozen=True)
class Baseline:
    median: float
    mad: float


@dataclass(frozen=True)
class SignalHealthInput:
    metric: str
    unit: str | None
    latest: tuple[int, float] | None  # (ns, value) of the newest good reading at or before now
    history: Series  # the last 24 h, reduced; may hold bad points
    baseline: Baseline | None  # 7-day
    limits: dict[str, float]  # active alarm limits by level (hihi, hi, lo, lolo)


@dataclass(frozen=True)
class AssetHealthInput:
    asset_type: str
    machine_group: int | None
    foundation: str | None
    signals: list[SignalHealthInput]
    active_alarm_priorities: list[str]  # "high" | "medium" | "low", active and unsuppressed
    now_ns: int


@dataclass(frozen=True)
class Component:
    name: str  # vibration_zone, active_alarms, limit_nearness, vibration_trend, baseline_deviation
    penalty: float  # ≥ 0, rounded to 0.1
    params: dict[str, Any]  # JSON-safe: what the sentence is built from


@dataclass(frozen=True)
class Health:
    score: int | None
    band: str
    zone: str | None
    components: list[Component]
    time_to_zone_c_hours: float | None
    model: str = MODEL_NAME


# --- the asset's machine and its zone table ----------------------------------------------------


def machine_group_of(asset_type: str, machine_group: int | None) -> int:
    """The asset's ISO 20816-3 group: its own when set, else 1 for compressors and turbines."""
    if machine_group in (1, 2):
        return machine_group
    kind = asset_type.lower()
    return 1 if any(word in kind for word in GROUP_1_TYPE_WORDS) else 2


def foundation_of(foundation: str | None) -> str:
    text = (foundation or "").strip().lower()
    return text if text in FOUNDATIONS else DEFAULT_FOUNDATION


def _mm_per_s_factor(unit: str | None) -> float | None:
    if unit is None:
        return None  # vibration with no unit could be anything: no zone rather than a wrong one
    return _MM_PER_S_FACTORS.get(unit.lower().replace("rms", "").translate(_UNIT_NOISE))


def to_mm_per_s(value: float, unit: str | None) -> float | None:
    """A vibration velocity in mm/s RMS, or None when the unit is not one we know."""
    factor = _mm_per_s_factor(unit)
    if factor is None or not math.isfinite(value):
        return None
    return value * factor


def vibration_zone(mm_s: float, group: int, foundation: str) -> str:
    """ISO 20816-3 zone; a value exactly on a boundary belongs to the zone above it."""
    crossed = sum(1 for boundary in ZONE_BOUNDARIES[group, foundation] if mm_s >= boundary)
    return ZONES[crossed]


def zone_penalty(mm_s: float, group: int, foundation: str) -> float:
    """Piecewise linear in mm/s, so the score has no jump at a zone boundary."""
    a_b, b_c, c_d = ZONE_BOUNDARIES[group, foundation]
    knots = (a_b / 2, a_b, (a_b + b_c) / 2, b_c, c_d, c_d * ZONE_PENALTY_MAX_AT)
    penalties = (
        0.0,
        ZONE_PENALTY_AT_AB,
        ZONE_PENALTY_MID_B,
        ZONE_PENALTY_AT_BC,
        ZONE_PENALTY_AT_CD,
        ZONE_PENALTY_MAX,
    )
    return float(np.interp(mm_s, knots, penalties))


def band_of(score: int | None) -> str:
    if score is None:
        return "no_data"
    for lowest, band in BAND_EDGES:
        if score >= lowest:
            return band
    return "danger"


# --- inputs the caller prepares ----------------------------------------------------------------


def baseline(values: np.ndarray) -> Baseline | None:
    """Median and MAD of a signal's good values (NaN ignored); None when too few to trust
    (< 10) or when MAD is 0 (a constant signal has no scale to measure a drift against)."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size < BASELINE_MIN_VALUES:
        return None
    median = float(np.median(finite))
    mad = float(np.median(np.abs(finite - median)))
    return Baseline(median, mad) if mad > 0 else None


def latest_good(series: Series, now_ns: int) -> tuple[int, float] | None:
    """(ns, value) of the newest good, finite reading at or before now: a bad or uncertain
    newer one does not count."""
    upto = int(np.searchsorted(series.timestamps, now_ns, "right"))
    usable = (series.quality[:upto] == QUALITY_GOOD) & np.isfinite(series.values[:upto])
    found = np.flatnonzero(usable)
    if not found.size:
        return None
    index = int(found[-1])
    return int(series.timestamps[index]), float(series.values[index])


# --- the rules ---------------------------------------------------------------------------------


def _fresh_value(signal: SignalHealthInput, now_ns: int) -> float | None:
    if signal.latest is None:
        return None
    ns, value = signal.latest
    if not now_ns - FRESH_NS <= ns <= now_ns or not math.isfinite(value):
        return None
    return value


def _zone_component(mm_s: float, group: int, foundation: str) -> Component:
    return Component(
        "vibration_zone",
        round(zone_penalty(mm_s, group, foundation), 1),
        {
            "value": round(mm_s, 6),
            "unit": "mm/s",
            "zone": vibration_zone(mm_s, group, foundation),
            "group": group,
            "foundation": foundation,
            "boundaries": list(ZONE_BOUNDARIES[group, foundation]),
        },
    )


def _alarm_component(priorities: Iterable[str]) -> Component:
    counts = dict.fromkeys(ALARM_PENALTIES, 0)
    for priority in priorities:
        if priority in counts:
            counts[priority] += 1
    total = sum(ALARM_PENALTIES[priority] * count for priority, count in counts.items())
    return Component("active_alarms", round(min(total, ALARM_PENALTY_CAP), 1), counts)


def trend_line(history: Series, factor: float, now_ns: int) -> tuple[float, float] | None:
    """(value at now on the line, slope per hour) of a least-squares fit through the good
    points of the last 24 h, in the series' unit × factor; None over too few points or too
    short a span. Vectorised: a 24 h history may hold tens of thousands of points."""
    window = history.window(now_ns - TREND_WINDOW_NS, now_ns)
    good = (window.quality == QUALITY_GOOD) & np.isfinite(window.values)
    if int(np.count_nonzero(good)) < TREND_MIN_POINTS:
        return None
    # Hours before now: the int64 difference first, so no precision is lost to 1e18 ns.
    hours = (window.timestamps[good] - now_ns) / NS_PER_HOUR
    if float(hours[-1] - hours[0]) < TREND_MIN_SPAN_HOURS:
        return None
    values = window.values[good] * factor
    centred = hours - hours.mean()
    slope = float(np.dot(centred, values - values.mean()) / np.dot(centred, centred))
    return float(values.mean() - slope * hours.mean()), slope


def _trend(
    signal: SignalHealthInput, mm_s: float, b_c: float, now_ns: int
) -> tuple[float, Component] | None:
    """Hours until zone C and the trend component, while vibration below B/C is rising."""
    factor = _mm_per_s_factor(signal.unit)
    if factor is None or mm_s >= b_c:
        return None
    line = trend_line(signal.history, factor, now_ns)
    if line is None or line[1] <= 0:
        return None
    at_now, slope = line
    hours = max(0.0, (b_c - at_now) / slope)  # 0: the line is past B/C though the value is not
    if hours > TREND_HORIZON_HOURS:
        return None
    penalty = TREND_PENALTY_MAX * max(0.0, 1 - hours / TREND_PENALTY_HOURS)
    params = {
        "rate": round(slope * 24, 4),  # mm/s a day
        "boundary": b_c,
        "hours": round(hours, 1),
        "fitted": round(at_now, 3),
    }
    return round(hours, 1), Component("vibration_trend", round(penalty, 1), params)


def _way_start(high: bool, threshold: float, signal: SignalHealthInput) -> float | None:
    """Where the way to a limit starts: the signal's normal (7-day median) when it is on the
    normal side, else the nearest limit on the other side; None when neither is known."""
    if signal.baseline is not None:
        median = signal.baseline.median
        if (median < threshold) if high else (median > threshold):
            return median
    opposite = [
        value
        for level, value in signal.limits.items()
        if level in (LOW_LEVELS if high else HIGH_LEVELS)
        and ((value < threshold) if high else (value > threshold))
    ]
    if not opposite:
        return None
    return max(opposite) if high else min(opposite)


def _nearness_component(signal: SignalHealthInput, value: float) -> Component | None:
    """The limit the value is nearest to, as a share of the last 10 % of the way there."""
    best: tuple[float, str, float] | None = None  # (share, level, threshold)
    for level in HIGH_LEVELS + LOW_LEVELS:  # most severe first: it wins a tie
        threshold = signal.limits.get(level)
        if threshold is None:
            continue
        high = level in HIGH_LEVELS
        left = (threshold - value) if high else (value - threshold)  # ≤ 0 once reached
        start = _way_start(high, threshold, signal)
        if start is None:
            # No way to measure nearness along, but a limit reached is reached all the same.
            share = 1.0 if left <= 0 else 0.0
        else:
            share = min(1.0, max(0.0, 1 - left / (NEAR_SHARE * abs(threshold - start))))
        if share > 0 and (best is None or share > best[0]):
            best = (share, level, threshold)
    if best is None:
        return None
    share, level, threshold = best
    reached = (value >= threshold) if level in HIGH_LEVELS else (value <= threshold)
    params = {
        "metric": signal.metric,
        "value": value,
        "unit": signal.unit or "",
        "level": level,
        "threshold": threshold,
        "state": "reached" if reached else "near",
    }
    return Component("limit_nearness", round(NEAR_PENALTY * share, 1), params)


def robust_z(value: float, base: Baseline) -> float:
    return (value - base.median) / (MAD_TO_SIGMA * base.mad)


def _deviation_component(signal: SignalHealthInput, value: float) -> Component | None:
    if signal.baseline is None or signal.baseline.mad <= 0:
        return None  # no scale to measure a drift against (`baseline` never makes one)
    z = robust_z(value, signal.baseline)
    excess = abs(z) - DEVIATION_FREE_Z
    if excess <= 0:
        return None
    params = {
        "metric": signal.metric,
        "value": value,
        "unit": signal.unit or "",
        "median": signal.baseline.median,
        "mad": signal.baseline.mad,
        "z": round(z, 2),
    }
    penalty = min(DEVIATION_PENALTY, DEVIATION_PENALTY_PER_Z * excess)
    return Component("baseline_deviation", round(penalty, 1), params)


def _within_cap(components: Iterable[Component | None], cap: float) -> list[Component]:
    """Largest first, each keeps what is left of the cap."""
    kept = []
    left = cap
    for component in sorted((c for c in components if c), key=lambda c: -c.penalty):
        penalty = round(min(component.penalty, left), 1)
        left -= penalty
        kept.append(replace(component, penalty=penalty))
    return kept


def assess(asset: AssetHealthInput) -> Health:
    now_ns = asset.now_ns
    fresh = [
        (signal, value)
        for signal in asset.signals
        if (value := _fresh_value(signal, now_ns)) is not None
    ]
    if not fresh:
        return Health(None, band_of(None), None, [], None)
    group = machine_group_of(asset.asset_type, asset.machine_group)
    foundation = foundation_of(asset.foundation)

    components = [_alarm_component(asset.active_alarm_priorities)]
    zone = None
    time_to_zone_c = None
    vibrations = [
        (mm_s, signal)
        for signal, value in fresh
        if signal.metric == VIBRATION_METRIC
        and (mm_s := to_mm_per_s(value, signal.unit)) is not None
    ]
    if vibrations:
        mm_s, signal = max(vibrations, key=lambda pair: pair[0])  # the worst bearing counts
        zone = vibration_zone(mm_s, group, foundation)
        components.append(_zone_component(mm_s, group, foundation))
        trend = _trend(signal, mm_s, ZONE_BOUNDARIES[group, foundation][1], now_ns)
        if trend is not None:
            time_to_zone_c, trend_component = trend
            components.append(trend_component)
    components += _within_cap(
        (_nearness_component(signal, value) for signal, value in fresh), NEAR_PENALTY_CAP
    )
    components += _within_cap(
        (_deviation_component(signal, value) for signal, value in fresh), DEVIATION_PENALTY_CAP
    )

    listed = sorted((c for c in components if c.penalty > 0), key=lambda c: -c.penalty)
    remaining = 100 - sum(c.penalty for c in listed)
    # Half up (not Python's half to even), after shedding float noise from the 0.1 steps.
    score = min(100, max(0, math.floor(round(remaining, 6) + 0.5)))
    return Health(score, band_of(score), zone, listed, time_to_zone_c)


# --- the sentences -----------------------------------------------------------------------------


def _digits(value: float) -> int:
    """Decimals for a plain reading: none from 1000 up, 1 from 1 up, 2 below."""
    size = abs(value)
    return 0 if size >= 1000 else 1 if size >= 1 else 2


def _digits_apart(value: float, neighbours: Sequence[float], digits: int) -> int:
    """`digits`, or more (up to 6) while the value would print like a neighbour it is not:
    4.46 next to a limit of 4.5 reads "4.46", never "4.5"."""
    while digits < 6 and any(
        other != value and f"{other:.{digits}f}" == f"{value:.{digits}f}" for other in neighbours
    ):
        digits += 1
    return digits


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def _quantity(number: str, unit: str) -> str:
    return f"{number} {unit}" if unit else number


def _default_metric_label(metric: str) -> str:
    return metric.replace("_", " ").capitalize()


def component_detail(
    component: Component,
    gettext: Callable[[str], str] = identity,
    *,
    metric_label: Callable[[str], str] | None = None,
) -> str:
    """The component's sentence in the language of `gettext`. `metric_label` names a metric
    (the screens pass `webapp.twin.presenters.metric_label`); by default its code, readable."""
    params = component.params
    name = component.name
    label = metric_label or _default_metric_label
    if name == "vibration_zone":
        digits = _digits_apart(params["value"], params["boundaries"], 1)
        values = {"value": _number(params["value"], digits), "zone": params["zone"]}
        key = name
    elif name == "active_alarms":
        values = {priority: str(params[priority]) for priority in ("high", "medium", "low")}
        key = name
    elif name == "limit_nearness":
        value, threshold = params["value"], params["threshold"]
        digits = _digits_apart(value, [threshold], _digits(value))
        values = {
            "metric": label(params["metric"]),
            "value": _quantity(_number(value, digits), params["unit"]),
            "level": gettext(LEVEL_LABELS[params["level"]]),
            "threshold": _quantity(_number(threshold, digits), params["unit"]),
        }
        key = f"{name}/{params['state']}"
    elif name == "vibration_trend":
        values = {
            "rate": _number(params["rate"], 2),
            "boundary": _number(params["boundary"], 1),
            "hours": _number(params["hours"], 0),
        }
        key = name
    elif name == "baseline_deviation":
        unit = params["unit"]
        values = {
            "metric": label(params["metric"]),
            "value": _quantity(_number(params["value"], _digits(params["value"])), unit),
            "median": _quantity(_number(params["median"], _digits(params["median"])), unit),
            "z": f"{params['z']:+.1f}",
        }
        key = f"{name}/{'above' if params['z'] > 0 else 'below'}"
    else:
        raise ValueError(f"unknown health component {name!r}")
    return gettext(SENTENCES[key]) % values
