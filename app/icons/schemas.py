"""Icon bodies."""

from __future__ import annotations

from typing import Literal

from app.kit.schemas import ReadModel


class IconOut(ReadModel):
    """One icon as the library lists it; `alt` is in the caller's language when the icon has translations."""

    name: str
    url: str
    alt: str
    source: Literal["builtin", "upload"]
    content_type: str


class IconUploaded(ReadModel):
    id: str
    name: str
    url: str
    alt: str
    content_type: str
    size: int
