from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from webapp.integrations.schemas import reject_explicit_nulls
from webapp.types import Text

Criticality = Literal["high", "medium", "low"]
# ISO 20816-3 (DESIGN.md §15): group 1 above 300 kW, group 2 from 15 to 300 kW.
MachineGroup = Literal[1, 2]
Foundation = Literal["rigid", "flexible"]


class AssetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
    name: Text = Field(min_length=1, max_length=200)
    asset_type: Text = Field(min_length=1, max_length=64)
    criticality: Criticality = "medium"
    location: Text | None = Field(default=None, max_length=200)
    machine_group: MachineGroup | None = None
    foundation: Foundation | None = None


class AssetUpdate(BaseModel):
    """PATCH: omitted fields stay; `location`, `machine_group` and `foundation` may be cleared
    with null (the last two then take the §15 defaults)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    asset_type: Text | None = Field(default=None, min_length=1, max_length=64)
    criticality: Criticality | None = None
    location: Text | None = Field(default=None, max_length=200)
    machine_group: MachineGroup | None = None
    foundation: Foundation | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> AssetUpdate:
        reject_explicit_nulls(self, nullable=frozenset({"location", "machine_group", "foundation"}))
        return self


class AssetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    asset_type: str
    criticality: str
    location: str | None
    machine_group: int | None
    foundation: str | None


class AssetList(BaseModel):
    assets: list[AssetOut]
