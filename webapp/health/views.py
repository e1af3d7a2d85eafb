from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from webapp.assets.views import CurrentAsset
from webapp.deps import SessionDep
from webapp.health import service
from webapp.health.presenters import component_rows
from webapp.health.schemas import HealthHistoryOut, HealthOut
from webapp.templating import in_locale

router = APIRouter(prefix="/api/assets", tags=["health"])

MAX_HISTORY_HOURS = 720


@router.get("/{asset_id}/health", response_model=HealthOut)
def read_health(request: Request, asset: CurrentAsset, db: SessionDep) -> dict[str, object]:
    """The asset's newest assessment (DESIGN.md §15); older than 10 minutes → no_data."""
    view = service.current_health(db, asset.id)
    with in_locale(request.state.locale):
        components = component_rows(view.components)
    return {
        "asset_id": view.asset_id,
        "score": view.score,
        "band": view.band,
        "zone": view.zone,
        "computed_at": view.computed_at,
        "model": view.model,
        "components": components,
        "time_to_zone_c_hours": view.time_to_zone_c_hours,
    }


@router.get("/{asset_id}/health/history", response_model=HealthHistoryOut)
def read_health_history(
    asset: CurrentAsset,
    db: SessionDep,
    hours: Annotated[int, Query(ge=1, le=MAX_HISTORY_HOURS)] = 24,
) -> dict[str, object]:
    """Stored scores of the last `hours`, oldest first; `score` null where there was no data."""
    points = service.health_history(db, asset.id, hours=hours)
    return {
        "asset_id": asset.id,
        "points": [{"timestamp": at, "score": score} for at, score in points],
    }
