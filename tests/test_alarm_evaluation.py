"""Alarm evaluation (DESIGN.md §14) as a pure function: every rule pinned with readings whose
timestamps and values are written out here, so a test fails for one reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from webapp.alarms.evaluation import (
    Level,
    LimitRule,
    LimitState,
    Reading,
    Transition,
    evaluate,
    evaluate_all,
    ordering_problem,
)

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
ACTIVATED, CLEARED = Transition.activated, Transition.cleared


def at(seconds: float, value: float | None, good: bool = True) -> Reading:
    return Reading(T0 + timedelta(seconds=seconds), value, good)


def run(rule: LimitRule, readings: list[Reading], state: LimitState | None = None) -> list:
    """(seconds after T0, transition) for every transition."""
    _, found = evaluate_all(rule, state or LimitState(), readings)
    return [((reading.timestamp - T0).total_seconds(), transition) for reading, transition in found]


# --- activation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "value", "fires"),
    [
        (Level.hi, 10.0, True),  # at the threshold: ≥
        (Level.hi, 9.999, False),
        (Level.hihi, 10.0, True),
        (Level.lo, 10.0, True),  # at the threshold: ≤
        (Level.lo, 10.001, False),
        (Level.lolo, 9.0, True),
        (Level.hi, -1e9, False),
        (Level.lo, 1e9, False),
    ],
)
def test_the_threshold_itself_is_in_alarm(level: Level, value: float, fires: bool) -> None:
    rule = LimitRule(level, 10.0)
    assert run(rule, [at(0, value)]) == ([(0.0, ACTIVATED)] if fires else [])


def test_with_no_on_delay_the_first_reading_beyond_activates() -> None:
    rule = LimitRule(Level.hi, 10.0)
    assert run(rule, [at(0, 5), at(2, 11), at(4, 12)]) == [(2.0, ACTIVATED)]


def test_the_on_delay_needs_the_condition_held_by_reading_time() -> None:
    rule = LimitRule(Level.hi, 10.0, on_delay_seconds=30)
    held = [at(0, 11), at(10, 12), at(29, 11), at(30, 11), at(40, 12)]
    assert run(rule, held) == [(30.0, ACTIVATED)]


def test_a_dip_below_restarts_the_on_delay() -> None:
    rule = LimitRule(Level.hi, 10.0, on_delay_seconds=30)
    readings = [at(0, 11), at(20, 9.9), at(25, 11), at(50, 11), at(55, 11)]
    assert run(rule, readings) == [(55.0, ACTIVATED)]


def test_a_spike_shorter_than_the_on_delay_never_alarms() -> None:
    rule = LimitRule(Level.hi, 10.0, on_delay_seconds=120)
    spike = [at(s, 14.0 if 60 <= s <= 150 else 6.0) for s in range(0, 600, 2)]
    assert run(rule, spike) == []
    assert run(LimitRule(Level.hi, 10.0), spike) == [(60.0, ACTIVATED), (152.0, CLEARED)]


# --- return to normal: deadband and off-delay ---------------------------------------------------


def test_a_high_alarm_clears_only_below_threshold_minus_deadband() -> None:
    rule = LimitRule(Level.hi, 10.0, deadband=0.5)
    readings = [at(0, 11), at(2, 9.8), at(4, 9.5), at(6, 9.49)]
    assert run(rule, readings) == [(0.0, ACTIVATED), (6.0, CLEARED)]


def test_a_low_alarm_clears_only_above_threshold_plus_deadband() -> None:
    rule = LimitRule(Level.lo, 2.0, deadband=0.25)
    readings = [at(0, 1.5), at(2, 2.1), at(4, 2.25), at(6, 2.26)]
    assert run(rule, readings) == [(0.0, ACTIVATED), (6.0, CLEARED)]


def test_noise_around_the_threshold_chatters_without_deadband_and_not_with_it() -> None:
    noisy = [at(2 * i, 10.0 + (0.3 if i % 2 else -0.3)) for i in range(20)]  # 9.7, 10.3, …
    assert len(run(LimitRule(Level.hi, 10.0), noisy)) == 19, "every reading but the first"
    assert run(LimitRule(Level.hi, 10.0, deadband=0.5), noisy) == [(2.0, ACTIVATED)]


def test_the_off_delay_needs_normal_held() -> None:
    rule = LimitRule(Level.hi, 10.0, off_delay_seconds=20)
    readings = [at(0, 11), at(10, 9), at(20, 11), at(30, 9), at(49, 9), at(50, 9)]
    assert run(rule, readings) == [(0.0, ACTIVATED), (50.0, CLEARED)]


def test_between_clear_point_and_threshold_an_alarm_holds_and_its_off_delay_restarts() -> None:
    rule = LimitRule(Level.hi, 10.0, deadband=1.0, off_delay_seconds=10)
    readings = [at(0, 11), at(5, 8), at(10, 9.5), at(20, 8), at(29, 8), at(30, 8)]
    assert run(rule, readings) == [(0.0, ACTIVATED), (30.0, CLEARED)]


def test_an_alarm_activates_again_after_clearing() -> None:
    rule = LimitRule(Level.hi, 10.0)
    readings = [at(0, 11), at(2, 9), at(4, 11), at(6, 9)]
    assert run(rule, readings) == [(0, ACTIVATED), (2, CLEARED), (4, ACTIVATED), (6, CLEARED)]


# --- what changes nothing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "unusable", [at(10, 50.0, good=False), at(10, None), at(10, float("nan")), at(10, float("inf"))]
)
def test_a_bad_reading_changes_no_state(unusable: Reading) -> None:
    rule = LimitRule(Level.hi, 10.0, on_delay_seconds=20)
    before = LimitState(False, T0, T0)
    after, transition = evaluate(rule, before, unusable)
    assert transition is None
    assert (after.active, after.since) == (before.active, before.since), "the delay runs on"
    # …and it neither starts nor stops anything in a sequence.
    assert run(rule, [at(0, 11), unusable, at(20, 11)]) == [(20.0, ACTIVATED)]
    assert run(LimitRule(Level.hi, 10.0), [at(0, 11), at(10, 5.0, good=False)]) == [(0, ACTIVATED)]


def test_a_reading_is_never_evaluated_twice_nor_out_of_order() -> None:
    rule = LimitRule(Level.hi, 10.0)
    state, _ = evaluate(rule, LimitState(), at(10, 5))
    for repeat in (at(10, 50), at(5, 50)):
        again, transition = evaluate(rule, state, repeat)
        assert (again, transition) == (state, None)


def test_levels_are_independent() -> None:
    """A reading above hihi is also above hi: each limit activates on its own."""
    readings = [at(0, 5), at(2, 8), at(4, 12), at(6, 8), at(8, 5)]
    assert run(LimitRule(Level.hi, 7.0), readings) == [(2.0, ACTIVATED), (8.0, CLEARED)]
    assert run(LimitRule(Level.hihi, 10.0), readings) == [(4.0, ACTIVATED), (6.0, CLEARED)]


def test_an_active_state_from_the_database_is_taken_as_is() -> None:
    """After a restart the scanner knows only that the occurrence is active: no duplicate
    activation, and a normal reading clears it."""
    rule = LimitRule(Level.hi, 10.0)
    restarted = LimitState(active=True)
    assert run(rule, [at(0, 12), at(2, 13)], restarted) == []
    assert run(rule, [at(0, 12), at(2, 8)], restarted) == [(2.0, CLEARED)]


# --- the order of a signal's limits ------------------------------------------------------------


@pytest.mark.parametrize(
    ("thresholds", "problem"),
    [
        ({Level.lolo: 1, Level.lo: 2, Level.hi: 8, Level.hihi: 9}, None),
        ({Level.hi: 8}, None),
        ({Level.lo: 2, Level.hihi: 9}, None),
        ({Level.hi: 8, Level.hihi: 8}, "hi threshold (8) must be below the hihi"),
        ({Level.hi: 9, Level.hihi: 8}, "hi threshold (9) must be below the hihi"),
        ({Level.lo: 5, Level.hi: 4}, "lo threshold (5) must be below the hi"),
        ({Level.lolo: 3, Level.lo: 2}, "lolo threshold (3) must be below the lo"),
        ({Level.lolo: 3, Level.hi: 1}, "lolo threshold (3) must be below the hi"),
    ],
)
def test_lolo_lo_hi_hihi_must_ascend(thresholds: dict, problem: str | None) -> None:
    found = ordering_problem(thresholds)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
