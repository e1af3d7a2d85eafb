from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from webapp.blackbox.schemas import StoredUTC

Band = Literal["good", "watch", "alert", "danger", "no_data"]
Zone = Literal["A", "B", "C", "D"]


class HealthComponentOut(BaseModel):
    name: str
    penalty: float
    detail: str  # in the reader's language
    params: dict[str, Any]  # the numbers the sentence is made of, for integrators


class HealthOut(BaseModel):
    asset_id: int
    score: int | None
    band: Band
    zone: Zone | None
    computed_at: StoredUTC | None  # null: never assessed yet
    model: str
    components: list[HealthComponentOut]
    time_to_zone_c_hours: float | None


class HealthPoint(BaseModel):
    timestamp: StoredUTC
    score: int | None


class HealthHistoryOut(BaseModel):
    asset_id: int
    points: list[HealthPoint]
