"""Alarm system performance figures (EEMUA 191, ANSI/ISA-18.2 §16): pure functions over the
activations of a window. Suppressed activations count: shelving hides an alarm from the
operator, not from the alarm system's own health figures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

INTERVAL = timedelta(minutes=10)
FLOOD_ACTIVATIONS = 10  # per 10 minutes (EEMUA 191: an alarm flood)
CHATTER_ACTIVATIONS = 3  # within CHATTER_WINDOW
CHATTER_WINDOW = timedelta(seconds=60)
STANDING_AFTER = timedelta(hours=24)
TOP_BAD_ACTORS = 10


@dataclass(frozen=True, slots=True)
class Activation:
    limit_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class Figures:
    activations: int
    per_10min_avg: float
    per_10min_peak: int
    flood_intervals: int
    chattering: list[int]
    top: list[tuple[int, int]]  # (limit_id, activations), most first
    top10_share: float


def interval_counts(
    activations: Sequence[Activation], start: datetime, end: datetime
) -> list[int]:
    """Activations per 10-minute interval of [start, end), the first starting at `start`."""
    count = max(1, -(-(end - start) // INTERVAL))
    buckets = [0] * count
    for activation in activations:
        if start <= activation.at < end:
            buckets[(activation.at - start) // INTERVAL] += 1
    return buckets


def chattering_limits(activations: Sequence[Activation]) -> list[int]:
    """Limits with CHATTER_ACTIVATIONS activations within any CHATTER_WINDOW."""
    by_limit: dict[int, list[datetime]] = {}
    for activation in activations:
        by_limit.setdefault(activation.limit_id, []).append(activation.at)
    chattering = []
    for limit_id, moments in by_limit.items():
        moments.sort()
        span = CHATTER_ACTIVATIONS - 1
        if any(
            moments[i + span] - moments[i] <= CHATTER_WINDOW for i in range(len(moments) - span)
        ):
            chattering.append(limit_id)
    return sorted(chattering)


def figures(activations: Sequence[Activation], start: datetime, end: datetime) -> Figures:
    hours = (end - start) / timedelta(hours=1)
    buckets = interval_counts(activations, start, end)
    counted = [a for a in activations if start <= a.at < end]
    per_limit = Counter(a.limit_id for a in counted)
    top = sorted(per_limit.items(), key=lambda item: (-item[1], item[0]))[:TOP_BAD_ACTORS]
    total = len(counted)
    return Figures(
        activations=total,
        per_10min_avg=total / (hours * 6) if hours > 0 else 0.0,
        per_10min_peak=max(buckets),
        flood_intervals=sum(1 for count in buckets if count >= FLOOD_ACTIVATIONS),
        chattering=chattering_limits(counted),
        top=top,
        top10_share=sum(count for _, count in top) / total if total else 0.0,
    )
