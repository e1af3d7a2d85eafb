"""Built-in demo source: plausible plant signals as a pure function of (tag, time).

Because the value at t depends only on (tag, t), history and live points always agree, every
worker process computes the same numbers, and nothing needs storing. History is sampled on
whole minutes; `fetch_latest` evaluates the same function at the current instant, with the
per-minute noise and spikes interpolated so sub-minute values sit smoothly between samples.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from .base import Connector, Series, datetime_to_ns, make_series

_MINUTE_NS = 60_000_000_000
# Like any historian the demo's archive has a beginning, so "the latest N" stays bounded.
HISTORY_START_NS = 1_577_836_800 * 10**9  # 2020-01-01T00:00:00Z
_U64 = np.uint64


@dataclass(frozen=True, slots=True)
class _Profile:
    """How one kind of measurement behaves (engineering units of that metric)."""

    center: float
    drift: tuple[float, float, float]  # amplitudes of the ~6 h, ~1 day and ~1 week sinusoids
    noise: float  # amplitude of the per-minute noise
    spike_rate: float  # probability that a minute carries a spike
    spike: float  # typical spike height (sign gives its direction)
    low: float
    high: float


# Keyed by the tag's last dotted segment: "PI:P-101.VIB" → "VIB".
_PROFILES: dict[str, _Profile] = {
    "VIB": _Profile(2.9, (0.35, 0.7, 0.45), 0.25, 0.004, 2.6, 0.2, 15.0),  # mm/s, ~1.5–6
    "TEMP": _Profile(64.0, (3.0, 8.0, 5.0), 0.6, 0.001, 9.0, 5.0, 130.0),  # °C, ~40–90
    "PRES": _Profile(17.0, (1.5, 4.0, 3.0), 0.3, 0.001, 4.0, 0.0, 45.0),  # bar, ~5–30
    "FLOW": _Profile(240.0, (15.0, 40.0, 25.0), 5.0, 0.001, -60.0, 0.0, 600.0),  # m³/h
    "POWER": _Profile(420.0, (20.0, 55.0, 35.0), 8.0, 0.001, 90.0, 0.0, 1500.0),  # kW
    "SPEED": _Profile(2960.0, (4.0, 12.0, 8.0), 3.0, 0.0005, -120.0, 0.0, 3600.0),  # rpm
    "DP": _Profile(1.1, (0.08, 0.2, 0.15), 0.03, 0.002, 0.6, 0.0, 6.0),  # bar
    "LEVEL": _Profile(55.0, (4.0, 12.0, 9.0), 0.8, 0.0005, 10.0, 0.0, 100.0),  # %
}
_GENERIC = _Profile(50.0, (5.0, 12.0, 8.0), 2.0, 0.001, 15.0, 0.0, 100.0)  # 0–100

# Drift periods (~6 h, 1 day, ~1 week) as whole ns so the phase can be reduced exactly in int64.
_PERIODS_NS = (21_960 * 10**9, 86_400 * 10**9, 630_720 * 10**9)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Stateless 64-bit mixer: a well-spread pseudo-random word per input (uint64 wraps)."""
    z = x + _U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def _tag_seed(tag: str) -> int:
    # crc32 is stable across processes, unlike hash() with PYTHONHASHSEED randomisation.
    return zlib.crc32(tag.encode("utf-8"))


def _profile(tag: str) -> _Profile:
    suffix = tag.rsplit(".", 1)[-1].upper() if "." in tag else ""
    return _PROFILES.get(suffix, _GENERIC)


def _minute_terms(seed_word: np.uint64, minutes: np.ndarray, p: _Profile) -> np.ndarray:
    """Noise + spike contribution for each whole-minute index (one hash per minute)."""
    z = _splitmix64(minutes.view(np.uint64) ^ seed_word)
    # Two 21-bit fields summed give triangular noise on [-noise, noise].
    fields = (z >> _U64(43)) + ((z >> _U64(22)) & _U64(0x1FFFFF))
    terms = fields.astype(np.float64) * (p.noise / 2.0**21) - p.noise
    # The low 16 bits decide a spike (rare, so size only the few that fire).
    hits = np.flatnonzero((z & _U64(0xFFFF)) < _U64(int(p.spike_rate * 65536)))
    if hits.size:
        size = ((z[hits] >> _U64(16)) & _U64(0x3F)).astype(np.float64) / 64.0
        terms[hits] += p.spike * (0.6 + 0.8 * size)
    return terms


def demo_values(tag: str, timestamps_ns: np.ndarray) -> np.ndarray:
    """The demo signal of `tag` at each timestamp (int64 ns UTC): the single source of truth."""
    ts = np.asarray(timestamps_ns, dtype=np.int64)
    p = _profile(tag)
    seed = _tag_seed(tag)
    words = _splitmix64(np.array([seed, seed + 1, seed + 2, seed + 3], dtype=np.uint64))
    unit = (words >> _U64(11)).astype(np.float64) / 2.0**53  # 4 per-tag constants in [0, 1)

    # Slow drift with per-tag phases so sister assets don't move in lockstep. The phase is
    # reduced exactly in int64 first, so float32 sin (several times faster) is precise enough.
    values = np.full(ts.shape, p.center * (0.9 + 0.2 * unit[3]))
    for amp, period, phase in zip(p.drift, _PERIODS_NS, unit[:3], strict=True):
        reduced = (ts + int(phase * period)) % period
        angle = reduced.astype(np.float32) * np.float32(2.0 * np.pi / period)
        values += amp * np.sin(angle)

    minutes = ts // _MINUTE_NS
    offset = ts - minutes * _MINUTE_NS
    terms = _minute_terms(words[0], minutes, p)
    if offset.any():
        # Sub-minute instants: blend toward the next minute so live values move smoothly.
        frac = offset.astype(np.float64) / _MINUTE_NS
        terms += (_minute_terms(words[0], minutes + 1, p) - terms) * frac
    values += terms
    return np.clip(values, p.low, p.high, out=values)


class DemoConnector(Connector):
    """Deterministic synthetic historian with 1-minute history (type "demo")."""

    type = "demo"

    async def fetch_timeseries(
        self, tag: str, from_time: datetime | None, to_time: datetime, limit: int = 100
    ) -> Series:
        if limit <= 0:
            return Series.empty()
        last = datetime_to_ns(to_time) // _MINUTE_NS  # whole minutes at or before to_time
        first = max(last - (limit - 1), HISTORY_START_NS // _MINUTE_NS)
        if from_time is not None:
            first = max(first, -(-datetime_to_ns(from_time) // _MINUTE_NS))  # ceil
        if first > last:
            return Series.empty()
        ts = np.arange(first, last + 1, dtype=np.int64) * _MINUTE_NS
        return make_series(ts, demo_values(tag, ts), presorted=True)

    async def fetch_latest(self, tag: str) -> Series:
        # Microsecond resolution, like real historians: the published ISO timestamp then
        # names exactly the instant whose value was sent.
        ts = np.array([time.time_ns() // 1000 * 1000], dtype=np.int64)
        return make_series(ts, demo_values(tag, ts), presorted=True)

    async def test_connection(self) -> None:
        return None
