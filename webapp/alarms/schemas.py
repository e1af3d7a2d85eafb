from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from webapp.alarms.models import MAX_DELAY_SECONDS
from webapp.blackbox.schemas import StoredUTC
from webapp.integrations.schemas import DbId, reject_explicit_nulls
from webapp.types import Text

LevelName = Literal["hihi", "hi", "lo", "lolo"]
PriorityName = Literal["high", "medium", "low"]
AlarmState = Literal["unack_active", "ack_active", "rtn_unack", "closed"]
Suppression = Literal["shelved", "out_of_service"]
MAX_SHELVE_MINUTES = 720


class LimitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mapping_id: int = DbId
    level: LevelName
    threshold: float = Field(allow_inf_nan=False)
    deadband: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    on_delay_seconds: int = Field(default=0, ge=0, le=MAX_DELAY_SECONDS)
    off_delay_seconds: int = Field(default=0, ge=0, le=MAX_DELAY_SECONDS)
    priority: PriorityName
    is_active: bool = True
    out_of_service: bool = False


class LimitUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float | None = Field(default=None, allow_inf_nan=False)
    deadband: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    on_delay_seconds: int | None = Field(default=None, ge=0, le=MAX_DELAY_SECONDS)
    off_delay_seconds: int | None = Field(default=None, ge=0, le=MAX_DELAY_SECONDS)
    priority: PriorityName | None = None
    is_active: bool | None = None
    out_of_service: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> LimitUpdate:
        reject_explicit_nulls(self)
        return self


class ShelveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    minutes: int = Field(ge=1, le=MAX_SHELVE_MINUTES)
    reason: Text = Field(min_length=1, max_length=500)


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    comment: Text | None = Field(default=None, max_length=1000)


class LimitOut(BaseModel):
    id: int
    mapping_id: int
    asset_id: int
    metric: str
    level: str
    threshold: float
    deadband: float
    on_delay_seconds: int
    off_delay_seconds: int
    priority: str
    is_active: bool
    out_of_service: bool
    shelved_until: StoredUTC | None
    shelve_reason: str | None


class LimitList(BaseModel):
    limits: list[LimitOut]


class AlarmOut(BaseModel):
    id: int
    limit_id: int
    asset_id: int
    asset_code: str
    metric: str
    level: str
    priority: str
    state: AlarmState
    suppressed: Suppression | None
    threshold: float
    trigger_value: float | None
    activated_at: StoredUTC
    acknowledged_at: StoredUTC | None
    acknowledged_by: int | None
    cleared_at: StoredUTC | None
    closed_at: StoredUTC | None


class AlarmList(BaseModel):
    alarms: list[AlarmOut]


class BadActor(BaseModel):
    limit_id: int
    asset_id: int
    metric: str
    level: str
    activations: int


class AlarmKpis(BaseModel):
    window_hours: int
    activations: int
    per_10min_avg: float
    per_10min_peak: int
    flood_intervals: int
    standing: int
    chattering: list[int]
    top_bad_actors: list[BadActor]
    top10_share: float
