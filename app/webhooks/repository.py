"""Webhook endpoint and delivery queries (never commits)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.dialect import insert_ignore
from app.models import OutboxMessage, WebhookAttempt, WebhookDelivery, WebhookEndpoint


async def endpoint(session: AsyncSession, endpoint_id: int) -> WebhookEndpoint | None:
    return await session.get(WebhookEndpoint, endpoint_id)


async def endpoints(session: AsyncSession, *, enabled_only: bool = False) -> Sequence[WebhookEndpoint]:
    stmt = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    if enabled_only:
        stmt = stmt.where(WebhookEndpoint.enabled.is_(True))
    return (await session.execute(stmt)).scalars().all()


def subscribed(endpoint: WebhookEndpoint, kind: str) -> bool:
    return "*" in endpoint.events or kind in endpoint.events


async def enqueue(session: AsyncSession, rows: Sequence[OutboxMessage], now: datetime, retry_for: timedelta) -> int:
    """One delivery per (enabled endpoint subscribed to the kind, outbox row); repeats are ignored."""
    targets = await endpoints(session, enabled_only=True)
    values = [
        {
            "delivery_id": str(uuid.uuid4()), "endpoint_id": ep.id, "outbox_id": row.id, "user_id": row.user_id,
            "event": row.kind, "payload": row.payload, "status": "pending", "attempts": 0,
            "next_attempt_at": now, "retry_until": now + retry_for, "created_at": row.created_at,
        }
        for row in rows
        for ep in targets
        if subscribed(ep, row.kind)
    ]
    if not values:
        return 0
    await session.execute(
        insert_ignore(session, WebhookDelivery.__table__, ["endpoint_id", "outbox_id"]).values(values)  # type: ignore[arg-type]
    )
    return len(values)


async def deliveries(
    session: AsyncSession, endpoint_id: int, status: str | None, limit: int, offset: int
) -> tuple[Sequence[WebhookDelivery], int]:
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = (await session.execute(stmt.order_by(WebhookDelivery.id.desc()).limit(limit).offset(offset))).scalars()
    return rows.all(), int(total)


async def delivery(session: AsyncSession, endpoint_id: int, delivery_id: str) -> WebhookDelivery | None:
    stmt = select(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.delivery_id == delivery_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def attempts(session: AsyncSession, delivery_pk: int) -> Sequence[WebhookAttempt]:
    stmt = select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_pk).order_by(WebhookAttempt.id)
    return (await session.execute(stmt)).scalars().all()


async def attempts_since(session: AsyncSession, delivery_pk: int, since: datetime) -> int:
    """How many attempts a delivery had from `since` on (its current retry window)."""
    stmt = select(func.count()).where(WebhookAttempt.delivery_id == delivery_pk, WebhookAttempt.attempted_at >= since)
    return int((await session.execute(stmt)).scalar_one())
