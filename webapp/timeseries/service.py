"""THE series service: mapping → connector → scale/offset → window/limit/downsample.

The JSON API, the HTML metric fragments and the live streams all read plant data through
this module, so they agree on windows, scaling, quality, fallback and BlackBox events.
Reads are async (connectors are network clients); database work stays in the callers'
short sessions, through the plain functions below.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

import numpy as np
from sqlalchemy.orm import Session

from webapp.blackbox.service import EventDraft
from webapp.connectors.base import Connector, ConnectorError, describe_error
from webapp.connectors.demo import DemoConnector
from webapp.db import utcnow
from webapp.integrations.models import ExternalSignalMapping, TenantIntegration
from webapp.integrations.service import SourceAccess, active_mappings_for_asset
from webapp.invalidation import TenantCache
from webapp.series import QUALITY_BAD, QUALITY_UNCERTAIN, Series
from webapp.timeseries.downsample import downsample

logger = logging.getLogger(__name__)

MAX_WINDOW = timedelta(days=366)
DEFAULT_PLOT_WINDOW = timedelta(hours=24)
MIN_PLOT_POINTS = 3
# Connectors bound each request themselves; this is the backstop against a hung peer.
HANG_GRACE_SECONDS = 1.0

Source = Literal["live", "fallback"]
T = TypeVar("T")


class SeriesMode(enum.StrEnum):
    raw = "raw"
    plot = "plot"


@dataclass(frozen=True, slots=True)
class Signal:
    """One mapped signal, detached from the database session (streams hold no session)."""

    tenant_id: int
    asset_id: int
    mapping_id: int
    metric: str
    unit: str | None
    external_tag: str
    scaling_factor: float
    offset_value: float
    integration_id: int
    integration_type: str
    # As stored: secrets sealed; the connector opens them (SourceAccess.connector).
    integration_config: dict[str, Any] = field(repr=False)
    # The engineering range configured on the mapping (§18), in scaled units; None: derived.
    range_low: float | None = None
    range_high: float | None = None

    @property
    def fallback_enabled(self) -> bool:
        return self.integration_config.get("fallback") == "synthetic"

    @property
    def source_key(self) -> tuple[int, str]:
        """What one poll reads: every viewer of the same (integration, tag) shares it."""
        return (self.integration_id, self.external_tag)


# (tenant, asset, metric) → its signal, for a few seconds (DESIGN.md §17).
SignalCache = TenantCache[tuple[int, int, str], Signal]


@dataclass(frozen=True, slots=True)
class SeriesWindow:
    from_time: datetime | None
    to_time: datetime
    limit: int
    mode: SeriesMode

    @property
    def wholly_in_future(self) -> bool:
        return self.from_time is not None and self.from_time > self.to_time


class WindowError(ValueError):
    """A window request that cannot be served; `parameter` names the culprit (→ 422)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True, slots=True)
class SeriesRead:
    signal: Signal
    mode: SeriesMode
    source: Source
    truncated: bool
    series: Series  # already scaled
    connector_error: str | None = None  # why the fallback was used


class SourceUnavailable(Exception):
    """The source failed and the integration has no fallback (→ 503)."""

    def __init__(self, signal: Signal, message: str) -> None:
        super().__init__(message)
        self.signal = signal


# --- lookups (short database work) -----------------------------------------------------------


def signal_of(mapping: ExternalSignalMapping, integration: TenantIntegration) -> Signal:
    return Signal(
        tenant_id=mapping.tenant_id,
        asset_id=mapping.asset_id,
        mapping_id=mapping.id,
        metric=mapping.internal_metric_name,
        unit=mapping.unit,
        external_tag=mapping.external_tag,
        scaling_factor=mapping.scaling_factor,
        offset_value=mapping.offset_value,
        integration_id=integration.id,
        integration_type=integration.type,
        integration_config=dict(integration.config),
        range_low=mapping.range_low,
        range_high=mapping.range_high,
    )


def find_signal(session: Session, asset_id: int, metric: str) -> Signal | None:
    """The active mapping of an asset's metric on an active integration, in the bound tenant."""
    rows = active_mappings_for_asset(session, asset_id, metric=metric)
    return signal_of(*rows[0]) if rows else None


def asset_signals(session: Session, asset_id: int) -> list[Signal]:
    """Every chartable signal of an asset, in mapping-id order ("first metric" in the UI)."""
    return [signal_of(m, i) for m, i in active_mappings_for_asset(session, asset_id)]


def signals_by_asset(session: Session) -> dict[int, list[Signal]]:
    """asset_signals for every asset of the tenant, in one query (the card grid)."""
    grouped: dict[int, list[Signal]] = {}
    for mapping, integration in active_mappings_for_asset(session, None):
        grouped.setdefault(mapping.asset_id, []).append(signal_of(mapping, integration))
    return grouped


# --- windows ---------------------------------------------------------------------------------


def resolve_window(
    *,
    from_time: datetime | None,
    to_time: datetime | None,
    limit: int,
    mode: SeriesMode,
    now: datetime | None = None,
) -> SeriesWindow:
    """DESIGN.md §5: inclusive ends, to_time clamped to now, 366-day cap, plot defaults to 24 h."""
    now = now or utcnow()
    if from_time is not None and to_time is not None and from_time > to_time:
        raise WindowError("from_time", "from_time must not be after to_time")
    if mode is SeriesMode.plot and limit < MIN_PLOT_POINTS:
        raise WindowError("limit", f"limit must be at least {MIN_PLOT_POINTS} with mode=plot")
    end = now if to_time is None else min(to_time, now)
    if from_time is None and mode is SeriesMode.plot:
        from_time = end - DEFAULT_PLOT_WINDOW
    if from_time is not None and (to_time or now) - from_time > MAX_WINDOW:
        raise WindowError("from_time", "the window must not be longer than 366 days")
    return SeriesWindow(from_time=from_time, to_time=end, limit=limit, mode=mode)


# --- reading ---------------------------------------------------------------------------------

_synthetic_source = DemoConnector({})


def scale_series(series: Series, signal: Signal) -> Series:
    if signal.scaling_factor == 1.0 and signal.offset_value == 0.0:
        return series  # exactly the source's values, bit for bit
    with np.errstate(over="ignore", invalid="ignore"):
        values = series.values * signal.scaling_factor + signal.offset_value
    overflowed = ~np.isfinite(values) & np.isfinite(series.values)
    if not overflowed.any():
        return replace(series, values=values)
    # Beyond float64 is no reading (and not JSON): such a point is bad, like any NaN.
    values[overflowed] = np.nan
    quality = series.quality.copy()
    quality[overflowed] = QUALITY_BAD
    return replace(series, values=values, quality=quality)


def _as_fallback(series: Series) -> Series:
    return replace(series, quality=np.full(len(series), QUALITY_UNCERTAIN, dtype=np.uint8))


async def bounded(awaitable: Awaitable[T], timeout: float) -> T:
    """A connector call that cannot hang: a silent peer becomes a ConnectorError.

    asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
    arrives as the inner call finishes, and a cancelled live feed would then poll on.
    """
    try:
        async with asyncio.timeout(timeout + HANG_GRACE_SECONDS):
            return await awaitable
    except TimeoutError:
        raise ConnectorError(f"the source did not answer within {timeout:g} s") from None


async def _fetch_window(connector: Any, tag: str, window: SeriesWindow) -> tuple[Series, bool]:
    if window.mode is SeriesMode.plot:
        assert window.from_time is not None
        # One point over the budget tells a window that fits (returned whole, not truncated)
        # from one that had to be reduced, even when it holds exactly `limit` points.
        series = await connector.fetch_plot(
            tag, window.from_time, window.to_time, window.limit + 1
        )
        if len(series) <= window.limit:
            return series, False
        # Reducing the reduced series keeps its min and max, which are the window's.
        return downsample(series, window.limit), True
    series = await connector.fetch_timeseries(
        tag, window.from_time, window.to_time, window.limit + 1
    )
    return series.tail(window.limit), len(series) > window.limit


async def check_connection(
    integration_id: int, integration_type: str, stored_config: dict[str, Any],
    access: SourceAccess,
) -> str | None:
    """None when the source answers, else why not (for the integration's "test" button)."""
    try:
        connector = access.connector(integration_id, integration_type, stored_config)
        await bounded(connector.test_connection(), access.timeout)
    except Exception as raised:  # any failure is reported, never a 500
        return str(_source_error(integration_type, integration_id, raised))
    return None


def _signal_connector(signal: Signal, access: SourceAccess) -> Connector:
    return access.connector(
        signal.integration_id, signal.integration_type, signal.integration_config
    )


async def read_series(signal: Signal, window: SeriesWindow, access: SourceAccess) -> SeriesRead:
    """Read a window, falling back to flagged synthetic data only where the integration says so."""
    if window.wholly_in_future:
        return SeriesRead(signal, window.mode, "live", False, Series.empty())
    try:
        connector = _signal_connector(signal, access)
        series, truncated = await bounded(
            _fetch_window(connector, signal.external_tag, window), access.timeout
        )
        source: Source = "live"
        error = None
    except Exception as raised:  # any connector failure is a source failure, never a 500
        exc = _source_error(signal.integration_type, signal.integration_id, raised)
        if not signal.fallback_enabled:
            raise SourceUnavailable(signal, _unavailable_message(signal, exc)) from None
        series, truncated = await _fetch_window(_synthetic_source, signal.external_tag, window)
        series, source, error = _as_fallback(series), "fallback", str(exc)
    return SeriesRead(signal, window.mode, source, truncated, scale_series(series, signal), error)


async def read_latest(signal: Signal, access: SourceAccess) -> SeriesRead:
    """The newest reading (0 or 1 point), with the same fallback rule as read_series."""
    try:
        connector = _signal_connector(signal, access)
        series = await bounded(connector.fetch_latest(signal.external_tag), access.timeout)
        source: Source = "live"
        error = None
    except Exception as raised:  # any connector failure is a source failure, never a 500
        exc = _source_error(signal.integration_type, signal.integration_id, raised)
        if not signal.fallback_enabled:
            raise SourceUnavailable(signal, _unavailable_message(signal, exc)) from None
        series = _as_fallback(await _synthetic_source.fetch_latest(signal.external_tag))
        source, error = "fallback", str(exc)
    return SeriesRead(signal, SeriesMode.raw, source, False, scale_series(series, signal), error)


def _source_error(integration_type: str, integration_id: int, exc: Exception) -> ConnectorError:
    """A connector's failure as a ConnectorError; an unexpected exception (a connector bug,
    e.g. a client library raising outside its documented errors) is logged, never a 500."""
    if isinstance(exc, ConnectorError):
        return exc
    logger.error(
        "the %s connector of integration %s failed unexpectedly",
        integration_type, integration_id, exc_info=exc,
    )
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]  # the first real cause, not "unhandled errors in a TaskGroup"
    return ConnectorError(f"the connector failed unexpectedly ({describe_error(exc)})")


def _unavailable_message(signal: Signal, exc: ConnectorError) -> str:
    return (
        f"The {signal.integration_type} source for {signal.metric} "
        f"({signal.external_tag}) is unavailable: {exc}"
    )


def stream_opened(signal: Signal, latest: Series, source: Source) -> SeriesRead:
    """What a live stream read when it opened (its newest reading), for its one event."""
    return SeriesRead(signal, SeriesMode.raw, source, False, latest)


# --- BlackBox --------------------------------------------------------------------------------


def series_read_events(*, user_id: int, read: SeriesRead) -> list[EventDraft]:
    """Exactly one SENSOR event per successful fetch; a fallback adds its CONNECTOR warning."""
    signal = read.signal
    events = [
        _twin_event(
            signal, source_type="TAG_READING", category="SENSOR", severity="INFO",
            summary=f"Time-series fetched for {signal.metric} via Digital Twin",
            payload={
                "metric": signal.metric,
                "points_count": len(read.series),
                "integration_type": signal.integration_type,
                "external_tag": signal.external_tag,
                "source": read.source,
                "user_id": user_id,
            },
        )
    ]
    if read.source == "fallback":
        events += source_failure_events(
            user_id=user_id, signal=signal,
            message=f"Using synthetic fallback for {signal.metric}: {read.connector_error}",
        )
    return events


def source_failure_events(*, user_id: int, signal: Signal, message: str) -> list[EventDraft]:
    return [
        _twin_event(
            signal, source_type="CONNECTOR", category="CONNECTOR", severity="WARNING",
            summary=message,
            payload={
                "metric": signal.metric,
                "integration_type": signal.integration_type,
                "integration_id": signal.integration_id,
                "external_tag": signal.external_tag,
                "user_id": user_id,
            },
        )
    ]


def _twin_event(
    signal: Signal, *, source_type: str, category: str, severity: str, summary: str,
    payload: dict[str, Any],
) -> EventDraft:
    return EventDraft(
        tenant_id=signal.tenant_id, asset_id=signal.asset_id, source_system="OPTRIA_TWIN",
        source_type=source_type, event_category=category, severity=severity, summary=summary,
        payload=payload,
    )
