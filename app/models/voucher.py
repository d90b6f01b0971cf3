"""Voucher definitions, their code pools, and vouchers held by members."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, TimestampMixin, UTCDateTime, _now


class Voucher(TimestampMixin, Base):
    """A reward definition: codes come from an uploaded pool, or are generated when `generated`."""

    __tablename__ = "vouchers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    face_value: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal(0), nullable=False)
    validity_days: Mapped[int | None] = mapped_column(Integer)
    generated: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class VoucherCode(Base):
    """One uploaded code; `issued_at` is set when it is handed to a member."""

    __tablename__ = "voucher_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id", ondelete="CASCADE"), nullable=False)
    code: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, nullable=False)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("voucher_id", "code"),
        Index("ix_voucher_codes_voucher_id_issued_at", "voucher_id", "issued_at"),
    )


class MemberVoucher(Base):
    """A voucher owed to a member, once per (source_type, source_id); `pending` until a code is available.

    `name`, `description` and `face_value` are the voucher's terms when it was issued: an edit of the definition
    afterwards does not change what a member already holds (NULL while pending: the definition's apply)."""

    __tablename__ = "member_vouchers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    code: Mapped[str | None] = mapped_column(String(64))
    source_type: Mapped[str] = mapped_column(String(32), nullable=False)
    source_id: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, nullable=False)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    name: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    face_value: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))

    __table_args__ = (
        UniqueConstraint("source_type", "source_id"),
        UniqueConstraint("voucher_id", "code"),
        Index("ix_member_vouchers_user_id_id", "user_id", "id"),
        Index("ix_member_vouchers_voucher_id_status", "voucher_id", "status"),
    )
