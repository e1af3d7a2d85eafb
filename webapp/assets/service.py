from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.assets.models import Asset
from webapp.assets.schemas import AssetCreate, AssetUpdate
from webapp.blackbox.audit import AuditedObject, ConfigAction, changes_between, record_config_change


class DuplicateAssetCode(Exception):
    pass


_AUDITED_FIELDS = (
    "code", "name", "asset_type", "criticality", "location", "machine_group", "foundation",
)


def _asset_view(asset: Asset) -> dict[str, object]:
    return {name: getattr(asset, name) for name in _AUDITED_FIELDS}


def list_assets(session: Session) -> Sequence[Asset]:
    return session.scalars(select(Asset).order_by(Asset.code, Asset.id)).all()


def get_asset(session: Session, asset_id: int) -> Asset | None:
    """None for a missing id and for another tenant's id alike (the scoping hook)."""
    return session.scalar(select(Asset).where(Asset.id == asset_id))


def get_asset_by_code(session: Session, code: str) -> Asset | None:
    return session.scalar(select(Asset).where(Asset.code == code))


def create_asset(session: Session, data: AssetCreate, *, actor_id: int | None) -> Asset:
    asset = Asset(**data.model_dump())
    session.add(asset)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise DuplicateAssetCode(data.code) from exc
    record_config_change(
        session, tenant_id=asset.tenant_id, actor_id=actor_id, obj=AuditedObject.asset,
        object_id=asset.id, action=ConfigAction.created, asset_id=asset.id,
        changes=changes_between({}, data.model_dump()),
    )
    session.commit()
    return asset


def update_asset(session: Session, asset: Asset, data: AssetUpdate, *, actor_id: int) -> Asset:
    before = _asset_view(asset)
    for name, value in data.model_dump(exclude_unset=True).items():
        setattr(asset, name, value)
    changes = changes_between(before, _asset_view(asset))
    if changes:
        record_config_change(
            session, tenant_id=asset.tenant_id, actor_id=actor_id, obj=AuditedObject.asset,
            object_id=asset.id, action=ConfigAction.updated, asset_id=asset.id,
            changes=changes,
        )
    session.commit()
    return asset
