"""The Digital Twin: pages and fragments for operators, JSON for integrators."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse

from webapp.assets import service as asset_service
from webapp.assets.models import Asset
from webapp.assets.schemas import AssetList
from webapp.deps import AssetId, CurrentUser, SessionDep
from webapp.templating import render_page

router = APIRouter()


def _asset_or_404(db: SessionDep, asset_id: int) -> Asset:
    asset = asset_service.get_asset(db, asset_id)
    if asset is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Asset {asset_id} not found")
    return asset


@router.get("/api/twins/assets", response_model=AssetList, tags=["twins"])
def list_twin_assets(db: SessionDep, _user: CurrentUser) -> AssetList:
    return AssetList.model_validate({"assets": asset_service.list_assets(db)}, from_attributes=True)


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
