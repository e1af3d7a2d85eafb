from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from webapp.types import MAX_DB_ID, Text, storable_json

IntegrationType = Literal["demo", "pi", "opcua", "sql"]
METRIC_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
DbId = Field(ge=1, le=MAX_DB_ID)


def reject_explicit_nulls(patch: BaseModel, nullable: frozenset[str] = frozenset()) -> None:
    """PATCH: an omitted field is left alone, but an explicit null is a mistake, not a no-op."""
    for name in sorted(patch.model_fields_set - nullable):
        if getattr(patch, name) is None:
            raise ValueError(f"{name} cannot be null")


def _storable_config(config: dict[str, Any] | None) -> dict[str, Any] | None:
    where = storable_json(config) if config is not None else None
    if where:
        raise ValueError(f"{where} holds a NUL character or a number that is not finite")
    return config


StorableConfig = Annotated[dict[str, Any], AfterValidator(_storable_config)]


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: IntegrationType
    name: Text = Field(min_length=1, max_length=200)
    config: StorableConfig = Field(default_factory=dict)
    is_active: bool = True


class IntegrationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    config: StorableConfig | None = None
    is_active: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> IntegrationUpdate:
        reject_explicit_nulls(self)
        return self


class IntegrationOut(BaseModel):
    id: int
    type: str
    name: str
    is_active: bool
    config: dict[str, Any]


class IntegrationList(BaseModel):
    integrations: list[IntegrationOut]


class ConnectionTestResult(BaseModel):
    ok: bool
    detail: str
    latency_ms: float


class MappingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    asset_id: int = DbId
    integration_id: int = DbId
    internal_metric_name: str = Field(pattern=METRIC_NAME_PATTERN)
    external_tag: Text = Field(min_length=1, max_length=512)
    scaling_factor: float = Field(default=1.0, allow_inf_nan=False)
    offset_value: float = Field(default=0.0, allow_inf_nan=False)
    unit: Text | None = Field(default=None, max_length=32)
    is_active: bool = True
    range_low: float | None = Field(default=None, allow_inf_nan=False)
    range_high: float | None = Field(default=None, allow_inf_nan=False)


class MappingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_tag: Text | None = Field(default=None, min_length=1, max_length=512)
    scaling_factor: float | None = Field(default=None, allow_inf_nan=False)
    offset_value: float | None = Field(default=None, allow_inf_nan=False)
    unit: Text | None = Field(default=None, max_length=32)
    is_active: bool | None = None
    # null clears an end: the axis then comes from the limits or the history (§18).
    range_low: float | None = Field(default=None, allow_inf_nan=False)
    range_high: float | None = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _only_unit_and_range_may_be_cleared(self) -> MappingUpdate:
        reject_explicit_nulls(self, nullable=frozenset({"unit", "range_low", "range_high"}))
        return self


class MappingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    asset_id: int
    integration_id: int
    internal_metric_name: str
    external_tag: str
    scaling_factor: float
    offset_value: float
    unit: str | None
    is_active: bool
    range_low: float | None
    range_high: float | None


class MappingList(BaseModel):
    mappings: list[MappingOut]
