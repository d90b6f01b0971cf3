"""Challenges (opt-in journeys of ordered steps) and members' participations in them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, JSONType, TimestampMixin, UTCDateTime, _now


class Challenge(TimestampMixin, Base):
    """Definition; `steps` and `eligibility` are validated JSON, schedule and rewards are columns."""

    __tablename__ = "challenges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    icon: Mapped[str | None] = mapped_column(String(256))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False)
    eligibility: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    schedule_type: Mapped[str] = mapped_column(String(16), default="one_time", nullable=False)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recurrence: Mapped[str | None] = mapped_column(String(16))
    time_limit_days: Mapped[int | None] = mapped_column(Integer)
    points_per_step: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    bonus_points: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    reward_badge: Mapped[str | None] = mapped_column(String(64))
    reward_voucher: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="draft", nullable=False)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ChallengeParticipation(Base):
    """One member in one instance ("once", or a period key such as "2026-W48"); unique per instance.

    `progress` holds one entry per step: {"state": CounterState JSON, "done_at": ISO instant or null},
    updated incrementally by the engine listener (never rebuilt from the event log).
    """

    __tablename__ = "challenge_participations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"), nullable=False)
    instance_key: Mapped[str] = mapped_column(String(16), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[str] = mapped_column(String(16), default="active", nullable=False)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, nullable=False)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    steps_done: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    progress: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False)

    __table_args__ = (
        UniqueConstraint("challenge_id", "instance_key", "user_id"),
        Index("ix_challenge_participations_user_id_status", "user_id", "status"),
        Index("ix_challenge_participations_status_deadline", "status", "deadline"),
    )
