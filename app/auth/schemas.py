"""Bodies for login and API-key management."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.auth.scopes import Scope
from app.kit.schemas import ProgramTime, ReadModel, WriteModel
from app.users.schemas import MeOut


class WeChatLoginIn(WriteModel):
    code: str = Field(min_length=1, max_length=256, description="The code from wx.login (single use, 5 minutes)")


class LoginOut(ReadModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    user: MeOut


class ApiKeyCreate(WriteModel):
    name: str = Field(min_length=1, max_length=128)
    scopes: list[Scope] = Field(min_length=1, max_length=8)


class ApiKeyOut(ReadModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: ProgramTime
    created_by: str | None
    last_used_at: ProgramTime | None
    revoked_at: ProgramTime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The full key; shown only once")
