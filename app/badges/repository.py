"""Badge and award queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Badge, RuleCounter, User, UserBadge


async def by_key(session: AsyncSession, key: str, *, lock: bool = False) -> Badge | None:
    """`lock`: FOR UPDATE, which waits for the transactions writing an award of it (their foreign key check holds
    the row FOR KEY SHARE until they end) and holds off those that start meanwhile."""
    stmt = select(Badge).where(Badge.key == key)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def hold(session: AsyncSession, key: str) -> bool:
    """Whether the badge exists, kept so until the transaction ends (FOR KEY SHARE): a definition naming it (a
    challenge's reward or requirement) is saved before a delete of the badge looks for such names, or after it."""
    stmt = select(Badge.id).where(Badge.key == key).with_for_update(read=True, key_share=True)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def auto_awardable(session: AsyncSession) -> Sequence[Badge]:
    """Active badges the engine may award by itself (invite-only ones are granted by admins only)."""
    rows = await session.execute(
        select(Badge).where(Badge.status == "active", Badge.visibility != "invite_only").order_by(Badge.id)
    )
    return rows.scalars().all()


async def list_all(session: AsyncSession, status: str | None = None) -> Sequence[Badge]:
    stmt = select(Badge).order_by(Badge.id)
    if status:
        stmt = stmt.where(Badge.status == status)
    return (await session.execute(stmt)).scalars().all()


async def visible_to_members(session: AsyncSession) -> Sequence[Badge]:
    """Every badge, for a member's wall: the caller keeps the active ones and those the member holds, whatever
    their status now (a badge archived, or set back to draft, stays on the walls of those who earned it)."""
    return (await session.execute(select(Badge).order_by(Badge.id))).scalars().all()


async def awarded_at(session: AsyncSession, award_id: int) -> datetime | None:
    return (await session.execute(select(UserBadge.awarded_at).where(UserBadge.id == award_id))).scalar_one_or_none()


async def awards_of(session: AsyncSession, user_id: int) -> Sequence[UserBadge]:
    rows = await session.execute(
        select(UserBadge).where(UserBadge.user_id == user_id).order_by(UserBadge.awarded_at, UserBadge.id)
    )
    return rows.scalars().all()


async def awards_for(session: AsyncSession, user_id: int, badge_id: int) -> Sequence[UserBadge]:
    rows = await session.execute(
        select(UserBadge).where(UserBadge.user_id == user_id, UserBadge.badge_id == badge_id).order_by(UserBadge.id)
    )
    return rows.scalars().all()


async def delete_award(session: AsyncSession, award_id: int) -> None:
    await session.execute(delete(UserBadge).where(UserBadge.id == award_id))


async def delete_every_counter(session: AsyncSession, scope_prefix: str) -> None:
    """Every member's counters of one badge (a deleted one). A scan of the table: deleting a badge is rare."""
    await session.execute(delete(RuleCounter).where(RuleCounter.scope.startswith(scope_prefix, autoescape=True)))


async def delete_counters(session: AsyncSession, user_id: int, scope_prefix: str) -> int:
    """A member's counters whose scope starts with a prefix (one badge's, every bucket); how many there were."""
    res = await session.execute(
        delete(RuleCounter).where(
            RuleCounter.user_id == user_id, RuleCounter.scope.startswith(scope_prefix, autoescape=True)
        )
    )
    return int(getattr(res, "rowcount", 0) or 0)


async def holder_counts(session: AsyncSession) -> dict[int, int]:
    rows = await session.execute(
        select(UserBadge.badge_id, func.count(func.distinct(UserBadge.user_id))).group_by(UserBadge.badge_id)
    )
    return {r[0]: r[1] for r in rows.all()}


async def member_count(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(User))).scalar_one()


async def award_count(session: AsyncSession, badge_id: int) -> int:
    return (await session.execute(select(func.count()).where(UserBadge.badge_id == badge_id))).scalar_one()


async def award_times(session: AsyncSession, badge_id: int) -> tuple[datetime | None, datetime | None]:
    row = (
        await session.execute(
            select(func.min(UserBadge.awarded_at), func.max(UserBadge.awarded_at)).where(UserBadge.badge_id == badge_id)
        )
    ).one()
    return row[0], row[1]


async def award_instants(session: AsyncSession, badge_id: int, since: datetime) -> list[datetime]:
    rows = await session.execute(
        select(UserBadge.awarded_at).where(UserBadge.badge_id == badge_id, UserBadge.awarded_at >= since)
    )
    return list(rows.scalars())


async def holders_among(session: AsyncSession, badge_id: int, user_ids: Sequence[int]) -> set[int]:
    """Which of these members hold a badge."""
    found: set[int] = set()
    for i in range(0, len(user_ids), 5000):  # bounded IN lists
        chunk = user_ids[i:i + 5000]
        rows = await session.execute(
            select(UserBadge.user_id).where(UserBadge.badge_id == badge_id, UserBadge.user_id.in_(chunk)).distinct()
        )
        found.update(int(r[0]) for r in rows.all())
    return found
