"""Asset health (DESIGN.md §15) as pure functions: every rule pinned with inputs and expected
numbers written out here, so a test fails for one reason."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from webapp.health.model import (
    AssetHealthInput,
    Baseline,
    Component,
    Health,
    SignalHealthInput,
    assess,
    band_of,
    baseline,
    component_detail,
    foundation_of,
    identity,
    latest_good,
    machine_group_of,
    to_mm_per_s,
    vibration_zone,
    zone_penalty,
)
from webapp.series import QUALITY_BAD, QUALITY_GOOD, QUALITY_UNCERTAIN, Series
from webapp.templating import _load_translations

NOW = 1_796_000_400_000_000_000  # ns
MINUTE = 60 * 1_000_000_000
HOUR = 60 * MINUTE

# ISO 20816-3 boundaries A/B, B/C, C/D in mm/s RMS (DESIGN.md §15), by (group, foundation).
ISO_TABLE = [
    (1, "rigid", 2.3, 4.5, 7.1),
    (1, "flexible", 3.5, 7.1, 11.0),
    (2, "rigid", 1.4, 2.8, 4.5),
    (2, "flexible", 2.3, 4.5, 7.1),
]
COMBINATIONS = [(group, foundation) for group, foundation, *_ in ISO_TABLE]
JUST = 0.001  # mm/s: "just below" / "just above" a boundary


def signal(
    value: float | None,
    *,
    metric: str = "vibration_rms",
    unit: str | None = "mm/s",
    age_ns: int = 0,
    history: Series | None = None,
    base: Baseline | None = None,
    limits: dict[str, float] | None = None,
) -> SignalHealthInput:
    return SignalHealthInput(
        metric=metric,
        unit=unit,
        latest=None if value is None else (NOW - age_ns, value),
        history=history if history is not None else Series.empty(),
        baseline=base,
        limits=limits or {},
    )


def asset(
    *signals: SignalHealthInput,
    asset_type: str = "centrifugal_pump",
    group: int | None = None,
    foundation: str | None = None,
    alarms: tuple[str, ...] = (),
) -> AssetHealthInput:
    return AssetHealthInput(
        asset_type=asset_type,
        machine_group=group,
        foundation=foundation,
        signals=list(signals),
        active_alarm_priorities=list(alarms),
        now_ns=NOW,
    )


def vibration_alone(mm_s: float, group: int, foundation: str) -> Health:
    return assess(asset(signal(mm_s), group=group, foundation=foundation))


def penalties(health: Health) -> list[tuple[str, float]]:
    return [(component.name, component.penalty) for component in health.components]


def component(health: Health, name: str) -> Component:
    found = [c for c in health.components if c.name == name]
    assert len(found) == 1, f"one {name} component in {penalties(health)}"
    return found[0]


def temperature(
    value: float,
    *,
    base: Baseline | None = None,
    limits: dict[str, float] | None = None,
    age_ns: int = 0,
) -> SignalHealthInput:
    return signal(value, metric="temperature", unit="°C", base=base, limits=limits, age_ns=age_ns)


def ramp(start: float, per_hour: float, *, hours: float = 24, step_minutes: int = 10) -> Series:
    """A straight line ending at NOW: start at NOW − hours, rising per_hour."""
    steps = int(hours * 60 / step_minutes)
    timestamps = (
        NOW - int(hours * HOUR) + np.arange(steps + 1, dtype=np.int64) * (step_minutes * MINUTE)
    )
    elapsed_hours = (timestamps - timestamps[0]) / HOUR
    values = start + per_hour * elapsed_hours
    return Series(timestamps, values, np.full(len(timestamps), QUALITY_GOOD, dtype=np.uint8))


# --- the zone table ----------------------------------------------------------------------------


ZONE_CASES = [
    case
    for group, foundation, a_b, b_c, c_d in ISO_TABLE
    for case in (
        (group, foundation, a_b - JUST, "A"),
        (group, foundation, a_b, "B"),
        (group, foundation, b_c - JUST, "B"),
        (group, foundation, b_c, "C"),
        (group, foundation, c_d - JUST, "C"),
        (group, foundation, c_d, "D"),
    )
]


@pytest.mark.parametrize(("group", "foundation", "mm_s", "zone"), ZONE_CASES)
def test_zone_boundary_belongs_to_the_upper_zone(
    group: int, foundation: str, mm_s: float, zone: str
) -> None:
    assert vibration_zone(mm_s, group, foundation) == zone


@pytest.mark.parametrize(("group", "foundation"), COMBINATIONS)
def test_zero_vibration_is_zone_a(group: int, foundation: str) -> None:
    assert vibration_zone(0.0, group, foundation) == "A"


# --- bands -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (100, "good"),
        (85, "good"),
        (84, "watch"),
        (65, "watch"),
        (64, "alert"),
        (40, "alert"),
        (39, "danger"),
        (0, "danger"),
        (None, "no_data"),
    ],
)
def test_band_edges(score: int | None, band: str) -> None:
    assert band_of(score) == band


# --- the zone's guarantees, for every group and foundation -------------------------------------


@pytest.mark.parametrize(("group", "foundation", "a_b", "b_c", "c_d"), ISO_TABLE)
def test_zone_a_alone_keeps_the_score_good(
    group: int, foundation: str, a_b: float, b_c: float, c_d: float
) -> None:
    health = vibration_alone(a_b - JUST, group, foundation)
    assert (health.zone, health.score is not None and health.score >= 85) == ("A", True)


@pytest.mark.parametrize(("group", "foundation", "a_b", "b_c", "c_d"), ISO_TABLE)
@pytest.mark.parametrize("past", [0.0, JUST])
def test_crossing_b_c_alone_scores_below_65(
    group: int, foundation: str, a_b: float, b_c: float, c_d: float, past: float
) -> None:
    health = vibration_alone(b_c + past, group, foundation)
    assert (health.zone, health.score is not None and health.score < 65) == ("C", True)


@pytest.mark.parametrize(("group", "foundation", "a_b", "b_c", "c_d"), ISO_TABLE)
@pytest.mark.parametrize("past", [0.0, JUST, 10.0])
def test_crossing_c_d_alone_scores_below_40(
    group: int, foundation: str, a_b: float, b_c: float, c_d: float, past: float
) -> None:
    health = vibration_alone(c_d + past, group, foundation)
    assert (health.zone, health.score is not None and health.score < 40) == ("D", True)


@pytest.mark.parametrize(("group", "foundation", "a_b", "b_c", "c_d"), ISO_TABLE)
def test_zone_penalty_has_no_jump_at_any_boundary(
    group: int, foundation: str, a_b: float, b_c: float, c_d: float
) -> None:
    jumps = [
        abs(zone_penalty(b, group, foundation) - zone_penalty(b - 1e-9, group, foundation))
        for b in (a_b, b_c, c_d)
    ]
    assert max(jumps) < 1e-6


@pytest.mark.parametrize(("group", "foundation"), COMBINATIONS)
def test_zone_penalty_is_continuous_and_never_falls_as_vibration_rises(
    group: int, foundation: str
) -> None:
    # 0.001 mm/s steps from 0 to 20 mm/s. The steepest segment, the upper half of group 2
    # rigid's narrow zone B, climbs 30 per mm/s: 0.03 a step. A jump would be far more.
    steps = np.diff([zone_penalty(mm_s, group, foundation) for mm_s in np.arange(0, 20, 0.001)])
    assert (steps.min() >= 0, steps.max() < 0.05) == (True, True)


def test_zone_penalty_is_nothing_low_in_zone_a_and_capped_deep_in_zone_d() -> None:
    # Group 1 rigid: nothing up to 1.15 (half of A/B), 90 from 10.65 (1.5 × C/D) on.
    assert [zone_penalty(mm_s, 1, "rigid") for mm_s in (0.0, 1.15, 10.65, 50.0)] == [
        0.0,
        0.0,
        90.0,
        90.0,
    ]


def test_the_worst_of_several_vibration_signals_counts() -> None:
    # Group 2 rigid: 1.0 mm/s is zone A, 3.0 mm/s zone C.
    assert assess(asset(signal(1.0), signal(3.0), group=2)).zone == "C"


def test_no_vibration_signal_means_no_zone() -> None:
    health = assess(asset(temperature(70.0)))
    assert (health.score, health.zone) == (100, None)


# --- active alarms -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alarms", "penalty"),
    [
        (("high",), 25.0),
        (("medium",), 12.0),
        (("low",), 5.0),
        (("high", "medium", "low", "low"), 47.0),
        (("high", "high", "high"), 60.0),  # capped
    ],
)
def test_active_alarms_by_priority(alarms: tuple[str, ...], penalty: float) -> None:
    health = assess(asset(temperature(70.0), alarms=alarms))
    assert penalties(health) == [("active_alarms", penalty)]


def test_alarm_penalty_is_taken_off_the_score() -> None:
    assert assess(asset(temperature(70.0), alarms=("high", "low"))).score == 70


# --- nearness to limits ------------------------------------------------------------------------

# Median 70 and MAD 10 (robust σ 14.8): values up to 114 stay within 3σ, so no deviation here.
NORMAL = Baseline(median=70.0, mad=10.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (87.9, []),  # the way from 70 to 90 is 20: its last 10 % starts at 88
        (89.0, [("limit_nearness", 5.0)]),
        (90.0, [("limit_nearness", 10.0)]),
        (95.0, [("limit_nearness", 10.0)]),  # reached: stays full, as the alarm trips
    ],
)
def test_nearness_grows_towards_a_high_limit(
    value: float, expected: list[tuple[str, float]]
) -> None:
    health = assess(asset(temperature(value, base=NORMAL, limits={"hi": 90.0})))
    assert penalties(health) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (52.1, []),  # the way from 70 down to 50 is 20: its last 10 % starts at 52
        (51.0, [("limit_nearness", 5.0)]),
        (50.0, [("limit_nearness", 10.0)]),
    ],
)
def test_nearness_grows_towards_a_low_limit(
    value: float, expected: list[tuple[str, float]]
) -> None:
    health = assess(asset(temperature(value, base=NORMAL, limits={"lo": 50.0})))
    assert penalties(health) == expected


def test_nearness_without_a_baseline_measures_from_the_other_limit() -> None:
    # lo 20 → hi 100: the last 10 % of the way to hi starts at 92; 96 is half of it.
    health = assess(asset(temperature(96.0, limits={"lo": 20.0, "hi": 100.0})))
    assert penalties(health) == [("limit_nearness", 5.0)]


def test_nearness_needs_somewhere_to_measure_from() -> None:
    health = assess(asset(temperature(99.0, limits={"hi": 100.0})))
    assert penalties(health) == []


@pytest.mark.parametrize(("value", "level"), [(100.0, "hi"), (104.0, "hi"), (-3.0, "lo")])
def test_a_limit_reached_counts_even_with_nothing_to_measure_from(
    value: float, level: str
) -> None:
    health = assess(asset(temperature(value, limits={level: 100.0 if level == "hi" else 0.0})))
    assert penalties(health) == [("limit_nearness", 10.0)]
    assert component(health, "limit_nearness").params["state"] == "reached"


def test_nearness_names_the_most_severe_limit_reached() -> None:
    health = assess(asset(temperature(100.0, base=NORMAL, limits={"hi": 90.0, "hihi": 100.0})))
    assert component(health, "limit_nearness").params["level"] == "hihi"


def test_nearness_of_several_metrics_is_capped() -> None:
    health = assess(
        asset(
            temperature(90.0, base=NORMAL, limits={"hi": 90.0}),
            signal(90.0, metric="pressure", unit="bar", base=NORMAL, limits={"hi": 90.0}),
            signal(90.0, metric="power", unit="kW", base=NORMAL, limits={"hi": 90.0}),
        )
    )
    assert penalties(health) == [
        ("limit_nearness", 10.0),
        ("limit_nearness", 10.0),
        ("limit_nearness", 5.0),
    ]


# --- the vibration trend -----------------------------------------------------------------------


def rising_pump(history: Series, latest: float = 3.2) -> Health:
    """Group 1 rigid (B/C 4.5 mm/s)."""
    return assess(asset(signal(latest, history=history), group=1, foundation="rigid"))


def test_rising_vibration_gives_the_hours_until_zone_c() -> None:
    # 2.0 mm/s 24 h ago, +0.05 mm/s an hour: 3.2 now, (4.5 − 3.2) / 0.05 = 26 h to B/C.
    assert rising_pump(ramp(2.0, 0.05)).time_to_zone_c_hours == pytest.approx(26.0)


def test_rising_vibration_penalty_grows_as_zone_c_nears() -> None:
    # 26 h of the 72 h window: 20 × (1 − 26 / 72) = 12.78.
    assert component(rising_pump(ramp(2.0, 0.05)), "vibration_trend").penalty == 12.8


def test_trend_fits_good_points_only() -> None:
    history = ramp(2.0, 0.05)
    quality = history.quality.copy()
    values = history.values.copy()
    quality[::7] = QUALITY_BAD
    values[::7] = 40.0  # nonsense a failing sensor reports, flagged bad
    quality[3::7] = QUALITY_UNCERTAIN
    values[3::7] = 0.0
    health = rising_pump(Series(history.timestamps, values, quality))
    assert health.time_to_zone_c_hours == pytest.approx(26.0)


@pytest.mark.parametrize("per_hour", [0.0, -0.05])
def test_flat_or_falling_vibration_has_no_time_to_zone_c(per_hour: float) -> None:
    health = rising_pump(ramp(3.2 - 24 * per_hour, per_hour))
    assert (health.time_to_zone_c_hours, "vibration_trend" in dict(penalties(health))) == (
        None,
        False,
    )


def test_trend_over_too_short_a_span_is_ignored() -> None:
    # Steep, but seen over 2 hours only.
    assert rising_pump(ramp(2.2, 0.5, hours=2)).time_to_zone_c_hours is None


def test_trend_over_too_few_points_is_ignored() -> None:
    # Seven points, four hours apart: a fit needs ten.
    assert rising_pump(ramp(2.0, 0.05, step_minutes=240)).time_to_zone_c_hours is None


def test_trend_beyond_a_week_is_no_forecast() -> None:
    # +0.001 mm/s an hour from 3.2: B/C in 1,300 h.
    assert rising_pump(ramp(3.176, 0.001)).time_to_zone_c_hours is None


def test_trend_far_from_zone_c_reports_the_time_without_a_penalty() -> None:
    # +0.01 mm/s an hour: (4.5 − 3.2) / 0.01 = 130 h, beyond the 72 h that cost points.
    health = rising_pump(ramp(2.96, 0.01))
    assert (health.time_to_zone_c_hours, "vibration_trend" in dict(penalties(health))) == (
        pytest.approx(130.0),
        False,
    )


def test_no_time_to_zone_c_once_in_zone_c() -> None:
    assert rising_pump(ramp(3.6, 0.05), latest=4.8).time_to_zone_c_hours is None


class NotIterable(np.ndarray):
    """An array a per-point Python loop would trip over."""

    def __iter__(self):  # type: ignore[no-untyped-def]
        raise AssertionError("the health model iterated over a series point by point")


def test_a_large_history_is_assessed_without_a_per_point_loop() -> None:
    steps = 10_000
    timestamps = NOW - 24 * HOUR + np.arange(steps, dtype=np.int64) * (24 * HOUR // (steps - 1))
    values = 2.0 + 0.05 * (timestamps - timestamps[0]) / HOUR
    series = Series(
        timestamps.view(NotIterable),
        values.view(NotIterable),
        np.zeros(steps, dtype=np.uint8).view(NotIterable),
    )
    assert rising_pump(series).time_to_zone_c_hours == pytest.approx(26.0)


# --- baseline deviation ------------------------------------------------------------------------


def test_baseline_is_median_and_mad_of_the_finite_values() -> None:
    values = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, np.nan], dtype=np.float64)
    # Median 5.5; distances 4.5 3.5 2.5 1.5 0.5 0.5 1.5 2.5 3.5 4.5 → MAD 2.5.
    assert baseline(values) == Baseline(median=5.5, mad=2.5)


def test_baseline_needs_ten_values() -> None:
    assert baseline(np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, np.nan], dtype=np.float64)) is None


def test_baseline_of_a_constant_signal_is_none() -> None:
    assert baseline(np.full(50, 4.2)) is None


# Median 70, MAD 1: robust σ = 1.4826.
STEADY = Baseline(median=70.0, mad=1.0)


def test_drift_is_flagged_before_any_limit_trips() -> None:
    # 80 is far below hi 120 (nearness starts at 115), but z = 10 / 1.4826 = 6.745:
    # 3 × (6.745 − 3) = 11.2.
    health = assess(asset(temperature(80.0, base=STEADY, limits={"hi": 120.0})))
    assert penalties(health) == [("baseline_deviation", 11.2)]


def test_drift_downwards_counts_too() -> None:
    health = assess(asset(temperature(60.0, base=STEADY, limits={"lo": 20.0})))
    assert penalties(health) == [("baseline_deviation", 11.2)]


def test_within_three_robust_sigma_is_normal() -> None:
    # z = 4 / 1.4826 = 2.70.
    assert penalties(assess(asset(temperature(74.0, base=STEADY)))) == []


def test_deviation_penalty_is_capped_per_metric() -> None:
    assert penalties(assess(asset(temperature(100.0, base=STEADY)))) == [
        ("baseline_deviation", 15.0)
    ]


# --- no data -----------------------------------------------------------------------------------


def test_a_reading_ten_minutes_old_still_counts() -> None:
    assert assess(asset(temperature(70.0, age_ns=10 * MINUTE))).score == 100


def test_no_good_reading_within_ten_minutes_is_no_data() -> None:
    health = assess(asset(signal(9.0, age_ns=10 * MINUTE + 1), alarms=("high",)))
    assert health == Health(
        score=None, band="no_data", zone=None, components=[], time_to_zone_c_hours=None
    )


def test_a_signal_without_any_reading_is_no_data() -> None:
    assert assess(asset(signal(None))).band == "no_data"


def test_an_asset_without_signals_is_no_data() -> None:
    assert assess(asset()).band == "no_data"


def test_a_stale_signal_is_left_out_while_another_is_fresh() -> None:
    health = assess(asset(signal(9.0, age_ns=HOUR), temperature(70.0)))
    assert (health.score, health.zone) == (100, None)


def test_a_bad_latest_reading_does_not_count() -> None:
    series = Series(
        np.array([NOW - 11 * MINUTE, NOW - MINUTE], dtype=np.int64),
        np.array([3.0, 3.1]),
        np.array([QUALITY_GOOD, QUALITY_BAD], dtype=np.uint8),
    )
    latest = latest_good(series, NOW)
    health = assess(asset(SignalHealthInput("vibration_rms", "mm/s", latest, series, None, {})))
    assert (latest, health.band) == ((NOW - 11 * MINUTE, 3.0), "no_data")


def test_latest_good_ignores_readings_after_now_and_non_finite_values() -> None:
    series = Series(
        np.array([NOW - 2 * MINUTE, NOW - MINUTE, NOW + MINUTE], dtype=np.int64),
        np.array([3.0, np.nan, 3.3]),
        np.full(3, QUALITY_GOOD, dtype=np.uint8),
    )
    assert latest_good(series, NOW) == (NOW - 2 * MINUTE, 3.0)


# --- units, machine group and foundation -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "mm_s"),
    [
        (4.5, "mm/s", 4.5),
        (4.5, "mm/s RMS", 4.5),
        (4.5, "mm/s (rms)", 4.5),
        (0.2, "in/s", 5.08),
        (0.2, "in/s RMS", 5.08),
        (0.2, "ips", 5.08),
    ],
)
def test_vibration_units(value: float, unit: str, mm_s: float) -> None:
    assert to_mm_per_s(value, unit) == pytest.approx(mm_s)


@pytest.mark.parametrize("unit", [None, "", "g", "mm/s pk", "in/s pk-pk", "um"])
def test_unknown_vibration_units_give_no_value(unit: str | None) -> None:
    assert to_mm_per_s(4.5, unit) is None


def test_vibration_in_inches_per_second_is_zoned_in_mm_per_second() -> None:
    # 0.2 in/s = 5.08 mm/s: zone C for group 1 rigid (4.5 … 7.1).
    health = assess(asset(signal(0.2, unit="in/s"), group=1, foundation="rigid"))
    assert health.zone == "C"


def test_vibration_in_an_unknown_unit_has_no_zone() -> None:
    assert assess(asset(signal(0.2, unit="g"))).zone is None


@pytest.mark.parametrize(
    ("asset_type", "machine_group", "expected"),
    [
        ("gas_compressor", None, 1),
        ("gas_turbine", None, 1),
        ("reciprocating_compressor", None, 1),
        ("steam_turbine", None, 1),
        ("centrifugal_pump", None, 2),
        ("heat_exchanger", None, 2),
        ("gas_compressor", 2, 2),  # the asset's own group wins
        ("centrifugal_pump", 1, 1),
    ],
)
def test_machine_group(asset_type: str, machine_group: int | None, expected: int) -> None:
    assert machine_group_of(asset_type, machine_group) == expected


@pytest.mark.parametrize(
    ("foundation", "expected"),
    [(None, "rigid"), ("rigid", "rigid"), ("flexible", "flexible"), (" Flexible", "flexible")],
)
def test_foundation(foundation: str | None, expected: str) -> None:
    assert foundation_of(foundation) == expected


@pytest.mark.parametrize(
    ("asset_type", "zone"),
    [("centrifugal_pump", "C"), ("gas_compressor", "B")],  # group 2 rigid vs group 1 rigid
)
def test_zone_uses_the_default_group_and_foundation(asset_type: str, zone: str) -> None:
    assert assess(asset(signal(3.0), asset_type=asset_type)).zone == zone


# --- the score as a whole ----------------------------------------------------------------------


def test_components_are_listed_largest_first_and_add_up_to_the_score() -> None:
    # Group 2 rigid, 3.65 mm/s: halfway from B/C (36) to C/D (61) = 48.5; one medium alarm 12;
    # temperature z 6.745 → 11.2.
    health = assess(
        asset(signal(3.65), temperature(80.0, base=STEADY), alarms=("medium",), group=2)
    )
    assert (penalties(health), health.score, health.band) == (
        [("vibration_zone", 48.5), ("active_alarms", 12.0), ("baseline_deviation", 11.2)],
        28,
        "danger",
    )


def test_score_never_goes_below_zero() -> None:
    health = assess(asset(signal(30.0), alarms=("high", "high", "high"), group=1))
    assert health.score == 0


def test_model_name() -> None:
    assert assess(asset(temperature(70.0))).model == "iso20816-v1"


# --- the sentences -----------------------------------------------------------------------------

LABELS = {"temperature": "Temperature"}
ARABIC_LABELS = {"temperature": "درجة الحرارة"}


def sentences(
    health: Health, labels: dict[str, str], gettext: Callable[[str], str] | None = None
) -> dict[str, str]:
    return {
        c.name: component_detail(c, gettext or identity, metric_label=labels.__getitem__)
        for c in health.components
    }


def example_health() -> Health:
    """One of each component: group 1 rigid, vibration 3.2 mm/s rising 0.05 mm/s an hour,
    an active high and two low alarms, temperature 89 near hi 90 (median 70, MAD 10), and
    pressure 80 bar against a median of 70 bar (MAD 1)."""
    return assess(
        asset(
            signal(3.2, history=ramp(2.0, 0.05)),
            temperature(89.0, base=NORMAL, limits={"hi": 90.0}),
            signal(80.0, metric="pressure", unit="bar", base=STEADY),
            alarms=("high", "low", "low"),
            group=1,
            foundation="rigid",
        )
    )


def test_sentences_in_english() -> None:
    labels = {**LABELS, "pressure": "Pressure"}
    assert sentences(example_health(), labels) == {
        "vibration_zone": "Vibration 3.2 mm/s RMS is in ISO 20816-3 zone B",
        "active_alarms": "Active alarms — high: 1, medium: 0, low: 2",
        "limit_nearness": "Temperature at 89.0 °C is close to its high limit (90.0 °C)",
        "vibration_trend": (
            "Vibration is rising by 1.20 mm/s a day and would reach zone C (4.5 mm/s) in about 26 h"
        ),
        "baseline_deviation": (
            "Pressure at 80.0 bar is well above its 7-day median of 70.0 bar (robust z +6.7)"
        ),
    }


def test_sentence_names_a_metric_by_its_code_without_a_label() -> None:
    health = assess(asset(signal(60.0, metric="flow_rate", unit="m³/h", base=STEADY)))
    assert component_detail(health.components[0]) == (
        "Flow rate at 60.0 m³/h is well below its 7-day median of 70.0 m³/h (robust z -6.7)"
    )


def test_a_reached_limit_reads_as_reached() -> None:
    health = assess(asset(temperature(95.0, base=NORMAL, limits={"hi": 90.0})))
    assert component_detail(health.components[0], metric_label=LABELS.__getitem__) == (
        "Temperature at 95.0 °C has reached its high limit (90.0 °C)"
    )


def test_a_value_near_its_limit_never_prints_as_the_limit() -> None:
    health = assess(asset(temperature(89.96, base=NORMAL, limits={"hi": 90.0})))
    assert component_detail(health.components[0], metric_label=LABELS.__getitem__) == (
        "Temperature at 89.96 °C is close to its high limit (90.00 °C)"
    )


def test_sentences_in_arabic_from_the_apps_catalog() -> None:
    arabic = _load_translations()["ar"].gettext
    labels = {**ARABIC_LABELS, "pressure": "الضغط"}
    assert sentences(example_health(), labels, arabic) == {
        "vibration_zone": "يبلغ الاهتزاز 3.2 mm/s RMS، أي في المنطقة B وفق المعيار ISO 20816-3",
        "active_alarms": (
            "إنذارات نشطة — عالية الأولوية: 1، متوسطة الأولوية: 0، منخفضة الأولوية: 2"
        ),
        "limit_nearness": "درجة الحرارة: القيمة 89.0 °C قريبة من حدّ الإنذار «مرتفع» (90.0 °C)",
        "vibration_trend": (
            "يرتفع الاهتزاز بمقدار 1.20 mm/s يوميًا، وسيبلغ المنطقة C (4.5 mm/s) خلال 26 ساعة تقريبًا"
        ),
        "baseline_deviation": (
            "الضغط: القيمة 80.0 bar أعلى بكثير من وسيط آخر 7 أيام (70.0 bar)؛ "
            "الدرجة المعيارية المتينة z = +6.7"
        ),
    }
