"""The level ladder (up to 9 levels, each reached by total points)."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class BadgeLevel(Base):
    __tablename__ = "badge_levels"

    rank: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    icon: Mapped[str | None] = mapped_column(String(256))
    points_required: Mapped[int] = mapped_column(Integer, unique=True, nullable=False)
