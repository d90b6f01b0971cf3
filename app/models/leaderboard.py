"""Leaderboards: board definitions, members' scores per period and view, and the rank aggregate.

A board's scores live in `leaderboard_scores`, one row per (board, period, view, member); the view (`dim`) is
"" for the whole board, "city:Shanghai" or "category:shoes" for a filtered one. "My rank" never counts rows:
`leaderboard_score_counts` keeps, per (board, period, view), how many members hold each score (level 0), each
fine score bucket (level 1) and each coarse bucket (level 2), maintained in the transaction that moves a score.
See app/leaderboards/ranking.py for the bucket function and why it is built this way.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, Numeric, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, JSONType, TimestampMixin, UTCDateTime


class Leaderboard(TimestampMixin, Base):
    __tablename__ = "leaderboards"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    title: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    icon: Mapped[str | None] = mapped_column(String(256))
    metric: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    period: Mapped[str] = mapped_column(String(16), nullable=False)
    dimensions: Mapped[list[str]] = mapped_column(JSONType, default=list, nullable=False)
    display: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    privacy: Mapped[str] = mapped_column(String(16), default="public", nullable=False)
    min_group_size: Mapped[int] = mapped_column(Integer, default=5, nullable=False)
    status: Mapped[str] = mapped_column(String(16), default="draft", nullable=False)


class LeaderboardScore(Base):
    """A member's score on one view of a board in one period; `reached_at` is when it last went up."""

    __tablename__ = "leaderboard_scores"

    board_id: Mapped[int] = mapped_column(ForeignKey("leaderboards.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    dim: Mapped[str] = mapped_column(String(160), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    reached_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (Index("ix_leaderboard_scores_user_id", "user_id"),)


# Top N and neighbours are index scans in display order: score high to low, then who got there first.
Index(
    "ix_leaderboard_scores_order",
    LeaderboardScore.board_id,
    LeaderboardScore.period,
    LeaderboardScore.dim,
    LeaderboardScore.score.desc(),
    LeaderboardScore.reached_at,
    LeaderboardScore.user_id,
)


class LeaderboardScoreCount(Base):
    """How many members of a view hold a score (level 0, key = score, parent = fine bucket), a fine bucket
    (level 1, key = fine bucket, parent = coarse bucket) or a coarse bucket (level 2, key = coarse, parent = 0)."""

    __tablename__ = "leaderboard_score_counts"

    board_id: Mapped[int] = mapped_column(ForeignKey("leaderboards.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    dim: Mapped[str] = mapped_column(String(160), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    parent: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    key: Mapped[Decimal] = mapped_column(Numeric(), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, nullable=False)


class LeaderboardRankSnapshot(Base):
    """What the `rank_improved` check last saw of a member on a board's whole view in the current period.

    `score` is the score at the last check (the check recomputes the rank that score would hold now, so a member
    who slid down while idle is measured from where they really were); `worst_rank` is the worst rank seen since
    the last notification (null: only a baseline so far), so small climbs add up; `notified_on` (program date)
    keeps it to one notification a day per board. Written only by the job; see app/notifications/rank_improved.py.
    """

    __tablename__ = "leaderboard_rank_snapshots"

    board_id: Mapped[int] = mapped_column(ForeignKey("leaderboards.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    worst_rank: Mapped[int | None] = mapped_column(Integer)
    notified_on: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    # No second index led by (board_id, period): the job looks members up by the primary key, and without
    # statistics (before the first ANALYZE) PostgreSQL picked such an index and filtered the period per lookup.
    __table_args__ = (Index("ix_leaderboard_rank_snapshots_user_id", "user_id"),)
