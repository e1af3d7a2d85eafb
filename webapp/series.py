"""Columnar time series and the time helpers every layer shares (connectors, the series
service, downsampling, the live hub, the alarm and health models).

Plant windows reach hundreds of thousands of points, so a series is three parallel numpy arrays,
never a Python object per point; convert to JSON or HTML only at the edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

QUALITY_GOOD, QUALITY_UNCERTAIN, QUALITY_BAD = 0, 1, 2
QUALITY_NAMES = ("good", "uncertain", "bad")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)
_NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True, eq=False)
class Series:
    """Columnar time series: int64 ns UTC timestamps (ascending), float64 values, uint8 quality.

    `eq=False` because element-wise numpy comparison has no single truth value.
    """

    timestamps: np.ndarray
    values: np.ndarray
    quality: np.ndarray

    @classmethod
    def empty(cls) -> Series:
        return cls(
            np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64), np.empty(0, dtype=np.uint8)
        )

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    def _slice(self, start: int, stop: int) -> Series:
        return Series(
            self.timestamps[start:stop], self.values[start:stop], self.quality[start:stop]
        )

    def take(self, indices: np.ndarray) -> Series:
        """The points at `indices` (which the caller keeps ascending)."""
        return Series(self.timestamps[indices], self.values[indices], self.quality[indices])

    def tail(self, n: int) -> Series:
        """The last `n` points."""
        if n <= 0:
            return Series.empty()
        return self._slice(max(len(self) - n, 0), len(self))

    def window(self, from_ns: int | None, to_ns: int) -> Series:
        """Points with from_ns <= t <= to_ns (both ends inclusive; None means unbounded)."""
        start = 0 if from_ns is None else int(np.searchsorted(self.timestamps, from_ns, "left"))
        stop = int(np.searchsorted(self.timestamps, to_ns, "right"))
        return self._slice(start, max(start, stop))

    @classmethod
    def concat(cls, parts: Sequence[Series]) -> Series:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(
            np.concatenate([p.timestamps for p in parts]),
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.quality for p in parts]),
        )


# --- time helpers ---------------------------------------------------------------------------


def datetime_to_ns(dt: datetime) -> int:
    """Exact ns since epoch; naive datetimes are taken as UTC (the app's convention)."""
    epoch = _EPOCH if dt.tzinfo is not None else _EPOCH_NAIVE
    return ((dt - epoch) // _ONE_US) * 1000


def ns_to_datetime(ns: int) -> datetime:
    """Aware UTC datetime (microsecond resolution: sub-µs digits are floored)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def datetimes_to_ns(values: Sequence[datetime]) -> np.ndarray:
    """Vector of datetimes (all naive-UTC or all aware) to int64 ns."""
    if not values:
        return np.empty(0, dtype=np.int64)
    if values[0].tzinfo is not None:
        # numpy refuses aware datetimes; normalise to naive UTC first.
        values = [v.astimezone(UTC).replace(tzinfo=None) for v in values]
    return np.array(values, dtype="datetime64[us]").astype("datetime64[ns]").view(np.int64)


def ns_to_iso(ns: int, digits: int = 6) -> str:
    """ns since epoch to 'YYYY-MM-DDTHH:MM:SS[.fff…]Z' with `digits` fractional digits."""
    seconds, frac = divmod(int(ns), _NS_PER_S)
    text = str(np.datetime64(seconds, "s"))
    if digits:
        text += "." + f"{frac:09d}"[:digits]
    return text + "Z"
