from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from webapp.integrations.schemas import reject_explicit_nulls

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
MIN_PASSWORD_LENGTH = 8
# What a tenant admin may grant; platform_admin is not a tenant's to give.
AssignableRole = Literal["viewer", "operator", "engineer", "tenant_admin"]


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class TokenRevoked(BaseModel):
    revoked: Literal[True] = True


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    role: str
    is_active: bool
    locale: str


class UserList(BaseModel):
    users: list[UserOut]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=254, pattern=EMAIL_PATTERN)
    ]
    # Not stripped: spaces may be part of a passphrase.
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)
    role: AssignableRole


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: AssignableRole | None = None
    is_active: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> UserUpdate:
        reject_explicit_nulls(self)
        return self
