from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from webapp.blackbox.schemas import StoredUTC
from webapp.logbook.models import MAX_TEXT_LENGTH
from webapp.types import MAX_DB_ID, Text


class EntryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Checked once surrounding whitespace is gone and line ends are "\n" (a browser sends a
    # textarea's line breaks as "\r\n", which would otherwise count twice against the limit).
    text: Text = Field(min_length=1, max_length=MAX_TEXT_LENGTH)
    asset_id: int | None = Field(default=None, ge=1, le=MAX_DB_ID)
    alarm_id: int | None = Field(default=None, ge=1, le=MAX_DB_ID)

    @field_validator("text", mode="before")
    @classmethod
    def _normalised(cls, value: object) -> object:
        if not isinstance(value, str):
            return value  # the str type says what is wrong
        text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
        if not text:
            raise PydanticCustomError("blank", "must not be empty or only whitespace")
        return text


class EntryOut(BaseModel):
    id: int
    author: str  # the author's email
    created_at: StoredUTC
    text: str
    asset_id: int | None
    alarm_id: int | None


class EntryList(BaseModel):
    entries: list[EntryOut]
