"""Alarm evaluation (DESIGN.md §14): pure functions from a limit, its state and a reading to the
new state and at most one transition. No clock, no database: delays are timed by the
readings' own timestamps, so the same readings always give the same alarms.

- hi and hihi activate when value ≥ threshold, lo and lolo when value ≤ threshold, held for
  `on_delay_seconds` (0: the first such reading).
- They return to normal when value < threshold − deadband (hi, hihi) or > threshold + deadband
  (lo, lolo), held for `off_delay_seconds`. Between the two the alarm keeps its state
  (hysteresis), and a pending delay starts again.
- A bad reading (or none) changes nothing. Each limit is evaluated on its own: a reading above
  hihi is also above hi.
"""

from __future__ import annotations

import enum
import itertools
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


class Level(enum.StrEnum):
    hihi = "hihi"
    hi = "hi"
    lo = "lo"
    lolo = "lolo"

    @property
    def is_high(self) -> bool:
        return self in (Level.hihi, Level.hi)


# The order limits of one signal must keep: lolo < lo < hi < hihi.
LEVEL_ORDER = (Level.lolo, Level.lo, Level.hi, Level.hihi)


class Transition(enum.StrEnum):
    activated = "ACTIVATED"
    cleared = "CLEARED"


@dataclass(frozen=True, slots=True)
class LimitRule:
    level: Level
    threshold: float
    deadband: float = 0.0
    on_delay_seconds: float = 0.0
    off_delay_seconds: float = 0.0

    def breached_by(self, value: float) -> bool:
        return value >= self.threshold if self.level.is_high else value <= self.threshold

    def cleared_by(self, value: float) -> bool:
        if self.level.is_high:
            return value < self.threshold - self.deadband
        return value > self.threshold + self.deadband


@dataclass(frozen=True, slots=True)
class Reading:
    timestamp: datetime
    value: float | None
    good: bool = True  # False for a bad-quality reading ("uncertain" is a reading, "bad" is not)

    @property
    def usable(self) -> bool:
        return self.good and self.value is not None and math.isfinite(self.value)


@dataclass(frozen=True, slots=True)
class LimitState:
    """What the evaluation remembers of one limit between readings."""

    active: bool = False  # the condition is in alarm
    # Inactive: since when the condition has held (the on-delay runs); active: since when it
    # has been back to normal (the off-delay runs). None: no delay is running.
    since: datetime | None = None
    last_reading: datetime | None = None  # readings up to here were evaluated already


def evaluate(
    rule: LimitRule, state: LimitState, reading: Reading
) -> tuple[LimitState, Transition | None]:
    """One reading: the limit's next state and the transition it causes, if any."""
    if state.last_reading is not None and reading.timestamp <= state.last_reading:
        return state, None  # already seen (or older): never evaluated twice
    if not reading.usable:
        return replace(state, last_reading=reading.timestamp), None
    assert reading.value is not None
    moment = reading.timestamp
    if not state.active:
        if not rule.breached_by(reading.value):
            return LimitState(False, None, moment), None
        since = state.since or moment
        if moment - since >= timedelta(seconds=rule.on_delay_seconds):
            return LimitState(True, None, moment), Transition.activated
        return LimitState(False, since, moment), None
    if not rule.cleared_by(reading.value):
        return LimitState(True, None, moment), None
    since = state.since or moment
    if moment - since >= timedelta(seconds=rule.off_delay_seconds):
        return LimitState(False, None, moment), Transition.cleared
    return LimitState(True, since, moment), None


def evaluate_all(
    rule: LimitRule, state: LimitState, readings: list[Reading]
) -> tuple[LimitState, list[tuple[Reading, Transition]]]:
    """Readings in time order: the final state and every transition with its reading."""
    transitions: list[tuple[Reading, Transition]] = []
    for reading in readings:
        state, transition = evaluate(rule, state, reading)
        if transition is not None:
            transitions.append((reading, transition))
    return state, transitions


def ordering_problem(thresholds: dict[Level, float]) -> str | None:
    """Among one signal's active limits lolo < lo < hi < hihi must hold; else why not."""
    present = [(level, thresholds[level]) for level in LEVEL_ORDER if level in thresholds]
    for (lower, low_value), (upper, up_value) in itertools.pairwise(present):
        if not low_value < up_value:
            return (
                f"the {lower} threshold ({low_value:g}) must be below the {upper} threshold "
                f"({up_value:g}): lolo < lo < hi < hihi"
            )
    return None
