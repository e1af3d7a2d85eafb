from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from sqlalchemy.orm import Session

from webapp.assets import service
from webapp.assets.models import Asset
from webapp.assets.schemas import AssetCreate, AssetOut, AssetUpdate
from webapp.deps import AssetId, CurrentUser, EngineerUser, SessionDep

router = APIRouter(prefix="/api/assets", tags=["assets"])


def asset_or_404(db: Session, asset_id: int) -> Asset:
    """Find it in the user's tenant or 404: another tenant's id looks exactly like a missing one."""
    asset = service.get_asset(db, asset_id)
    if asset is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Asset {asset_id} not found")
    return asset


def get_current_asset(asset_id: AssetId, db: SessionDep, _user: CurrentUser) -> Asset:
    return asset_or_404(db, asset_id)


CurrentAsset = Annotated[Asset, Depends(get_current_asset)]


@router.post("", response_model=AssetOut, status_code=status.HTTP_201_CREATED)
def create_asset(data: AssetCreate, db: SessionDep, user: EngineerUser) -> Asset:
    try:
        return service.create_asset(db, data, actor_id=user.id)
    except service.DuplicateAssetCode:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"An asset with code {data.code!r} already exists"
        ) from None


@router.get("/{asset_id}", response_model=AssetOut)
def read_asset(asset: CurrentAsset) -> Asset:
    return asset


@router.patch("/{asset_id}", response_model=AssetOut)
def update_asset(
    asset_id: AssetId, data: AssetUpdate, db: SessionDep, user: EngineerUser
) -> Asset:
    """Name, type, criticality, location and the ISO 20816-3 classification; the code stays."""
    return service.update_asset(db, asset_or_404(db, asset_id), data, actor_id=user.id)
