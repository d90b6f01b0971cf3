"""Member notifications: inbox, WeChat template mapping, consent ledger, WeChat deliveries and attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, JSONType, TimestampMixin, UTCDateTime, _now


class Notification(Base):
    """One inbox entry; `source_key` makes every producer (outbox row, scheduler check) create it once.

    Texts are rendered at read time from `kind` + `params` in the reader's language.
    """

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    source_key: Mapped[str] = mapped_column(String(160), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, nullable=False)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_notifications_user_id_id", "user_id", "id"),
        Index("ix_notifications_kind", "kind"),
    )


class NotificationTemplate(TimestampMixin, Base):
    """Admin mapping of a notification kind to a WeChat subscription-message template."""

    __tablename__ = "notification_templates"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(128), nullable=False)
    page: Mapped[str | None] = mapped_column(String(256))
    fields: Mapped[dict[str, str]] = mapped_column(JSONType, nullable=False)
    miniprogram_state: Mapped[str] = mapped_column(String(16), nullable=False)
    lang: Mapped[str] = mapped_column(String(16), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)


class SubscriptionCredit(Base):
    """Consent ledger: how many one-time sends a member granted for a template (advisory; WeChat decides)."""

    __tablename__ = "subscription_credits"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    credits: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_result: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, onupdate=_now, nullable=False)


class SubscriptionReport(Base):
    """What the Mini Program reported from wx.requestSubscribeMessage; (user, request_id) is applied once."""

    __tablename__ = "subscription_reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    request_id: Mapped[str] = mapped_column(String(128), nullable=False)
    results: Mapped[dict[str, str]] = mapped_column(JSONType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, nullable=False)

    __table_args__ = (UniqueConstraint("user_id", "request_id"),)


class WeChatDelivery(Base):
    """The WeChat side of one notification.

    status: pending → sending (leased) → sent | bundled-into-another (sent, `bundle_id` set) | no_consent |
    dropped | failed. `data` holds the validated template values queued for a single send.
    """

    __tablename__ = "wechat_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    template_id: Mapped[str] = mapped_column(String(128), nullable=False)
    data: Mapped[dict[str, str]] = mapped_column(JSONType, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, nullable=False)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    bundle_id: Mapped[int | None] = mapped_column(BigId)
    bundle_size: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    msgid: Mapped[str | None] = mapped_column(String(64))
    last_errcode: Mapped[int | None] = mapped_column(Integer)
    last_errmsg: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, nullable=False)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_wechat_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_wechat_deliveries_user_id_id", "user_id", "id"),
    )


class WeChatAttempt(Base):
    """Every call made to WeChat that carried a delivery, with its outcome: a bundled call is in the history of
    each delivery it carried (`bundle_size` says how many)."""

    __tablename__ = "wechat_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("wechat_deliveries.id", ondelete="CASCADE"), nullable=False)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    errcode: Mapped[int | None] = mapped_column(Integer)
    errmsg: Mapped[str | None] = mapped_column(String(500))
    msgid: Mapped[str | None] = mapped_column(String(64))
    bundle_size: Mapped[int] = mapped_column(Integer, default=1, nullable=False)

    __table_args__ = (Index("ix_wechat_attempts_delivery_id", "delivery_id"),)


class DispatchPause(Base):
    """A channel paused until a time (WeChat 45009: daily quota reached → pause until the next day)."""

    __tablename__ = "dispatch_pauses"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    reason: Mapped[str] = mapped_column(String(500), nullable=False)


class NotificationMark(Base):
    """A one-shot scheduler check that is done (e.g. a challenge publication already announced)."""

    __tablename__ = "notification_marks"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, nullable=False)
