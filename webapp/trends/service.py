"""What a trend needs to know of its pens, and each signal's 7-day history range.

Plain functions taking a session (looked up before any read, so a refused pen reads nothing),
and a small per-process cache of history ranges read through the series service.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.alarms import service as alarm_service
from webapp.assets import service as asset_service
from webapp.assets.models import Asset
from webapp.integrations.models import ExternalSignalMapping
from webapp.integrations.service import SourceAccess
from webapp.series import QUALITY_BAD, Series
from webapp.timeseries import service as series_service
from webapp.timeseries.service import SeriesMode, Signal, SourceUnavailable

logger = logging.getLogger(__name__)


class PenNotFound(Exception):
    """An unknown asset, another tenant's asset, or a metric the asset does not map (→ 404)."""


@dataclass(frozen=True, slots=True)
class PenSignal:
    """A pen's signal with all its range comes from: configured ends and active limits."""

    signal: Signal
    asset_code: str
    limits: dict[str, float]  # active limits: level → threshold
    range_low: float | None
    range_high: float | None


def pen_signals(session: Session, pens: Sequence[tuple[int, str]]) -> list[PenSignal]:
    """Every pen's signal in the bound tenant, in order, or PenNotFound for the first that
    has none (an asset of another tenant reads exactly like a missing one)."""
    asset_ids = sorted({asset_id for asset_id, _metric in pens})
    codes = dict(session.execute(select(Asset.id, Asset.code).where(Asset.id.in_(asset_ids))).all())
    signals: list[Signal] = []
    for asset_id, metric in pens:
        if asset_id not in codes:
            raise PenNotFound(f"Asset {asset_id} not found")
        signal = series_service.find_signal(session, asset_id, metric)
        if signal is None:
            raise PenNotFound(f"Metric {metric!r} is not mapped for asset {asset_id}")
        signals.append(signal)
    ranges = {
        mapping_id: (low, high)
        for mapping_id, low, high in session.execute(
            select(
                ExternalSignalMapping.id, ExternalSignalMapping.range_low,
                ExternalSignalMapping.range_high,
            ).where(ExternalSignalMapping.id.in_([s.mapping_id for s in signals]))
        )
    }
    return [
        PenSignal(
            signal=signal,
            asset_code=codes[signal.asset_id],
            limits={
                view.limit.level: view.limit.threshold
                for view in alarm_service.list_limits(session, mapping_id=signal.mapping_id)
                if view.limit.is_active
            },
            range_low=ranges[signal.mapping_id][0],
            range_high=ranges[signal.mapping_id][1],
        )
        for signal in signals
    ]


@dataclass(frozen=True, slots=True)
class PenChoice:
    value: str  # "{asset_id}:{metric}", as the pen parameter spells it
    metric: str


@dataclass(frozen=True, slots=True)
class AssetChoices:
    asset_id: int
    code: str
    name: str
    pens: list[PenChoice]


def pen_choices(session: Session) -> list[AssetChoices]:
    """Every chartable signal of the tenant, by asset code (the form that adds a pen)."""
    signals = series_service.signals_by_asset(session)
    return [
        AssetChoices(
            asset.id, asset.code, asset.name,
            [PenChoice(f"{asset.id}:{s.metric}", s.metric) for s in signals[asset.id]],
        )
        for asset in asset_service.list_assets(session)
        if signals.get(asset.id)
    ]


# --- 7-day history ranges ----------------------------------------------------------------------

HISTORY_SPAN = timedelta(days=7)
# A plot read always keeps the window's minimum and maximum (§5): a few points are enough.
HISTORY_POINTS = 20
# The axis must not rescale on every reading: a history range is kept this long.
HISTORY_MAX_AGE_SECONDS = 3600.0
HISTORY_CACHE_SIZE = 4096


def history_values(series: Series) -> np.ndarray:
    """The values a range may be drawn from: not bad, finite."""
    values = series.values[series.quality != QUALITY_BAD]
    return values[np.isfinite(values)]


def _history_key(signal: Signal) -> tuple[Any, ...]:
    # What the values depend on: the source (its config too, so a re-pointed integration is
    # read again), the tag, and the scaling.
    return (
        signal.tenant_id, signal.integration_id, signal.integration_type,
        json.dumps(signal.integration_config, sort_keys=True, default=str),
        signal.external_tag, signal.scaling_factor, signal.offset_value,
    )


@dataclass
class HistoryRanges:
    """min and max of each signal's last 7 days, read through the series service and kept for
    an hour per process. Such a read only sets a scale, like the health scanner's baselines,
    so it writes no SENSOR event; a failed or synthetic read is not kept (None)."""

    max_age_seconds: float = HISTORY_MAX_AGE_SECONDS
    _entries: dict[tuple[Any, ...], tuple[float, np.ndarray]] = field(default_factory=dict)

    def remember(self, signal: Signal, series: Series) -> np.ndarray:
        """A 7-day plot read the page made anyway (range=7d) serves as the history."""
        values = history_values(series)
        found = np.array([values.min(), values.max()]) if values.size else values
        self._store(_history_key(signal), found)
        return found

    def _store(self, key: tuple[Any, ...], found: np.ndarray) -> None:
        if len(self._entries) >= HISTORY_CACHE_SIZE:
            oldest = min(self._entries, key=lambda k: self._entries[k][0])
            del self._entries[oldest]
        self._entries[key] = (time.monotonic(), found)

    async def get_many(
        self, signals: Sequence[Signal], access: SourceAccess, now: datetime
    ) -> list[np.ndarray | None]:
        """Each signal's [min, max] (empty: no history), reading the missing ones at once."""
        found: dict[int, np.ndarray | None] = {}
        missing: list[tuple[int, Signal]] = []
        for index, signal in enumerate(signals):
            cached = self._entries.get(_history_key(signal))
            if cached is not None and time.monotonic() - cached[0] < self.max_age_seconds:
                found[index] = cached[1]
            else:
                missing.append((index, signal))
        reads = await asyncio.gather(*(self._read(signal, access, now) for _i, signal in missing))
        for (index, signal), series in zip(missing, reads, strict=True):
            found[index] = None if series is None else self.remember(signal, series)
        return [found[index] for index in range(len(signals))]

    @staticmethod
    async def _read(signal: Signal, access: SourceAccess, now: datetime) -> Series | None:
        window = series_service.resolve_window(
            from_time=now - HISTORY_SPAN, to_time=now, limit=HISTORY_POINTS,
            mode=SeriesMode.plot, now=now,
        )
        try:
            read = await series_service.read_series(signal, window, access)
        except SourceUnavailable as exc:
            logger.info("trend history range: %s", exc)
            return None
        return read.series if read.source == "live" else None


history_ranges = HistoryRanges()
