"""Periodic jobs of notifications and webhooks (registered with the worker; tests call the functions directly)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.kit.clock import utcnow
from app.models import OutboxMessage
from app.notifications import fanout, rank_improved
from app.notifications import scheduler as notifications_scheduler
from app.notifications.dispatcher import dispatch_wechat_once
from app.webhooks.dispatcher import dispatch_webhooks_once
from app.worker.runner import JobContext, register, register_with_context

# Intervals are short so what a member or integrator is waiting for arrives within seconds. Every job is
# idempotent, and a run of the frequent ones with nothing to do costs a couple of indexed queries.


@register_with_context("notifications.fanout", every_seconds=1)
async def fanout_job(ctx: JobContext) -> int:
    """Turn new outbox rows into inbox notifications, WeChat deliveries and webhook deliveries (batch after batch
    while there are any; a stopping worker's run ends after the batch it is on, not at the end of a backlog)."""
    total = 0
    while n := await fanout.fanout_once(ctx.sessionmaker, ctx.settings):
        total += n
        if ctx.should_stop:
            break
    return total


@register_with_context("notifications.wechat", every_seconds=2)
async def wechat_job(ctx: JobContext) -> int:
    """Send due WeChat subscription messages (several batches per run while there is work)."""
    if ctx.wechat is None:
        return 0
    total = 0
    for _ in range(20):
        sent = await dispatch_wechat_once(ctx.sessionmaker, ctx.settings, ctx.wechat)
        total += sent
        if not sent or ctx.should_stop:
            break
    return total


@register_with_context("webhooks.dispatch", every_seconds=1)
async def webhooks_job(ctx: JobContext) -> int:
    """POST due webhook deliveries (polled every second: the first retry is due 2 s after a failure)."""
    total = 0
    for _ in range(20):
        sent = await dispatch_webhooks_once(ctx.sessionmaker, ctx.settings)
        total += sent
        if not sent or ctx.should_stop:
            break
    return total


@register("notifications.challenge_available", every_seconds=5)
async def challenge_available_job(session: AsyncSession, settings: Settings) -> int:
    """Tell eligible members about newly published challenges (once per publication)."""
    return await notifications_scheduler.challenge_available(session, settings)


@register("notifications.challenge_expiring", every_seconds=10)
async def challenge_expiring_job(session: AsyncSession, settings: Settings) -> int:
    """Warn members whose joined challenge ends within LAUREL_CHALLENGE_EXPIRING_HOURS (once each)."""
    return await notifications_scheduler.challenge_expiring(session, settings)


# Each run reads the current period's whole view of every active board (see rank_improved.py), a noticeable
# fraction of a second at a million members: once a minute (a notice capped at once a day per board).
@register("notifications.rank_improved", every_seconds=60)
async def rank_improved_job(session: AsyncSession, settings: Settings) -> int:
    """Tell members who entered a board's top 10 or climbed LAUREL_RANK_IMPROVED_MIN_PLACES (once a day per board)."""
    return await rank_improved.check(session, settings)


@register("outbox.cleanup", every_seconds=3600)
async def outbox_cleanup_job(session: AsyncSession, settings: Settings) -> int:
    """Delete processed outbox rows older than LAUREL_OUTBOX_RETENTION_DAYS."""
    cutoff = utcnow() - timedelta(days=settings.outbox_retention_days)
    result = await session.execute(
        delete(OutboxMessage).where(OutboxMessage.processed_at.is_not(None), OutboxMessage.processed_at < cutoff)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
