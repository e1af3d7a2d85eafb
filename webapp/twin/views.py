"""The Digital Twin: pages and fragments for operators, JSON for integrators."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker
from sse_starlette import EventSourceResponse, ServerSentEvent

from webapp.alarms import service as alarm_service
from webapp.alarms.presenters import Banner, Viewer, alarm_rows, read_banner, viewer_of
from webapp.alarms.views import keep_banner
from webapp.assets import service as asset_service
from webapp.assets.models import Asset
from webapp.assets.schemas import AssetOut
from webapp.assets.views import asset_or_404
from webapp.blackbox.service import EventDraft
from webapp.blackbox.writer import EventsNotRecorded, EventWriter
from webapp.db import as_utc, tenant_session, utcnow
from webapp.deps import (
    AssetId,
    CurrentUser,
    ReadPath,
    ReadPathDep,
    SessionDep,
    SettingsDep,
    credential_digest,
    db_call,
    stream_slot,
)
from webapp.health import service as health_service
from webapp.health.presenters import health_panel, vibration_class
from webapp.health.service import AssetHealthView
from webapp.live.grid import CardReadings, read_cards
from webapp.live.hub import LiveHub
from webapp.live.transport import LiveEventSourceResponse, event_id
from webapp.series import Series
from webapp.templating import in_locale, is_htmx, render_page, render_partial
from webapp.tenancy.models import User
from webapp.timeseries import service as series_service
from webapp.timeseries.schemas import (
    FastJSONResponse,
    MetricDetail,
    MetricList,
    SeriesOut,
    iso_timestamps,
    point_dicts,
)
from webapp.timeseries.service import (
    SeriesMode,
    SeriesRead,
    Signal,
    SourceUnavailable,
)
from webapp.twin.charts import ChartLimit
from webapp.twin.live_charts import LiveCharts
from webapp.twin.presenters import (
    RANGE_SPANS,
    CardValue,
    ChartRange,
    GridOrder,
    attention_key,
    card_value,
    chart_window,
    metric_context,
    metric_links,
)
from webapp.twin.schemas import TwinAssetList, TwinAssetOut
from webapp.types import UTCDatetime, utc_from

router = APIRouter()


CARD_READ_BUDGET_SECONDS = 1.5
MetricName = Annotated[str, Path(min_length=1, max_length=64, description="Internal metric name")]


def _signal_or_404(db: Session, asset_id: int, metric: str) -> Signal:
    """Unknown asset, another tenant's asset, unknown or inactive metric: all plain 404."""
    signal = series_service.find_signal(db, asset_id, metric)
    if signal is None:
        asset_or_404(db, asset_id)  # only on the way to a 404: which of the two is missing
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"Metric {metric!r} is not mapped for asset {asset_id}"
        )
    return signal


def _chart_limits(db: Session, signal: Signal) -> tuple[ChartLimit, ...]:
    """The signal's active alarm limits, from the same service as the limits API."""
    return tuple(
        ChartLimit(view.limit.level, view.limit.threshold)
        for view in alarm_service.list_limits(db, mapping_id=signal.mapping_id)
        if view.limit.is_active
    )


async def signal_or_404(path: ReadPath, user: User, asset_id: int, metric: str) -> Signal:
    """The signal from the cache (a few seconds old at most, dropped on any change of the
    tenant's mappings, integrations or assets) or one lookup in a session of its own, so a
    read that hits the cache needs none; 404 as `_signal_or_404`."""
    key = (user.tenant_id, asset_id, metric)
    signal = path.signals.get(key)
    if signal is None:
        generation = path.signals.generation
        signal = await run_in_threadpool(
            _look_up_signal, path.sessions, user.tenant_id, asset_id, metric
        )
        path.signals.put(key, signal, tenant_id=user.tenant_id, generation=generation)
    return signal


def _look_up_signal(
    sessions: sessionmaker[Session], tenant_id: int, asset_id: int, metric: str
) -> Signal:
    with tenant_session(sessions, tenant_id) as db:
        return _signal_or_404(db, asset_id, metric)


async def _signal_and_limits(
    db: Session, path: ReadPath, user: User, asset_id: int, metric: str
) -> tuple[Signal, tuple[ChartLimit, ...]]:
    signal = await signal_or_404(path, user, asset_id, metric)
    return signal, await db_call(db, _chart_limits, signal)


def _unprocessable(parameter: str, message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"type": "value_error", "loc": ["query", parameter], "msg": message}],
    )


async def record_events(blackbox: EventWriter, drafts: list[EventDraft]) -> None:
    """On record before the response (the group commit); if the BlackBox cannot take them, the
    read is not shown: 503, never plant data without its trace."""
    try:
        await blackbox.record(drafts)
    except EventsNotRecorded as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"The read could not be recorded in the BlackBox, so it is not shown: {exc}",
        ) from None


class WindowParams(BaseModel):
    """The series API's window parameters (JSON and CSV alike): one query model, validated at
    once (cheaper per request than four parameters or a dependency, DESIGN.md §17)."""

    from_time: UTCDatetime | None = Field(None, description="ISO 8601; naive means UTC")
    to_time: UTCDatetime | None = Field(None, description="ISO 8601; default and max: now")
    limit: int = Field(100, ge=1, le=10000)
    mode: SeriesMode = SeriesMode.raw


WindowQuery = Annotated[WindowParams, Query()]


def series_window(params: WindowParams) -> series_service.SeriesWindow:
    """The window the parameters ask for; one that cannot be served → 422."""
    try:
        return series_service.resolve_window(
            from_time=params.from_time, to_time=params.to_time, limit=params.limit,
            mode=params.mode,
        )
    except series_service.WindowError as exc:
        raise _unprocessable(exc.parameter, str(exc)) from None


SERIES_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown asset or metric"},
    422: {"description": "Invalid window, limit or mode"},
    503: {"description": "Source unavailable and no fallback configured"},
}


async def read_series_for_user(
    path: ReadPath, user: User, signal: Signal, window: series_service.SeriesWindow
) -> SeriesRead:
    """Read and record in the BlackBox; an unreachable source without fallback → 503."""
    try:
        read = await series_service.read_series(signal, window, path.sources)
    except SourceUnavailable as failure:
        await record_failure(path.blackbox, user, failure)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(failure)) from None
    await record_events(
        path.blackbox, series_service.series_read_events(user_id=user.id, read=read)
    )
    return read


async def record_failure(blackbox: EventWriter, user: User, failure: SourceUnavailable) -> None:
    await record_events(
        blackbox,
        series_service.source_failure_events(
            user_id=user.id, signal=failure.signal, message=str(failure)
        ),
    )


# --- JSON API ------------------------------------------------------------------------------


@router.get("/api/twins/assets", response_model=TwinAssetList, tags=["twins"])
def list_twin_assets(db: SessionDep, _user: CurrentUser) -> TwinAssetList:
    health = health_service.current_health_by_asset(db)
    assets = []
    for asset in asset_service.list_assets(db):
        current = health.get(asset.id)
        assets.append(
            TwinAssetOut.model_validate(
                {
                    **AssetOut.model_validate(asset).model_dump(),
                    "health_score": current.score if current else None,
                    "health_band": current.band if current else "no_data",
                }
            )
        )
    return TwinAssetList(assets=assets)


@router.get("/api/twins/assets/{asset_id}/metrics", response_model=MetricList, tags=["twins"])
def list_asset_metrics(asset_id: AssetId, db: SessionDep, _user: CurrentUser) -> MetricList:
    asset_or_404(db, asset_id)
    signals = series_service.asset_signals(db, asset_id)
    return MetricList(
        asset_id=asset_id,
        metrics=[s.metric for s in signals],
        details=[
            MetricDetail(
                name=s.metric, unit=s.unit, external_tag=s.external_tag,
                integration_type=s.integration_type,
            )
            for s in signals
        ],
    )


@router.get(
    "/api/twins/assets/{asset_id}/metrics/{metric_name}/series",
    tags=["twins"],
    response_model=SeriesOut,
    responses=SERIES_ERRORS,
)
async def metric_series(
    asset_id: AssetId,
    metric_name: MetricName,
    user: CurrentUser,
    path: ReadPathDep,
    window_params: WindowQuery,
) -> FastJSONResponse:
    window = series_window(window_params)
    signal = await signal_or_404(path, user, asset_id, metric_name)
    read = await read_series_for_user(path, user, signal, window)
    # Built directly: a response model would re-validate thousands of points; orjson writes
    # them several times faster than the standard library.
    return FastJSONResponse(
        {
            "asset_id": asset_id,
            "metric": signal.metric,
            "unit": signal.unit,
            "source": read.source,
            "integration_type": signal.integration_type,
            "mode": read.mode.value,
            "truncated": read.truncated,
            "points": point_dicts(read.series, signal.unit),
        }
    )


def _csv_filename(code: str, metric: str, read: SeriesRead) -> str:
    """`{code}_{metric}_{first}_{last}.csv`, safe in any filesystem and header."""
    stamps = iso_timestamps(read.series.timestamps[[0, -1]]) if len(read.series) else []
    span = "_".join(stamp.replace(":", "").replace("-", "") for stamp in stamps) or "empty"
    name = f"{code}_{metric}_{span}.csv"
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)


def _series_csv(read: SeriesRead) -> str:
    """The JSON's points as CSV: timestamps written alike, a null value an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("timestamp", "value", "unit", "quality"))
    for point in point_dicts(read.series, read.signal.unit):
        value = point["value"]
        writer.writerow((point["timestamp"], "" if value is None else repr(value),
                         point["unit"] or "", point["quality"]))
    return out.getvalue()


@router.get(
    "/api/twins/assets/{asset_id}/metrics/{metric_name}/series.csv",
    tags=["twins"],
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "timestamp,value,unit,quality"},
        **SERIES_ERRORS,
    },
)
async def metric_series_csv(
    asset_id: AssetId,
    metric_name: MetricName,
    db: SessionDep,
    user: CurrentUser,
    path: ReadPathDep,
    window_params: WindowQuery,
) -> Response:
    """The series API's points as a CSV download (one SENSOR event, like the JSON)."""
    window = series_window(window_params)
    signal = await signal_or_404(path, user, asset_id, metric_name)
    asset = await db_call(db, asset_or_404, asset_id)
    read = await read_series_for_user(path, user, signal, window)
    filename = _csv_filename(asset.code, signal.metric, read)
    return Response(
        _series_csv(read),
        media_type="text/csv; charset=utf-8",
        # The JSON's `truncated`: more points than `limit` were in the window.
        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                 "X-Truncated": "true" if read.truncated else "false"},
    )


# --- pages and fragments -------------------------------------------------------------------

RangeQuery = Annotated[
    ChartRange, Query(alias="range", description="100, 24h, 7d, or custom with from_time, to_time")
]
OrderQuery = Annotated[
    GridOrder, Query(alias="sort", description="attention (alarms, then lowest health) or code")
]


def _hub(request: Request) -> LiveHub:
    return request.app.state.hub


def _charts(request: Request) -> LiveCharts:
    return request.app.state.charts


async def _card_values(
    hub: LiveHub, signals: dict[int, list[Signal]], timezone: str, locale: str,
    interval_seconds: float,
) -> dict[int, list[CardValue]]:
    """Each card's first two metrics, from the live hub (a summary: no SENSOR event).

    A slow source gets a short budget: its cards show "—" now and its reading, once it comes,
    is cached by the hub for the next page (and the live grid fills it in)."""
    readings = await read_cards(hub.latest, signals, budget=CARD_READ_BUDGET_SECONDS)
    return card_values(readings, timezone=timezone, locale=locale,
                       interval_seconds=interval_seconds)


def card_values(
    readings: CardReadings, *, timezone: str, locale: str, interval_seconds: float
) -> dict[int, list[CardValue]]:
    now = utcnow()
    return {
        asset_id: [
            card_value(signal, newest, timezone=timezone, locale=locale, now=now,
                       interval_seconds=interval_seconds)
            for signal, newest in pairs
        ]
        for asset_id, pairs in readings.items()
    }


@dataclass(frozen=True, slots=True)
class _Grid:
    assets: list[Asset]
    signals: dict[int, list[Signal]]
    banner: Banner
    health: dict[int, AssetHealthView]


def _grid_context(db: Session) -> _Grid:
    return _Grid(
        list(asset_service.list_assets(db)), series_service.signals_by_asset(db), read_banner(db),
        health_service.current_health_by_asset(db),
    )


async def _page_context(
    request: Request, db: Session, user: User, order: GridOrder
) -> dict[str, object]:
    grid = await db_call(db, _grid_context)
    # The same reading feeds the banner and the cards' alarm marks, so they always agree.
    keep_banner(request, grid.banner)
    values = await _card_values(
        _hub(request), grid.signals, user.tenant.timezone, request.state.locale,
        request.app.state.settings.stream_interval_seconds,
    )
    assets = grid.assets
    if order is GridOrder.attention:
        # Ordered once, as the page loads: cards never move under the operator's eyes.
        def key(asset: Asset) -> tuple[int, int, int, str]:
            health = grid.health.get(asset.id)
            return attention_key(
                asset.code, grid.banner.assets.get(asset.id), health.score if health else None
            )

        assets = sorted(assets, key=key)
    return {
        "assets": assets, "asset_signals": grid.signals, "card_values": values,
        "card_alarms": grid.banner.assets, "card_health": grid.health, "grid_order": order,
        "grid_interval_ms": int(request.app.state.settings.stream_interval_seconds * 1000),
        "grid_orders": list(GridOrder),
    }


@router.get("/twins", response_class=HTMLResponse, include_in_schema=False)
async def twins_page(
    request: Request, db: SessionDep, user: CurrentUser, order: OrderQuery = GridOrder.attention
) -> HTMLResponse:
    # For htmx (the panel's close button) only the now-empty panel block.
    if is_htmx(request):
        return render_page(request, "twins/index.html", {"selected": None}, block="twin_panel")
    context = await _page_context(request, db, user, order)
    return render_page(request, "twins/index.html", {**context, "selected": None})


HEALTH_TREND_HOURS = 24


def _panel_context(db: Session, asset_id: int, viewer: Viewer) -> dict[str, object]:
    asset = asset_or_404(db, asset_id)
    alarms = [
        *alarm_service.list_alarms(db, state=alarm_service.StateFilter.active, asset_id=asset_id),
        *alarm_service.list_alarms(
            db, state=alarm_service.StateFilter.suppressed, asset_id=asset_id
        ),
    ]
    now = utcnow()
    return {
        "selected": asset,
        "signals": series_service.asset_signals(db, asset_id),
        "asset_alarms": alarm_rows(alarms, viewer),
        "now": now,
        "health_view": health_service.current_health(db, asset_id, now),
        "health_points": health_service.health_history(
            db, asset_id, hours=HEALTH_TREND_HOURS, now=now
        ),
    }


async def _panel(request: Request, db: Session, user: User, asset_id: int) -> dict[str, object]:
    """The panel's facts, alarms, health and signals, formatted for the viewer."""
    locale = request.state.locale
    panel = await db_call(db, _panel_context, asset_id, viewer_of(user, locale))
    with in_locale(locale):
        health = health_panel(
            panel.pop("health_view"), panel.pop("health_points"), now=panel.pop("now"),
            hours=HEALTH_TREND_HOURS, timezone=user.tenant.timezone, locale=locale,
        )
    return {**panel, "health": health, "vibration_class": vibration_class(panel["selected"])}


@router.get("/twins/assets/{asset_id}", response_class=HTMLResponse, include_in_schema=False)
async def asset_panel(
    request: Request, asset_id: AssetId, db: SessionDep, user: CurrentUser,
    order: OrderQuery = GridOrder.attention,
) -> HTMLResponse:
    """The panel; its first metric loads by itself (a fragment request, with its own event)."""
    panel = await _panel(request, db, user, asset_id)
    signals = panel["signals"]
    context = {**panel, "selected_metric": signals[0].metric if signals else None, "metric": None}
    if not is_htmx(request):
        context = {**await _page_context(request, db, user, order), **context}
    return render_page(request, "twins/index.html", context, block="twin_panel")


LocalTime = Annotated[
    datetime | None,
    Query(description="ISO 8601, with range=custom; naive: in `tz`, else UTC"),
]
ZoneQuery = Annotated[
    str | None,
    Query(max_length=64, description="IANA timezone of naive from_time/to_time (default UTC)"),
]


def _metric_window(
    chart_range: ChartRange, from_time: datetime | None, to_time: datetime | None,
    tz: str | None,
) -> series_service.SeriesWindow:
    """The metric view's window: a live range, or `custom` from_time…to_time validated like
    the series API (a naive time read in `tz`, the plant's zone the form sends). → 422."""
    try:
        zone = ZoneInfo(tz) if tz else UTC
    except (ZoneInfoNotFoundError, ValueError):
        raise _unprocessable("tz", f"unknown timezone {tz!r} (an IANA name, e.g. Asia/Riyadh)"
                             ) from None
    moments: dict[str, datetime | None] = {}
    for name, value in (("from_time", from_time), ("to_time", to_time)):
        try:
            moments[name] = None if value is None else utc_from(value, zone)
        except ValueError as exc:
            raise _unprocessable(name, str(exc)) from None
    try:
        return chart_window(chart_range, **moments)
    except series_service.WindowError as exc:
        raise _unprocessable(exc.parameter, str(exc)) from None


@router.get(
    "/twins/assets/{asset_id}/metrics/{metric_name}",
    response_class=HTMLResponse,
    include_in_schema=False,
)
async def metric_view(
    request: Request,
    asset_id: AssetId,
    metric_name: MetricName,
    db: SessionDep,
    user: CurrentUser,
    path: ReadPathDep,
    settings: SettingsDep,
    chart_range: RangeQuery = ChartRange.last_100,
    order: OrderQuery = GridOrder.attention,
    from_time: LocalTime = None,
    to_time: LocalTime = None,
    tz: ZoneQuery = None,
) -> HTMLResponse:
    """Latest value + chart of one metric; errors stay readable inside the panel (a window
    that cannot be served → 422 with what was wrong, the source down → 503, unknown → 404)."""
    context: dict[str, object] = {"selected_metric": metric_name, "metric": None}
    status_code = 200
    try:
        window = _metric_window(chart_range, from_time, to_time, tz)
        signal, limits = await _signal_and_limits(db, path, user, asset_id, metric_name)
        read = await read_series_for_user(path, user, signal, window)
        timezone = user.tenant.timezone
        context["metric"] = {
            **metric_context(
                signal=signal, chart_range=chart_range, series=read.series, source=read.source,
                timezone=timezone, locale=request.state.locale,
                interval_seconds=settings.stream_interval_seconds, limits=limits,
                # A live fragment's table comes with its stream's opening: not sent twice
                # (hundreds of hidden rows were most of the swap).
                table=not (is_htmx(request) and chart_range is not ChartRange.custom),
            ),
            **metric_links(signal, chart_range, window, timezone),
        }
    except HTTPException as exc:
        if exc.status_code not in (404, 422, 503):
            raise
        status_code = exc.status_code
        context["metric_error"] = {
            "status": exc.status_code, "message": _problem_text(exc),
            # A window that could not be shown: back to the same metric, live.
            "back_url": f"/twins/assets/{asset_id}/metrics/{quote(metric_name, safe='')}"
            if exc.status_code == 422 else None,
        }
    if not is_htmx(request):
        try:
            panel = await _panel(request, db, user, asset_id)
        except HTTPException:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"Asset {asset_id} not found") from None
        context = {**await _page_context(request, db, user, order), **panel, **context}
    return render_page(
        request, "twins/index.html", context, block="metric_view", status_code=status_code
    )


def _problem_text(exc: HTTPException) -> str:
    """An error's detail as one line: a 422's parameter and what was wrong with it."""
    if isinstance(exc.detail, list):
        return "; ".join(f"{problem['loc'][-1]}: {problem['msg']}" for problem in exc.detail)
    return str(exc.detail)


# --- live streams --------------------------------------------------------------------------


@router.get("/twins/stream", include_in_schema=False)
async def grid_stream(
    request: Request, db: SessionDep, user: CurrentUser, settings: SettingsDep,
) -> EventSourceResponse:
    """The overview's live cards (§18): one stream per page, a `card-<asset id>` event with a
    card's values whenever they change (time and staleness included), rendered once per tick
    per tenant and locale."""
    hub = _hub(request)
    with stream_slot(request, user, settings) as release:
        signals = await db_call(db, series_service.signals_by_asset)
        locale, timezone = request.state.locale, user.tenant.timezone
        digest = credential_digest(request)
        interval = settings.stream_interval_seconds

        def render(readings: CardReadings) -> dict[int, bytes]:
            values = card_values(readings, timezone=timezone, locale=locale,
                                 interval_seconds=interval)
            return {
                asset_id: ServerSentEvent(
                    data=render_partial("_card_values.html", {"values": card}, locale=locale),
                    event=f"card-{asset_id}",
                ).encode()
                for asset_id, card in values.items()
            }

        return LiveEventSourceResponse(
            lambda send: hub.stream_grid(
                (user.tenant_id, locale), send, signals=signals, render=render, digest=digest,
            ),
            release=release,
        )



def _last_event_time(request: Request) -> datetime | None:
    """Where a reconnecting client left off. An id we never issued — unparsable, in the
    future (it would hold back every new reading) or older than the longest window (it would
    ask history for a year and more) — starts from now rather than failing the reconnect."""
    header = request.headers.get("Last-Event-ID", "").strip()
    if not header:
        return None
    try:
        moment = as_utc(datetime.fromisoformat(header.replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        return None
    now = utcnow()
    return moment if now - series_service.MAX_WINDOW <= moment <= now else None


async def _ensure_chart(
    charts: LiveCharts, path: ReadPath, user: User, signal: Signal, chart_range: ChartRange
) -> tuple[int, str]:
    """Seed the shared chart of (mapping, range); the stream's one SENSOR event is this read."""
    read = await read_series_for_user(path, user, signal, chart_window(chart_range))
    key = (signal.mapping_id, chart_range.value)
    charts.seed(
        key, read.series, signal=signal, window=lambda: chart_window(chart_range),
        plot=RANGE_SPANS[chart_range] is not None,
    )
    return key


@router.get(
    "/twins/assets/{asset_id}/metrics/{metric_name}/stream", include_in_schema=False
)
async def metric_fragment_stream(
    request: Request,
    asset_id: AssetId,
    metric_name: MetricName,
    db: SessionDep,
    user: CurrentUser,
    path: ReadPathDep,
    settings: SettingsDep,
    chart_range: RangeQuery = ChartRange.last_100,
) -> EventSourceResponse:
    """SSE fragments (§18): the stream opens with `latest`, `chart` and `table`; then `latest`
    for every newer reading, and `chart` and `table` only when the chart's drawing changed.
    Rendered once per tick per (mapping, range, locale, limits), whatever the viewer count."""
    if chart_range is ChartRange.custom:
        raise _unprocessable("range", "a custom window is not live: open it without a stream")
    hub = _hub(request)
    with stream_slot(request, user, settings) as release:
        # The chart's limits are read once, here (one edited later shows on the next stream).
        signal, limits = await _signal_and_limits(db, path, user, asset_id, metric_name)
        charts = _charts(request)
        chart_key = await _ensure_chart(charts, path, user, signal, chart_range)
        # Everything the stream needs is copied now: no database session while it streams.
        locale, timezone = request.state.locale, user.tenant.timezone
        digest, after = credential_digest(request), _last_event_time(request)

        def events(newest: Series, *, with_chart: bool) -> bytes:
            chart_series = charts.chart_for(chart_key)
            context = metric_context(
                signal=signal, chart_range=chart_range, series=chart_series,
                source=hub.source_of(signal), timezone=timezone, locale=locale,
                interval_seconds=settings.stream_interval_seconds, limits=limits,
                latest=newest,
            )
            reading_id = event_id(int(newest.timestamps[-1])) if len(newest) else None
            parts = [("latest", "_metric_latest.html")]
            if with_chart:
                parts += [("chart", "_metric_chart.html"), ("table", "_metric_table.html")]
            return b"".join(
                ServerSentEvent(
                    data=render_partial(template, context, locale=locale), event=name,
                    id=reading_id,
                ).encode()
                for name, template in parts
            )

        def opening() -> tuple[bytes, int | None]:
            newest = hub.newest(signal)
            if len(newest):
                return events(newest, with_chart=True), int(newest.timestamps[-1])
            # The feed's first poll is still out: the chart's last sample for now, and the
            # feed's first reading follows as soon as it is in.
            return events(charts.chart_for(chart_key).tail(1), with_chart=True), None

        def render(batch: Series) -> bytes:
            return events(batch.tail(1), with_chart=charts.chart_changed_in(chart_key, batch))

        return LiveEventSourceResponse(
            lambda send: hub.stream(
                # Viewers share one render per tick only when they draw the same limits.
                signal, send, variant=("fragments", chart_key, locale, limits), encode=render,
                after=after, digest=digest, opening=opening,
            ),
            release=release,
        )


@router.get(
    "/api/twins/assets/{asset_id}/metrics/{metric_name}/stream",
    tags=["twins"],
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE `point` events"}},
)
async def metric_point_stream(
    request: Request,
    asset_id: AssetId,
    metric_name: MetricName,
    user: CurrentUser,
    path: ReadPathDep,
    settings: SettingsDep,
) -> EventSourceResponse:
    """`event: point` per new reading, `id:` its timestamp; honours Last-Event-ID."""
    hub = _hub(request)
    with stream_slot(request, user, settings) as release:
        signal = await signal_or_404(path, user, asset_id, metric_name)
        latest = await hub.latest(signal)
        if latest is None:
            failure = SourceUnavailable(signal, f"The source for {signal.metric} is unavailable")
            await record_failure(path.blackbox, user, failure)
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(failure))
        opened = series_service.stream_opened(signal, *latest)
        await record_events(
            path.blackbox, series_service.series_read_events(user_id=user.id, read=opened)
        )
        digest, after = credential_digest(request), _last_event_time(request)

        def encode(batch: Series) -> bytes:
            return b"".join(
                ServerSentEvent(data=json.dumps(point), event="point", id=str(point["timestamp"]))
                .encode()
                for point in point_dicts(batch, signal.unit)
            )

        return LiveEventSourceResponse(
            lambda send: hub.stream(
                signal, send, variant="points", encode=encode, after=after, digest=digest
            ),
            release=release,
        )
