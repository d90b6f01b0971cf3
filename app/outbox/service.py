"""Writing outbox rows. Kinds are dotted (badge.awarded, level.reached, points.credited, challenge.*)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import OutboxMessage


async def emit(session: AsyncSession, kind: str, user_id: int | None, payload: dict[str, Any]) -> OutboxMessage:
    """Queue a side effect in the caller's transaction; it is delivered only if the transaction commits."""
    row = OutboxMessage(kind=kind, user_id=user_id, payload=payload)
    session.add(row)
    return row
