"""Built-in demo source: plausible plant signals as a pure function of (tag, time).

Because the value at t depends only on (tag, t), history and live points always agree, every
worker process computes the same numbers, and nothing needs storing. History is sampled on
whole minutes; `fetch_latest` evaluates the same function at the current instant, with the
per-minute noise and spikes interpolated so sub-minute values sit smoothly between samples.

Tags read `PI:{asset code}.{SIGNAL}`, e.g. `PI:P-101.VIB`:
- SIGNAL (the last dotted segment) picks the metric's profile: a per-tag centre, slow drift
  (~6 h, 1 day, ~1 week), per-minute noise and occasional one-minute spikes. Spikes fall on even
  minutes only, so two never touch: a spike stays beyond any limit for less than two minutes
  (interpolated live readings included), which the seeded limits' on-delay outlasts.
- The letters the asset code starts with name the asset's kind (P pump, C compressor, E heat
  exchanger, GT gas turbine, V separator). Vibration sits in zone A/B of the kind's ISO 20816-3
  machine group (DESIGN.md §15 defaults: group 1 for compressors and turbines, group 2
  otherwise, rigid foundation), so it is below the B/C boundary whenever no episode runs.
- Alarm episodes (DESIGN.md §14, "Demo"): every asset has one episode every 4 hours. The plant's
  ten assets take turns in `EPISODE_ORDER`, 24 minutes apart, and an episode keeps its asset
  in alarm for 37–54 minutes, so it overlaps its neighbours' and one to three assets (mostly
  two) are in alarm at any moment, with 2.5 episodes an hour. An episode blends one signal of
  the asset (by kind: vibration on rotating machines, mostly) smoothly towards a plateau past
  the seeded hi limit and back; one episode in every three consecutive ones of the plant goes
  past hihi instead, so the plant sees 3⅓ activations an hour and never more than 5 in one.
  Start, length and signal vary per episode by hash, within bounds that keep those counts.
  Codes outside `EPISODE_ORDER` take the slot their hash names.
"""

from __future__ import annotations

import functools
import re
import time
import zlib
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from webapp.series import Series, datetime_to_ns

from .base import Connector, make_series

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
    spike_rate: float  # probability that an even minute carries a spike
    spike: float  # typical spike height (sign gives its direction)
    low: float
    high: float
    # Where an episode takes the signal: (plateau past hi, plateau past hihi) of the seeded
    # limits (webapp/demo/seed.py); None: episodes never choose it.
    episode: tuple[float, float] | None = None
    spread: float = 0.1  # per-tag centres lie within ± this fraction of `center`


# Keyed by the tag's last dotted segment: "PI:P-101.VIB" → "VIB" (vibration: below, by group).
# The normal bands stay inside the seeded limits by ≥ 3 noise amplitudes plus the deadband.
_PROFILES: dict[str, _Profile] = {
    # Normal bands (centre ± spread ± drift ± noise) in the comments, in the metric's unit.
    "TEMP": _Profile(64.0, (3.0, 8.0, 5.0), 0.6, 0.002, 9.0, 5.0, 130.0, (100.0, 110.0)),  # 41–87°C
    "PRES": _Profile(17.0, (1.2, 3.0, 2.0), 0.3, 0.002, 4.0, 0.0, 45.0, (30.0, 34.5)),  # 9–25 bar
    "FLOW": _Profile(240.0, (15.0, 40.0, 25.0), 5.0, 0.002, -60.0, 0.0, 600.0),  # 131–349 m³/h
    "POWER": _Profile(420.0, (20.0, 55.0, 35.0), 8.0, 0.002, 90.0, 0.0, 1500.0),  # 260–580 kW
    # Machines run at their design speed: centres vary by 1 %, not 10 %. 2903–3017 rpm.
    "SPEED": _Profile(2960.0, (4.0, 12.0, 8.0), 3.0, 0.001, -120.0, 0.0, 3600.0, spread=0.01),
    "DP": _Profile(1.1, (0.08, 0.2, 0.15), 0.03, 0.004, 0.6, 0.0, 6.0, (2.25, 2.8)),  # 0.5–1.7 bar
    "LEVEL": _Profile(55.0, (3.0, 7.0, 5.0), 0.8, 0.001, 10.0, 0.0, 100.0, (88.5, 95.5)),  # 34–77 %
}
# mm/s RMS by ISO 20816-3 machine group: zone A/B is below 4.5 (group 1) and 2.8 (group 2) on a
# rigid foundation; episodes reach zone C (past hi = B/C) or zone D (past hihi = C/D).
_VIBRATION: dict[int, _Profile] = {
    1: _Profile(2.7, (0.15, 0.35, 0.2), 0.12, 0.008, 2.6, 0.2, 20.0, (5.6, 7.9)),  # ~1.5–3.8
    2: _Profile(1.5, (0.12, 0.25, 0.15), 0.08, 0.008, 1.9, 0.2, 15.0, (3.5, 5.3)),  # ~0.8–2.3
}
_GROUP_1_KINDS = frozenset({"C", "GT"})  # compressors and turbines (> 300 kW)
_GENERIC = _Profile(50.0, (5.0, 12.0, 8.0), 2.0, 0.002, 15.0, 0.0, 100.0)  # 0–100

# Drift periods (~6 h, 1 day, ~1 week) as whole ns so the phase can be reduced exactly in int64.
_PERIODS_NS = (21_960 * 10**9, 86_400 * 10**9, 630_720 * 10**9)

# --- alarm episodes ---------------------------------------------------------------------------

# The plant's turns, kinds interleaved so consecutive episodes hit different kinds of assets.
EPISODE_ORDER = ("P-101", "C-301", "E-401", "V-601", "GT-501", "P-102", "C-302", "E-402",
                 "V-602", "P-201")  # fmt: skip
_SLOT_NS = 24 * _MINUTE_NS
_CYCLE_NS = _SLOT_NS * len(EPISODE_ORDER)  # each asset's episodes are 4 h apart
# An episode starts 0–4 min into its slot, ramps up over 8 min, holds 34–40 min and ramps down
# over 10 min. With the seeded on-delay (3 min) and off-delay (2 min) its hi alarm activates
# within 15 min of the slot's start and clears 44–64 min after it: the next slot's alarm (up
# by minute 39) is already active when it clears, so some asset is always in alarm, and the
# one three slots on (not before minute 75) is not yet, so never more than three. Hi
# activations three slots apart are ≥ 60 min apart: any hour holds ≤ 3 of them, plus ≤ 2 hihi.
_START_JITTER_MINUTES = range(5)
_RAMP_UP_NS = 8 * _MINUTE_NS
_HOLD_MINUTES = range(34, 41)
_RAMP_DOWN_NS = 10 * _MINUTE_NS
_EPISODE_SPAN_NS = (
    (_START_JITTER_MINUTES[-1] + _HOLD_MINUTES[-1]) * _MINUTE_NS + _RAMP_UP_NS + _RAMP_DOWN_NS
)
# Which signal an episode ramps, by asset kind: (SIGNAL, share in twentieths). Mostly vibration
# on rotating machines; process signals on static equipment.
_EPISODE_SIGNALS: dict[str, tuple[tuple[str, int], ...]] = {
    "P": (("VIB", 16), ("TEMP", 2), ("PRES", 2)),
    "C": (("VIB", 14), ("TEMP", 3), ("PRES", 3)),
    "GT": (("VIB", 14), ("TEMP", 4), ("PRES", 2)),
    "E": (("TEMP", 7), ("DP", 7), ("PRES", 3), ("VIB", 3)),
    "V": (("LEVEL", 7), ("PRES", 7), ("TEMP", 3), ("VIB", 3)),
}
_OTHER_EPISODE_SIGNALS = (("VIB", 12), ("TEMP", 4), ("PRES", 4))
_SLOTS = {code: slot for slot, code in enumerate(EPISODE_ORDER)}


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Stateless 64-bit mixer: a well-spread pseudo-random word per input (uint64 wraps)."""
    z = x + _U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def _stable_hash(text: str) -> int:
    # crc32 is stable across processes, unlike hash() with PYTHONHASHSEED randomisation.
    return zlib.crc32(text.encode("utf-8"))


def _parse(tag: str) -> tuple[str, str, str]:
    """(asset code, kind, SIGNAL) of a tag: "PI:GT-501.VIB" → ("GT-501", "GT", "VIB")."""
    if "." not in tag:
        return "", "", ""
    body, _, suffix = tag.rpartition(".")
    code = body.rsplit(":", 1)[-1]
    kind = re.match(r"[A-Za-z]*", code)
    return code, kind.group().upper() if kind else "", suffix.upper()


def _profile(kind: str, suffix: str) -> _Profile:
    if suffix == "VIB":
        return _VIBRATION[1 if kind in _GROUP_1_KINDS else 2]
    return _PROFILES.get(suffix, _GENERIC)


def _minute_terms(seed_word: np.uint64, minutes: np.ndarray, p: _Profile) -> np.ndarray:
    """Noise + spike contribution for each whole-minute index (one hash per minute)."""
    z = _splitmix64(minutes.view(np.uint64) ^ seed_word)
    # Two 21-bit fields summed give triangular noise on [-noise, noise].
    fields = (z >> _U64(43)) + ((z >> _U64(22)) & _U64(0x1FFFFF))
    terms = fields.astype(np.float64) * (p.noise / 2.0**21) - p.noise
    # The low 16 bits decide a spike (rare, so size only the few that fire); even minutes only.
    fires = (z & _U64(0xFFFF)) < _U64(int(p.spike_rate * 65536))
    hits = np.flatnonzero(fires & (minutes % 2 == 0))
    if hits.size:
        size = ((z[hits] >> _U64(16)) & _U64(0x3F)).astype(np.float64) / 64.0
        terms[hits] += p.spike * (0.6 + 0.8 * size)
    return terms


def _share_range(kind: str, suffix: str) -> tuple[int, int] | None:
    """The twentieths of an episode hash that choose this signal of this kind of asset."""
    start = 0
    for signal, share in _EPISODE_SIGNALS.get(kind, _OTHER_EPISODE_SIGNALS):
        if signal == suffix:
            return start, start + share
        start += share
    return None


def _episode_weight(since_start_ns: np.ndarray, hold_ns: np.ndarray) -> np.ndarray:
    """0 → 1 → 0 along an episode. Raised cosines: smooth, so the signal crosses each limit
    once on the way up and once on the way down, and only noise sits near a limit."""
    up = np.clip(since_start_ns / _RAMP_UP_NS, 0.0, 1.0)
    down = np.clip((since_start_ns - _RAMP_UP_NS - hold_ns) / _RAMP_DOWN_NS, 0.0, 1.0)
    return 0.25 * (1.0 - np.cos(np.pi * up)) * (1.0 + np.cos(np.pi * down))


def _blend_episodes(
    code: str, kind: str, suffix: str, p: _Profile, ts: np.ndarray, values: np.ndarray
) -> None:
    """Move `values` (the slow baseline at `ts`) towards the plateau of any episode of this
    signal. Only instants within an episode's span of their slot are hashed."""
    shares = _share_range(kind, suffix)
    if p.episode is None or shares is None:
        return
    slot = _SLOTS.get(code, _stable_hash(code) % len(EPISODE_ORDER))
    shifted = ts - slot * _SLOT_NS
    cycle = shifted // _CYCLE_NS
    near = np.flatnonzero(shifted - cycle * _CYCLE_NS < _EPISODE_SPAN_NS)
    if not near.size:
        return
    episode = cycle[near] * len(EPISODE_ORDER) + slot  # the plant's episodes, numbered in order
    z = _splitmix64(episode.view(np.uint64) ^ _U64(_stable_hash(code)))
    share = (z % _U64(20)).astype(np.int64)
    chosen = (share >= shares[0]) & (share < shares[1])
    near, episode, z = near[chosen], episode[chosen], z[chosen]
    if not near.size:
        return
    jitter = ((z >> _U64(8)) % _U64(len(_START_JITTER_MINUTES))).astype(np.int64) * _MINUTE_NS
    hold_minutes = _HOLD_MINUTES[0] + ((z >> _U64(16)) % _U64(len(_HOLD_MINUTES))).astype(np.int64)
    since_start = (shifted[near] - cycle[near] * _CYCLE_NS - jitter).astype(np.float64)
    weight = _episode_weight(since_start, (hold_minutes * _MINUTE_NS).astype(np.float64))
    # One in each three consecutive episodes of the plant (which one: by hash) passes hihi, so
    # no hour holds more than two of them.
    trio_pick = _splitmix64((episode // 3).view(np.uint64)) % _U64(3)
    past_hihi = (episode % 3).view(np.uint64) == trio_pick
    plateau = np.where(past_hihi, p.episode[1], p.episode[0])
    values[near] += weight * (plateau - values[near])


def demo_values(tag: str, timestamps_ns: np.ndarray) -> np.ndarray:
    """The demo signal of `tag` at each timestamp (int64 ns UTC): the single source of truth."""
    ts = np.asarray(timestamps_ns, dtype=np.int64)
    code, kind, suffix = _parse(tag)
    p = _profile(kind, suffix)
    seed = _stable_hash(tag)
    words = _splitmix64(np.array([seed, seed + 1, seed + 2, seed + 3], dtype=np.uint64))
    unit = (words >> _U64(11)).astype(np.float64) / 2.0**53  # 4 per-tag constants in [0, 1)

    # Slow drift with per-tag phases so sister assets don't move in lockstep. The phase is
    # reduced exactly in int64 first, so float32 sin (several times faster) is precise enough.
    values = np.full(ts.shape, p.center * (1.0 + p.spread * (2.0 * unit[3] - 1.0)))
    for amp, period, phase in zip(p.drift, _PERIODS_NS, unit[:3], strict=True):
        reduced = (ts + int(phase * period)) % period
        angle = reduced.astype(np.float32) * np.float32(2.0 * np.pi / period)
        values += amp * np.sin(angle)
    _blend_episodes(code, kind, suffix, p, ts, values)

    minutes = ts // _MINUTE_NS
    offset = ts - minutes * _MINUTE_NS
    terms = _minute_terms(words[0], minutes, p)
    if offset.any():
        # Sub-minute instants: blend toward the next minute so live values move smoothly.
        frac = offset.astype(np.float64) / _MINUTE_NS
        terms += (_minute_terms(words[0], minutes + 1, p) - terms) * frac
    values += terms
    return np.clip(values, p.low, p.high, out=values)


@functools.lru_cache(maxsize=512)
def _minute_window(tag: str, first: int, last: int) -> Series:
    """The readings of whole minutes first..last. Every poll of the same minute asks for the
    same window, and the values are a pure function of (tag, minute): computed once, shared
    read-only."""
    ts = np.arange(first, last + 1, dtype=np.int64) * _MINUTE_NS
    series = make_series(ts, demo_values(tag, ts), presorted=True)
    for array in (series.timestamps, series.values, series.quality):
        array.flags.writeable = False
    return series


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
        return _minute_window(tag, first, last)

    async def fetch_latest(self, tag: str) -> Series:
        # Microsecond resolution, like real historians: the published ISO timestamp then
        # names exactly the instant whose value was sent.
        ts = np.array([time.time_ns() // 1000 * 1000], dtype=np.int64)
        return make_series(ts, demo_values(tag, ts), presorted=True)

    async def test_connection(self) -> None:
        return None
