"""Ledger and level-reached rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.dialect import insert_once
from app.models import PointsEntry, User, UserLevel


async def insert_entry(
    session: AsyncSession,
    *,
    user_id: int,
    amount: int,
    balance_after: int,
    reason: str,
    source_type: str,
    source_id: str,
    created_at: datetime,
) -> PointsEntry | None:
    """The new entry (not attached to the session), or None when this source was already credited."""
    fields = {
        "user_id": user_id,
        "amount": amount,
        "balance_after": balance_after,
        "reason": reason,
        "source_type": source_type,
        "source_id": source_id,
        "created_at": created_at,
    }
    entry_id = await insert_once(session, PointsEntry, ["source_type", "source_id"], fields)
    return None if entry_id is None else PointsEntry(id=entry_id, **fields)


async def set_balance(session: AsyncSession, user_id: int, balance: int) -> None:
    await session.execute(update(User).where(User.id == user_id).values(points=balance))


async def mark_level(session: AsyncSession, user_id: int, rank: int, name: str, at: datetime) -> bool:
    inserted = await insert_once(
        session, UserLevel, ["user_id", "rank"], {"user_id": user_id, "rank": rank, "name": name, "reached_at": at}
    )
    return inserted is not None


async def page(session: AsyncSession, user_id: int, limit: int, offset: int) -> tuple[list[PointsEntry], int]:
    rows = await session.execute(
        select(PointsEntry)
        .where(PointsEntry.user_id == user_id)
        .order_by(PointsEntry.id.desc())
        .limit(limit)
        .offset(offset)
    )
    total = (await session.execute(select(func.count()).where(PointsEntry.user_id == user_id))).scalar_one()
    return list(rows.scalars()), total
