"""Request and response bodies of /api/auth and /api/users. Inputs forbid unknown fields (no mass assignment)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

from aaiti.auth.models import Role

PASSWORD_MIN = 8
PASSWORD_MAX = 128
Password = Annotated[
    str,
    Field(
        min_length=PASSWORD_MIN,
        max_length=PASSWORD_MAX,
        description="8-128 characters, used exactly as typed",
    ),
]
LoginPassword = Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX)]
Email = Annotated[str, StringConstraints(min_length=3, max_length=254)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(Strict):
    email: EmailStr = Field(max_length=254)
    password: Password

    @field_validator("email")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()


class LoginIn(Strict):
    email: Email
    password: LoginPassword
    refresh_cookie: bool = Field(
        False,
        description="Browsers: deliver the refresh token as an HttpOnly cookie instead of in the body",
    )


class RefreshIn(Strict):
    refresh_token: Annotated[str, Field(min_length=1, max_length=4096)]


class ChangePasswordIn(Strict):
    current_password: LoginPassword
    new_password: Password


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str | None = Field(description="Null when the refresh token was set as an HttpOnly cookie")
    token_type: str = "bearer"  # noqa: S105
    expires_in: int = Field(description="Access token lifetime in seconds")
    refresh_expires_in: int = Field(description="Seconds until the session ends (absolute; rotation keeps it)")


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    email: str
    role: Role
    is_active: bool
    created_at: datetime
    last_login: datetime | None


class UserPatch(Strict):
    role: Role | None = None
    is_active: bool | None = None


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int
