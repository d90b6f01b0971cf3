"""Events, rule counters, badges and awards, the points ledger, levels reached, outbox, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, BigNumber, JSONType, TimestampMixin, UTCDateTime, _now


class Event(Base):
    """Append-only record of what a member did; `idempotency_key` is the integrator's id."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, nullable=False)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)

    __table_args__ = (Index("ix_events_user_id_id", "user_id", "id"),)


class EventOutcome(Base):
    """What an event caused, kept for replies to its duplicates. A table of its own, written once: updating the
    event row instead would leave a dead version of the largest table's row behind for every event."""

    __tablename__ = "event_outcomes"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    outcome: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)


class RuleCounter(Base):
    """Incremental state of one criterion for one member in one window bucket."""

    __tablename__ = "rule_counters"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(48), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)


class Badge(TimestampMixin, Base):
    __tablename__ = "badges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    how_to_earn: Mapped[str] = mapped_column(Text, default="", nullable=False)
    icon: Mapped[str | None] = mapped_column(String(256))
    criteria: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False)
    points: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    visibility: Mapped[str] = mapped_column(String(16), default="public", nullable=False)
    available_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    available_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    repeatable: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    status: Mapped[str] = mapped_column(String(16), default="draft", nullable=False)
    translations: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class UserBadge(Base):
    """One award; (user, badge, award_key) makes it happen once ("once" for non-repeatable badges)."""

    __tablename__ = "user_badges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    badge_id: Mapped[int] = mapped_column(ForeignKey("badges.id", ondelete="CASCADE"), nullable=False)
    award_key: Mapped[str] = mapped_column(String(64), nullable=False)
    awarded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    event_id: Mapped[int | None] = mapped_column(BigId)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    # The (scope, bucket) counters this award's `badge.awarded` event moved (a Collector's), so a revoke takes it
    # back out of exactly those; [] when it moved none, NULL for awards made before it was recorded.
    counted_in: Mapped[list[list[str]] | None] = mapped_column(JSONType)

    # AUTOINCREMENT on SQLite: a revoke deletes the row, and a reused id would collide with the ledger source and
    # the `badge.awarded` event key its first holder left behind (PostgreSQL's sequence never reuses one).
    __table_args__ = (
        UniqueConstraint("user_id", "badge_id", "award_key"),
        Index("ix_user_badges_badge_id", "badge_id"),
        {"sqlite_autoincrement": True},
    )


class PointsEntry(Base):
    """Append-only ledger; (source_type, source_id) can be credited once."""

    __tablename__ = "points_ledger"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    balance_after: Mapped[int] = mapped_column(BigNumber, nullable=False)
    reason: Mapped[str] = mapped_column(String(200), nullable=False)
    source_type: Mapped[str] = mapped_column(String(32), nullable=False)
    source_id: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, nullable=False)

    __table_args__ = (
        UniqueConstraint("source_type", "source_id"),
        Index("ix_points_ledger_user_id_id", "user_id", "id"),
    )


class UserLevel(Base):
    """A level reached (once per member and level, even if points later dip)."""

    __tablename__ = "user_levels"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    reached_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, nullable=False)


class OutboxMessage(Base):
    """A side effect to deliver later (notifications, webhooks), written in the causing transaction."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(48), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, nullable=False)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # AUTOINCREMENT on SQLite: the cleanup job deletes the newest processed rows too, and a reused id would collide
    # with the notification (source_key "outbox:<id>") and webhook deliveries the first row made, so the new row's
    # would be skipped as already done (PostgreSQL's sequence never reuses one).
    __table_args__ = (
        Index("ix_outbox_processed_at_id", "processed_at", "id"),
        Index("ix_outbox_user_id", "user_id"),
        {"sqlite_autoincrement": True},
    )


class AuditEntry(Base):
    """Who did what to whom and why (manual grants, revokes, points adjustments)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(128), nullable=False)
    # The API key acted with (names are not unique); None for the bootstrap key and the CLI.
    actor_key_id: Mapped[int | None] = mapped_column(BigId)
    action: Mapped[str] = mapped_column(String(48), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    target: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, nullable=False)

    # Deleting a member sets its entries' user_id to NULL: without this, a scan of the whole log.
    __table_args__ = (Index("ix_audit_log_user_id", "user_id"),)
