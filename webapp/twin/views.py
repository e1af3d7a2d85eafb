"""The Digital Twin: pages and fragments for operators, JSON for integrators."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.orm import Session

from webapp.assets import service as asset_service
from webapp.assets.models import Asset
from webapp.assets.schemas import AssetList
from webapp.deps import AssetId, CurrentUser, SessionDep, SettingsDep
from webapp.templating import render_page
from webapp.tenancy.models import User
from webapp.timeseries import service as series_service
from webapp.timeseries.schemas import MetricDetail, MetricList, SeriesOut, point_dicts
from webapp.timeseries.service import SeriesMode, SeriesRead, Signal, SourceUnavailable

router = APIRouter()

MetricName = Annotated[str, Path(min_length=1, max_length=64, description="Internal metric name")]


def _asset_or_404(db: Session, asset_id: int) -> Asset:
    asset = asset_service.get_asset(db, asset_id)
    if asset is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Asset {asset_id} not found")
    return asset


def _signal_or_404(db: Session, asset_id: int, metric: str) -> Signal:
    """Unknown asset, another tenant's asset, unknown or inactive metric: all plain 404."""
    _asset_or_404(db, asset_id)
    signal = series_service.find_signal(db, asset_id, metric)
    if signal is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"Metric {metric!r} is not mapped for asset {asset_id}"
        )
    return signal


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _unprocessable(parameter: str, message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"type": "value_error", "loc": ["query", parameter], "msg": message}],
    )


def _record_read(db: Session, user: User, read: SeriesRead) -> None:
    series_service.record_series_read(db, user_id=user.id, read=read)
    db.commit()


def _record_failure(db: Session, user: User, failure: SourceUnavailable) -> None:
    series_service.record_source_failure(
        db, user_id=user.id, signal=failure.signal, message=str(failure)
    )
    db.commit()


async def read_series_for_user(
    db: Session, user: User, signal: Signal, window: series_service.SeriesWindow, timeout: float
) -> SeriesRead:
    """Read and record in the BlackBox; an unreachable source without fallback → 503."""
    try:
        read = await series_service.read_series(signal, window, timeout=timeout)
    except SourceUnavailable as failure:
        await run_in_threadpool(_record_failure, db, user, failure)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(failure)) from None
    await run_in_threadpool(_record_read, db, user, read)
    return read


# --- JSON API ------------------------------------------------------------------------------


@router.get("/api/twins/assets", response_model=AssetList, tags=["twins"])
def list_twin_assets(db: SessionDep, _user: CurrentUser) -> AssetList:
    return AssetList.model_validate({"assets": asset_service.list_assets(db)}, from_attributes=True)


@router.get("/api/twins/assets/{asset_id}/metrics", response_model=MetricList, tags=["twins"])
def list_asset_metrics(asset_id: AssetId, db: SessionDep, _user: CurrentUser) -> MetricList:
    _asset_or_404(db, asset_id)
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
    responses={
        404: {"description": "Unknown asset or metric"},
        422: {"description": "Invalid window, limit or mode"},
        503: {"description": "Source unavailable and no fallback configured"},
    },
)
async def metric_series(
    asset_id: AssetId,
    metric_name: MetricName,
    db: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    from_time: Annotated[datetime | None, Query(description="ISO 8601; naive means UTC")] = None,
    to_time: Annotated[datetime | None, Query(description="ISO 8601; default and max: now")] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
    mode: SeriesMode = SeriesMode.raw,
) -> JSONResponse:
    try:
        window = series_service.resolve_window(
            from_time=_as_utc(from_time), to_time=_as_utc(to_time), limit=limit, mode=mode
        )
    except series_service.WindowError as exc:
        raise _unprocessable(exc.parameter, str(exc)) from None
    signal = await run_in_threadpool(_signal_or_404, db, asset_id, metric_name)
    read = await read_series_for_user(
        db, user, signal, window, settings.connector_timeout_seconds
    )
    # Built directly: a response model would re-validate thousands of points.
    return JSONResponse(
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


# --- pages and fragments -------------------------------------------------------------------


@router.get("/twins", response_class=HTMLResponse, include_in_schema=False)
def twins_page(request: Request, db: SessionDep, _user: CurrentUser) -> HTMLResponse:
    # For htmx (the panel's close button) only the now-empty panel block.
    return render_page(
        request,
        "twins/index.html",
        {"assets": asset_service.list_assets(db), "selected": None},
        block="twin_panel",
    )


@router.get("/twins/assets/{asset_id}", response_class=HTMLResponse, include_in_schema=False)
def asset_panel(
    request: Request, asset_id: AssetId, db: SessionDep, _user: CurrentUser
) -> HTMLResponse:
    asset = _asset_or_404(db, asset_id)
    return render_page(
        request,
        "twins/index.html",
        {"assets": asset_service.list_assets(db), "selected": asset},
        block="twin_panel",
    )
