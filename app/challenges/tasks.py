"""Periodic expiry of participations whose deadline passed incomplete."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.challenges import service as challenges_service
from app.config import Settings
from app.worker.runner import register


@register("challenges.expire", every_seconds=60)
async def expire_participations(session: AsyncSession, settings: Settings) -> int:
    """Mark due participations expired (one `challenge.expired` outbox row each); returns how many."""
    return await challenges_service.expire_due(session)
