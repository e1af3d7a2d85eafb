"""A signal's engineering range (DESIGN.md §18), the pure function: the configured range when
set; else limits on both sides widened by 10 % of their span; else the 7-day min…max (with
one-sided limits kept in view) rounded out to 1-2-5 steps; else one-sided limits alone; never
degenerate. Every expected value is worked out by hand in the comment
beside it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from webapp.twin.ranges import engineering_range, needs_history, nice_range

NO_LIMITS: dict[str, float] = {}
FOUR_LIMITS = {"lolo": 10.0, "lo": 20.0, "hi": 80.0, "hihi": 90.0}


# --- 1. configured ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high"),
    [(0.0, 10.0), (-40.0, 120.0), (0.001, 0.002), (-5.0, -1.0), (1e6, 1e9)],
)
def test_a_configured_range_is_used_as_it_is(low: float, high: float) -> None:
    assert engineering_range(low, high, FOUR_LIMITS, [1.0, 2.0]) == (low, high, "configured")
    assert engineering_range(low, high, NO_LIMITS, []) == (low, high, "configured")


def test_a_configured_range_wins_over_limits_and_history() -> None:
    # The history reads far outside it: the axis stays put, the line runs off the plot.
    assert engineering_range(0.0, 10.0, {"hi": 50.0}, [100.0, 200.0]) == (0.0, 10.0, "configured")


@pytest.mark.parametrize(
    ("low", "high"), [(5.0, 5.0), (10.0, 0.0), (math.nan, 10.0), (0.0, math.inf)]
)
def test_a_pair_that_cannot_be_an_axis_counts_as_unset(low: float, high: float) -> None:
    expected = (2.0, 98.0, "limits")  # FOUR_LIMITS below, as if nothing were configured
    if math.isnan(low) or math.isinf(high):
        # One end is still a usable setting: kept, the other from the limits.
        expected = (2.0, 10.0, "configured") if math.isnan(low) else (0.0, 98.0, "configured")
    assert engineering_range(low, high, FOUR_LIMITS, []) == pytest.approx(expected)


def test_one_configured_end_keeps_it_and_takes_the_other_from_what_else_is_known() -> None:
    # Limits 20 … 80 widen to 14 … 86; the low end is configured at 0.
    assert engineering_range(0.0, None, {"lo": 20.0, "hi": 80.0}, []) == pytest.approx(
        (0.0, 86.0, "configured")
    )
    # High configured at 100, low from the limits (14).
    assert engineering_range(None, 100.0, {"lo": 20.0, "hi": 80.0}, []) == pytest.approx(
        (14.0, 100.0, "configured")
    )
    # History 3.2 … 7.9 rounds out to 3 … 8; only the high end (12) is configured.
    assert engineering_range(None, 12.0, NO_LIMITS, [3.2, 7.9]) == (3.0, 12.0, "configured")


def test_one_configured_end_on_the_wrong_side_of_the_other_moves_it_a_span_away() -> None:
    # History 20 … 30 → 20 … 30 (step 2); a configured high of 10 is below 20: the low end is
    # one derived span (10) below it.
    assert engineering_range(None, 10.0, NO_LIMITS, [20.0, 30.0]) == (0.0, 10.0, "configured")
    # Limits 20 … 80 → 14 … 86 (span 72); a configured low of 100 is above 86: high = 172.
    assert engineering_range(100.0, None, {"lo": 20.0, "hi": 80.0}, []) == pytest.approx(
        (100.0, 172.0, "configured")
    )


# --- 2. limits ---------------------------------------------------------------------------------


def test_lolo_to_hihi_widened_by_a_tenth_of_their_span() -> None:
    # 10 … 90, span 80, 8 on each side.
    assert engineering_range(None, None, FOUR_LIMITS, [500.0]) == (2.0, 98.0, "limits")


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"lo": 2.0, "hi": 6.0}, (1.6, 6.4)),  # span 4 → 0.4 each side
        ({"lolo": -30.0, "hi": 70.0}, (-40.0, 80.0)),  # span 100 → 10
        ({"lo": 0.0, "hihi": 1000.0}, (-100.0, 1100.0)),  # span 1000 → 100
        ({"lolo": 10.0, "hihi": 90.0}, (2.0, 98.0)),  # span 80 → 8
        ({"lolo": 1.0, "lo": 1.5, "hi": 2.5}, (0.85, 2.65)),  # span 1.5 → 0.15
    ],
)
def test_limits_on_both_sides_lowest_to_highest_whatever_levels_exist(
    limits: dict[str, float], expected: tuple[float, float]
) -> None:
    # The history is ignored: limits on both sides say where the signal belongs.
    assert engineering_range(None, None, limits, [-1e3, 1e3]) == pytest.approx(
        (*expected, "limits")
    )


def test_limits_on_one_side_stay_in_view_of_the_history() -> None:
    # Vibration with hi 4.5 and hihi 7.1 (ISO 20816-3 B/C, C/D) reading 0.8 … 3.2: drawn from
    # 0.8 … 7.1, span 6.3, step ≥ 1.26 → 2: 0 … 8. Between the two limits alone (4.24 …
    # 7.36) its normal readings would all be off the plot.
    assert engineering_range(None, None, {"hi": 4.5, "hihi": 7.1}, [0.8, 3.2]) == (
        0.0, 8.0, "history"
    )
    # Low limits 1 and 2 under readings 5 … 9: 1 … 9, span 8, step 2: 0 … 10.
    assert engineering_range(None, None, {"lolo": 1.0, "lo": 2.0}, [5.0, 9.0]) == (
        0.0, 10.0, "history"
    )


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"hi": 4.5, "hihi": 7.1}, (4.24, 7.36)),  # span 2.6 → 0.26 each side
        ({"lolo": 1.0, "lo": 2.0}, (0.9, 2.1)),  # span 1 → 0.1
    ],
)
def test_limits_on_one_side_without_history_are_the_range(
    limits: dict[str, float], expected: tuple[float, float]
) -> None:
    assert engineering_range(None, None, limits, []) == pytest.approx((*expected, "limits"))


def test_limits_that_are_not_numbers_are_ignored() -> None:
    # The NaN is left out: 20 … 80 → 14 … 86.
    limits = {"lolo": math.nan, "lo": 20.0, "hi": 80.0, "hihi": math.inf}
    assert engineering_range(None, None, limits, []) == pytest.approx((14.0, 86.0, "limits"))


def test_a_lone_limit_stays_in_view_of_the_history() -> None:
    # History 0.8 … 3.2 with hi at 4.5: 0.8 … 4.5, span 3.7, step ≥ 0.74 → 1: 0 … 5.
    assert engineering_range(None, None, {"hi": 4.5}, [0.8, 3.2]) == (0.0, 5.0, "history")
    # Below the history too: lo 1 with history 5 … 9 → 1 … 9, span 8, step 2: 0 … 10.
    assert engineering_range(None, None, {"lo": 1.0}, [5.0, 9.0]) == (0.0, 10.0, "history")


def test_a_lone_limit_without_history_gets_a_range_around_it() -> None:
    # 4.5 ± 0.45 → 4.05 … 4.95, span 0.9, step ≥ 0.18 → 0.2: 4.0 … 5.0.
    assert engineering_range(None, None, {"hi": 4.5}, []) == (4.0, 5.0, "limits")
    # Two levels at one threshold are one value: 0 ± 1 → −1 … 1, step ≥ 0.4 → 0.5.
    assert engineering_range(None, None, {"hi": 0.0, "hihi": 0.0}, []) == (-1.0, 1.0, "limits")
    # Both sides at one threshold span nothing either: 5 ± 0.5, step ≥ 0.2 → 0.2: 4.4 … 5.6.
    assert engineering_range(None, None, {"lo": 5.0, "hi": 5.0}, []) == (4.4, 5.6, "limits")


# --- 3. history --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([3.2, 7.9, 5.0], (3.0, 8.0)),  # span 4.7, step ≥ 0.94 → 1
        ([0.12, 0.47], (0.1, 0.5)),  # span 0.35, step ≥ 0.07 → 0.1
        ([101.0, 149.0], (100.0, 150.0)),  # span 48, step ≥ 9.6 → 10
        ([-3.7, 12.1], (-5.0, 15.0)),  # span 15.8, step ≥ 3.16 → 5
        ([0.0, 10.0], (0.0, 10.0)),  # already on steps of 2
        ([1000.0, 1003.0], (1000.0, 1003.0)),  # span 3, step ≥ 0.6 → 1
        ([0.3, 0.6], (0.3, 0.6)),  # 0.3 / 0.1 is not quite 3 in floating point: still 0.3
        ([0.0012, 0.0018], (0.0012, 0.0018)),  # span 0.0006, step ≥ 0.00012 → 0.0002
        ([-250.0, -120.0], (-250.0, -100.0)),  # span 130, step ≥ 26 → 50
        ([7.0, 7.1], (7.0, 7.1)),  # span 0.1, step ≥ 0.02 → 0.02
        ([42.0, 1234.0], (0.0, 1500.0)),  # span 1192, step ≥ 238.4 → 500
    ],
)
def test_the_7_day_min_and_max_rounded_outward_to_1_2_5_steps(
    values: list[float], expected: tuple[float, float]
) -> None:
    assert engineering_range(None, None, NO_LIMITS, values) == (*expected, "history")


def test_history_may_be_a_numpy_array_and_its_gaps_are_ignored() -> None:
    values = np.array([np.nan, 3.2, np.inf, 7.9, -np.inf, np.nan])
    assert engineering_range(None, None, NO_LIMITS, values) == (3.0, 8.0, "history")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (50.0, (44.0, 56.0)),  # 45 … 55, span 10, step 2: 44 … 56
        (0.0, (-1.0, 1.0)),  # ±1 around zero, step 0.5
        (-20.0, (-22.0, -18.0)),  # −22 … −18, span 4, step 1
        (4.5, (4.0, 5.0)),  # 4.05 … 4.95, step 0.2
        (1013.25, (900.0, 1150.0)),  # 911.925 … 1114.575, span 202.65, step 50
    ],
)
def test_a_flat_history_gets_a_sensible_range_around_its_value(
    value: float, expected: tuple[float, float]
) -> None:
    assert engineering_range(None, None, NO_LIMITS, [value] * 5) == (*expected, "history")


# --- 4. nothing known --------------------------------------------------------------------------


@pytest.mark.parametrize("history", [[], [math.nan], np.array([]), np.array([np.nan, np.inf])])
def test_no_limits_and_no_history_give_zero_to_one(history: object) -> None:
    assert engineering_range(None, None, NO_LIMITS, history) == (0.0, 1.0, "default")


# --- never degenerate --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [[1.7e308], [-1.79e308, 1.79e308], [1.0e308, 1.79e308], [5e-324], [5e-324, 1e-323],
     [1e-310, 3e-310], [-0.0], [1e15, 1e15 + 2]],
)
def test_extreme_values_still_give_a_finite_range_with_low_below_high(
    values: list[float],
) -> None:
    low, high, source = engineering_range(None, None, NO_LIMITS, values)
    assert math.isfinite(low) and math.isfinite(high) and low < high
    assert low <= min(values) and max(values) <= high
    assert source == "history"


def test_extreme_limits_still_give_a_finite_range() -> None:
    low, high, source = engineering_range(None, None, {"lo": -1.7e308, "hi": 1.7e308}, [])
    assert (low, high, source) == (-1.7e308, 1.7e308, "limits")


def test_nice_range_rounds_outward_to_multiples_of_the_step() -> None:
    assert nice_range(3.2, 7.9) == (3.0, 8.0)
    assert nice_range(12.0, 12.0) == (10.5, 13.5)  # 10.8 … 13.2, span 2.4, step ≥ 0.48 → 0.5
    assert nice_range(0.61, 0.89) == (0.6, 0.9)  # span 0.28, step ≥ 0.056 → 0.1


# --- needs_history -----------------------------------------------------------------------------


def test_history_is_needed_only_when_neither_setting_nor_limits_fix_the_range() -> None:
    assert not needs_history(0.0, 10.0, NO_LIMITS)
    assert not needs_history(None, None, FOUR_LIMITS)
    assert not needs_history(0.0, None, {"lo": 1.0, "hi": 2.0})
    assert needs_history(None, None, NO_LIMITS)
    assert needs_history(None, None, {"hi": 4.5})  # a lone limit spans nothing
    assert needs_history(None, None, {"hi": 4.5, "hihi": 7.1})  # one side only
    assert needs_history(None, None, {"lo": 5.0, "hi": 5.0})
    assert not needs_history(None, None, {"lo": 1.0, "hihi": 2.0})
    assert needs_history(5.0, 5.0, NO_LIMITS)
    assert needs_history(0.0, None, NO_LIMITS)
