"""Inbox, template and consent-ledger queries (never commits)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.dialect import insert_for, insert_ignore
from app.models import (
    Challenge,
    ChallengeParticipation,
    Notification,
    NotificationTemplate,
    SubscriptionCredit,
    SubscriptionReport,
    User,
    UserBadge,
    WeChatAttempt,
    WeChatDelivery,
)

# ----------------------------------------------------------------- inbox


async def inbox(session: AsyncSession, user_id: int, limit: int, offset: int) -> Sequence[Notification]:
    stmt = (
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return (await session.execute(stmt)).scalars().all()


async def inbox_counts(session: AsyncSession, user_id: int) -> tuple[int, int]:
    """(total, unread) for a member's inbox."""
    stmt = select(func.count(), func.count(Notification.id).filter(Notification.read_at.is_(None))).where(
        Notification.user_id == user_id
    )
    total, unread = (await session.execute(stmt)).one()
    return int(total), int(unread)


async def mark_read(session: AsyncSession, user_id: int, ids: Sequence[int] | None, at: datetime) -> int:
    """Mark unread notifications read (only the member's own); `ids=None` marks all."""
    stmt = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(list(ids)))
    result = await session.execute(stmt.values(read_at=at).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ----------------------------------------------------------------- templates


async def template(session: AsyncSession, kind: str) -> NotificationTemplate | None:
    return await session.get(NotificationTemplate, kind)


async def templates(session: AsyncSession, *, enabled_only: bool = False) -> Sequence[NotificationTemplate]:
    stmt = select(NotificationTemplate).order_by(NotificationTemplate.kind)
    if enabled_only:
        stmt = stmt.where(NotificationTemplate.enabled.is_(True))
    return (await session.execute(stmt)).scalars().all()


# ----------------------------------------------------------------- consent ledger


async def record_report(
    session: AsyncSession, user_id: int, request_id: str, results: dict[str, str], at: datetime
) -> bool:
    """Store a subscription report; False when this request_id was already applied."""
    stmt = (
        insert_ignore(session, SubscriptionReport.__table__, ["user_id", "request_id"])  # type: ignore[arg-type]
        .values(user_id=user_id, request_id=request_id, results=results, created_at=at)
        .returning(SubscriptionReport.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def report_results(session: AsyncSession, user_id: int, request_id: str) -> dict[str, str] | None:
    """What a stored subscription report said, per template id."""
    stmt = select(SubscriptionReport.results).where(SubscriptionReport.user_id == user_id,
                                                    SubscriptionReport.request_id == request_id)
    found = (await session.execute(stmt)).scalar_one_or_none()
    return dict(found) if found is not None else None


async def add_result(session: AsyncSession, user_id: int, template_id: str, result: str, at: datetime) -> None:
    """accept → one more credit; ban → none left (the member switched the template off); others → noted."""
    table = SubscriptionCredit.__table__
    initial = 1 if result == "accept" else 0
    if result == "accept":
        credits: Any = table.c.credits + 1
    elif result == "ban":
        credits = 0
    else:
        credits = table.c.credits
    stmt = (
        insert_for(session, table)  # type: ignore[arg-type]
        .values(user_id=user_id, template_id=template_id, credits=initial, last_result=result, updated_at=at)
        .on_conflict_do_update(
            index_elements=["user_id", "template_id"],
            set_={"credits": credits, "last_result": result, "updated_at": at},
        )
    )
    await session.execute(stmt)


async def credits(session: AsyncSession, user_id: int) -> Sequence[SubscriptionCredit]:
    stmt = select(SubscriptionCredit).where(SubscriptionCredit.user_id == user_id)
    return (await session.execute(stmt)).scalars().all()


async def take_credit(session: AsyncSession, user_id: int, template_id: str) -> bool:
    """Consume one credit atomically; False (and nothing changed) when none is left."""
    stmt = (
        update(SubscriptionCredit)
        .where(
            SubscriptionCredit.user_id == user_id,
            SubscriptionCredit.template_id == template_id,
            SubscriptionCredit.credits > 0,
        )
        .values(credits=SubscriptionCredit.credits - 1)
        .returning(SubscriptionCredit.credits)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).first() is not None


async def refund_credit(session: AsyncSession, user_id: int, template_id: str) -> None:
    await session.execute(
        update(SubscriptionCredit)
        .where(SubscriptionCredit.user_id == user_id, SubscriptionCredit.template_id == template_id)
        .values(credits=SubscriptionCredit.credits + 1)
        .execution_options(synchronize_session=False)
    )


async def zero_credits(session: AsyncSession, user_id: int, template_id: str) -> None:
    await session.execute(
        update(SubscriptionCredit)
        .where(SubscriptionCredit.user_id == user_id, SubscriptionCredit.template_id == template_id)
        .values(credits=0)
        .execution_options(synchronize_session=False)
    )


# ----------------------------------------------------------------- admin


def _admin_filter(stmt: Any, member_id: int | None, external_id: str | None, kind: str | None) -> Any:
    if member_id is not None:
        stmt = stmt.where(Notification.user_id == member_id)
    if external_id is not None:
        stmt = stmt.where(Notification.user_id.in_(select(User.id).where(User.external_id == external_id)))
    if kind is not None:
        stmt = stmt.where(Notification.kind == kind)
    return stmt


_STATUS = func.coalesce(WeChatDelivery.status, "inbox_only")


async def admin_list(
    session: AsyncSession,
    *,
    member_id: int | None,
    external_id: str | None,
    kind: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[Notification, WeChatDelivery | None, str | None]], int, dict[str, int]]:
    """Notifications with their WeChat delivery and member's external id, the total, and counts by status."""
    base: Any = select(Notification, WeChatDelivery, User.external_id).join(
        WeChatDelivery, WeChatDelivery.notification_id == Notification.id, isouter=True
    ).join(User, User.id == Notification.user_id)
    base = _admin_filter(base, member_id, external_id, kind)
    if status is not None:
        base = base.where(status == _STATUS)
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    rows = (await session.execute(base.order_by(Notification.id.desc()).limit(limit).offset(offset))).all()
    count_stmt: Any = select(_STATUS, func.count()).select_from(Notification).join(
        WeChatDelivery, WeChatDelivery.notification_id == Notification.id, isouter=True
    )
    count_stmt = _admin_filter(count_stmt, member_id, external_id, kind).group_by(_STATUS)
    counts = {str(s): int(n) for s, n in (await session.execute(count_stmt)).all()}
    return [(n, d, e) for n, d, e in rows], int(total), counts


async def transient_failures(session: AsyncSession, delivery_ids: Sequence[int]) -> dict[int, int]:
    """How many of each delivery's sends failed transiently (what `LAUREL_WECHAT_MAX_ATTEMPTS` counts; rate limits
    and the daily quota are waits, not failures)."""
    stmt = (
        select(WeChatAttempt.delivery_id, func.count())
        .where(WeChatAttempt.delivery_id.in_(delivery_ids), WeChatAttempt.outcome == "transient")
        .group_by(WeChatAttempt.delivery_id)
    )
    return {int(d): int(n) for d, n in (await session.execute(stmt)).all()}


async def _param_of(
    session: AsyncSession, deliveries: Sequence[WeChatDelivery], kind: str, name: str
) -> dict[int, Any]:
    """One param of each delivery of a kind's notification, by delivery id (deliveries whose notification lacks it
    are left out)."""
    ids = [d.id for d in deliveries if d.kind == kind]
    if not ids:
        return {}
    rows = (await session.execute(
        select(WeChatDelivery.id, Notification.params)
        .join(Notification, Notification.id == WeChatDelivery.notification_id)
        .where(WeChatDelivery.id.in_(ids))
    )).all()
    return {int(d): p[name] for d, p in rows if p.get(name) is not None}


async def revoked_awards(session: AsyncSession, deliveries: Sequence[WeChatDelivery]) -> set[int]:
    """The `badge_unlocked` deliveries (ids) whose award has since been revoked: a message about it would announce a
    badge the member no longer holds."""
    award_of = {d: a for d, a in (await _param_of(session, deliveries, "badge_unlocked", "award_id")).items()
                if isinstance(a, int)}
    if not award_of:
        return set()
    standing = set((await session.execute(
        select(UserBadge.id).where(UserBadge.id.in_(set(award_of.values())))
    )).scalars())
    return {d for d, award in award_of.items() if award not in standing}


async def past_deadlines(session: AsyncSession, deliveries: Sequence[WeChatDelivery], now: datetime) -> set[int]:
    """The `challenge_expiring` deliveries (ids) whose participation is no longer running: its deadline has passed,
    or it was completed or expired meanwhile. "Ends at 23:59, finish it in time" held back until the morning (quiet
    hours, rate limits, the daily quota) would urge the member on towards a challenge that is already over."""
    participation_of = {
        d: p for d, p in (await _param_of(session, deliveries, "challenge_expiring", "participation_id")).items()
        if isinstance(p, int)
    }
    if not participation_of:
        return set()
    running = set((await session.execute(
        select(ChallengeParticipation.id).where(
            ChallengeParticipation.id.in_(set(participation_of.values())),
            ChallengeParticipation.status == "active",
            ChallengeParticipation.deadline.is_not(None),
            ChallengeParticipation.deadline > now,
        )
    )).scalars())
    return {d for d, p in participation_of.items() if p not in running}


async def announced_challenges(
    session: AsyncSession, deliveries: Sequence[WeChatDelivery]
) -> dict[int, Challenge | None]:
    """The challenge each `challenge_available` delivery (id) announces, None when it no longer exists."""
    key_of = {d: str(k) for d, k in (await _param_of(session, deliveries, "challenge_available", "challenge")).items()}
    if not key_of:
        return {}
    found = {ch.key: ch for ch in (await session.execute(
        select(Challenge).where(Challenge.key.in_(set(key_of.values())))
    )).scalars()}
    return {d: found.get(key) for d, key in key_of.items()}
