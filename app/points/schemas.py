"""Ledger, adjustments and the level ladder."""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import Field, StrictInt, field_validator, model_validator

from app.kit.schemas import FieldError, ProgramTime, ReadModel, Reason, WriteModel


class PointsEntryOut(ReadModel):
    id: int
    amount: int
    balance_after: int
    reason: str
    source_type: str
    source_id: str
    created_at: ProgramTime


class AdjustIn(WriteModel):
    amount: StrictInt = Field(ge=-1_000_000, le=1_000_000)
    reason: Reason = Field(min_length=1, max_length=200)
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=100, description="Retrying with the same key never adjusts twice"
    )

    @model_validator(mode="after")
    def _non_zero(self) -> AdjustIn:
        if self.amount == 0:
            raise ValueError("amount must not be zero")
        return self


class AdjustOut(ReadModel):
    user_id: str
    applied: bool
    amount: int
    balance: int
    entry_id: int | None
    levels_reached: list[dict[str, Any]]


class LevelIn(WriteModel):
    name: str = Field(min_length=1, max_length=64)
    icon: str | None = Field(default=None, max_length=256)

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        """Trimmed, and not blank: "A " beside "A" would be two levels members cannot tell apart."""
        value = value.strip()
        if not value:
            raise ValueError("name must not be blank")
        return value

    @field_validator("icon")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        """No icon is null, not "" beside null."""
        return value.strip() or None if value is not None else None

    points_required: int = Field(ge=1, le=100_000_000)
    rank: int | None = Field(
        default=None, ge=1, le=9, description="Read-only, accepted so a GET can be sent back: the list order decides"
    )


class LadderIn(WriteModel):
    levels: list[LevelIn] = Field(min_length=1, max_length=9)

    @model_validator(mode="after")
    def _strictly_increasing(self) -> LadderIn:
        pts = [lvl.points_required for lvl in self.levels]
        for index, (a, b) in enumerate(itertools.pairwise(pts), start=1):
            if b <= a:
                raise FieldError(
                    ("levels", index, "points_required"),
                    "points_required must be strictly increasing from one level to the next",
                )
        seen: set[str] = set()
        for index, lvl in enumerate(self.levels):
            if lvl.name in seen:
                raise FieldError(("levels", index, "name"), "level names must be unique")
            seen.add(lvl.name)
        return self


class LevelOut(ReadModel):
    rank: int
    name: str
    icon: str | None
    points_required: int
