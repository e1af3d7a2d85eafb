"""EEMUA 191 / ISA-18.2 alarm figures (DESIGN.md §14) as pure functions, with hand-counted
expectations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from webapp.alarms.kpis import Activation, chattering_limits, figures, interval_counts

START = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)


def at(limit_id: int, minutes: float) -> Activation:
    return Activation(limit_id, START + timedelta(minutes=minutes))


def test_activations_fall_in_ten_minute_intervals_from_the_window_start() -> None:
    activations = [at(1, 0), at(1, 9.99), at(2, 10), at(3, 59.9), at(4, 60), at(5, -1)]
    assert interval_counts(activations, START, START + timedelta(hours=1)) == [2, 1, 0, 0, 0, 1]


def test_chattering_is_three_activations_of_one_limit_within_sixty_seconds() -> None:
    activations = [
        at(1, 0), at(1, 0.5), at(1, 1.0),  # 3 within exactly 60 s: chatters
        at(2, 0), at(2, 0.5), at(2, 1.01),  # 3 within 60.6 s: does not
        at(3, 5), at(3, 5.1),  # only 2
        at(4, 0), at(5, 0.1), at(6, 0.2),  # 3 different limits: not chattering
    ]
    assert chattering_limits(activations) == [1]


def test_figures_over_a_day() -> None:
    end = START + timedelta(hours=24)
    flood = [at(7, 612 + i * 0.5) for i in range(12)]  # 12 in 10:10–10:20: a flood
    steady = [at(limit_id, 60 * hour) for hour in range(24) for limit_id in (8, 9)]
    outside = [at(7, -5), at(7, 24 * 60 + 1)]
    found = figures(flood + steady + outside, START, end)
    total = 12 + 48
    assert found.activations == total
    assert found.per_10min_avg == total / (24 * 6)
    assert found.per_10min_peak == 12
    assert found.flood_intervals == 1
    assert found.chattering == [7]
    assert found.top == [(8, 24), (9, 24), (7, 12)]
    assert found.top10_share == 1.0


def test_top_ten_share_with_more_than_ten_bad_actors() -> None:
    activations = [at(limit_id, limit_id) for limit_id in range(1, 21)]
    activations += [at(1, 30), at(1, 31)]  # limit 1 has 3
    found = figures(activations, START, START + timedelta(hours=1))
    assert found.top[0] == (1, 3)
    assert len(found.top) == 10
    assert found.top10_share == (3 + 9) / 22


def test_an_empty_window_has_zero_figures_and_no_division_by_zero() -> None:
    found = figures([], START, START + timedelta(hours=1))
    assert (found.activations, found.per_10min_avg, found.per_10min_peak) == (0, 0.0, 0)
    assert (found.flood_intervals, found.chattering, found.top, found.top10_share) == (
        0, [], [], 0.0,
    )
