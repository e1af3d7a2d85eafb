from __future__ import annotations

from pydantic import BaseModel

from webapp.assets.schemas import AssetOut
from webapp.health.schemas import Band


class TwinAssetOut(AssetOut):
    """An asset on the twin, with its health now (DESIGN.md §15)."""

    health_score: int | None
    health_band: Band


class TwinAssetList(BaseModel):
    assets: list[TwinAssetOut]
