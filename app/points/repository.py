"""Ledger and level-reached rows."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import PointsEntry


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


async def by_source(session: AsyncSession, source_type: str, source_id: str) -> PointsEntry | None:
    rows = await session.execute(
        select(PointsEntry).where(PointsEntry.source_type == source_type, PointsEntry.source_id == source_id)
    )
    return rows.scalars().first()
