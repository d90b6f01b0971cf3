"""Base classes for request and response bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WriteModel(BaseModel):
    """Request bodies: unknown fields are refused so a typo never silently does nothing."""

    model_config = ConfigDict(extra="forbid", str_max_length=10_000)


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
