from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from webapp.types import Text

Criticality = Literal["high", "medium", "low"]


class AssetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
    name: Text = Field(min_length=1, max_length=200)
    asset_type: Text = Field(min_length=1, max_length=64)
    criticality: Criticality = "medium"
    location: Text | None = Field(default=None, max_length=200)


class AssetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    asset_type: str
    criticality: str
    location: str | None


class AssetList(BaseModel):
    assets: list[AssetOut]
