"""Member bodies."""

from __future__ import annotations

from typing import Annotated

import httpx
from pydantic import Field, field_validator

from app.kit.schemas import ProgramTime, ReadModel, WriteModel


class UserUpsert(WriteModel):
    """Fields an integrator syncs; omitted fields are left as they are, null clears."""

    openid: str | None = Field(default=None, min_length=1, max_length=128)
    unionid: str | None = Field(default=None, min_length=1, max_length=128)
    nickname: str | None = Field(default=None, max_length=64)
    avatar_url: str | None = Field(default=None, max_length=1024)
    city: str | None = Field(default=None, max_length=64)
    tier: str | None = Field(default=None, max_length=64)
    segments: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(default=None, max_length=100)

    @field_validator("city", "tier")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        """A blank city or tier is no city or tier: reports and leaderboard views group by them, and "" beside
        null would be two rows no one can tell apart. Surrounding spaces would split a group the same way."""
        if value is None:
            return None
        return value.strip() or None

    @field_validator("avatar_url")
    @classmethod
    def _web_image(cls, value: str | None) -> str | None:
        """The Mini Program shows the avatar as an image: an http(s) URL, or a WeChat Cloud file id
        (cloud://env.bucket/path), which `<image src>` loads too; a `javascript:` or `data:` one is refused, and
        blank is none."""
        if value is None or not value.strip():
            return None
        value = value.strip()
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise ValueError(f"not a URL: {exc}") from exc
        if url.scheme not in ("http", "https", "cloud") or not url.host:
            raise ValueError("must be an http(s) URL or a WeChat Cloud file id (cloud://…)")
        return value

    @field_validator("segments")
    @classmethod
    def _distinct_segments(cls, value: list[str] | None) -> list[str] | None:
        """A segment is a tag: the same one twice means once (first occurrence kept, order kept)."""
        return None if value is None else list(dict.fromkeys(value))


EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9_.:@\-]+$"


class FriendsIn(WriteModel):
    friends: list[Annotated[str, Field(min_length=1, max_length=128, pattern=EXTERNAL_ID_PATTERN)]] = Field(
        max_length=5000
    )


class FriendsOut(ReadModel):
    external_id: str
    friends: list[str]


class UserOut(ReadModel):
    id: int
    external_id: str | None
    openid: str | None
    unionid: str | None
    nickname: str | None
    avatar_url: str | None
    city: str | None
    tier: str | None
    segments: list[str]
    points: int
    created_at: ProgramTime
    updated_at: ProgramTime


class LevelOut(ReadModel):
    rank: int
    name: str
    icon: str | None
    points_required: int


class MeOut(ReadModel):
    id: int
    external_id: str | None
    nickname: str | None
    avatar_url: str | None
    city: str | None
    tier: str | None
    segments: list[str]
    points: int
    level: LevelOut | None
    next_level: LevelOut | None
    points_to_next: int | None
    created_at: ProgramTime
    updated_at: ProgramTime


class MemberAdmin(MeOut):
    """What an operator sees of a member: the profile, balance and level, the WeChat ids and the awards held."""

    openid: str | None
    unionid: str | None
    awards_held: int
