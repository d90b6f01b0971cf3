"""Periodic fulfilment of pending member vouchers (e.g. codes added directly, or generated vouchers)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.vouchers import service as vouchers_service
from app.worker.runner import register


@register("vouchers.fulfil_pending", every_seconds=300)
async def fulfil_pending(session: AsyncSession, settings: Settings) -> int:
    """Hand codes to pending member vouchers; returns how many were fulfilled."""
    return await vouchers_service.fulfil_all(session)
