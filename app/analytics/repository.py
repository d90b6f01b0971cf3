"""The analytics queries: aggregates in SQL, one statement each, the same on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.repository import INTERNAL_SOURCE
from app.models import Badge, Challenge, ChallengeParticipation, Event, User, UserBadge


async def member_count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(User))).scalar_one())


async def active_members(session: AsyncSession, since: datetime) -> int:
    """Members with an event of their own (not an award Laurel recorded) that occurred since `since`."""
    stmt = select(func.count(distinct(Event.user_id))).where(
        Event.source != INTERNAL_SOURCE, Event.occurred_at >= since
    )
    return int((await session.execute(stmt)).scalar_one())


async def award_totals(session: AsyncSession) -> tuple[int, int]:
    """(awards, members holding at least one)."""
    row = (await session.execute(select(func.count(), func.count(distinct(UserBadge.user_id))))).one()
    return int(row[0]), int(row[1])


async def points_outstanding(session: AsyncSession) -> int:
    return int((await session.execute(select(func.coalesce(func.sum(User.points), 0)))).scalar_one())


async def participants(session: AsyncSession) -> tuple[int, int]:
    """(members who ever joined a challenge, members with a participation still active)."""
    cp = ChallengeParticipation
    stmt = select(
        func.count(distinct(cp.user_id)),
        func.count(distinct(cp.user_id)).filter(cp.status == "active"),
    )
    row = (await session.execute(stmt)).one()
    return int(row[0]), int(row[1])


async def cohort_activity(
    session: AsyncSession, cohort_from: datetime, cohort_until: datetime, tier: str | None = None
) -> list[tuple[Any, ...]]:
    """(user_id, first_at, last_at) of the members (of one tier) whose first own event occurred in [from, until)."""
    first = func.min(Event.occurred_at)
    stmt = (
        select(Event.user_id, first.label("first_at"), func.max(Event.occurred_at).label("last_at"))
        .where(Event.source != INTERNAL_SOURCE)
        .group_by(Event.user_id)
        .having(first >= cohort_from, first < cohort_until)
    )
    if tier is not None:
        stmt = stmt.join(User, User.id == Event.user_id).where(User.tier == tier)
    return [tuple(r) for r in (await session.execute(stmt)).all()]


async def first_awards(session: AsyncSession, badge_id: int | None) -> dict[int, datetime]:
    """Per member, when they first earned a badge (that badge, or any): the time of the event that completed it,
    or of the award itself for a manual grant. Event time, not award time, so a backfilled history compares with
    the member's activity on one clock."""
    earned = func.min(func.coalesce(Event.occurred_at, UserBadge.awarded_at))
    stmt = select(UserBadge.user_id, earned).outerjoin(Event, Event.id == UserBadge.event_id).group_by(
        UserBadge.user_id
    )
    if badge_id is not None:
        stmt = stmt.where(UserBadge.badge_id == badge_id)
    return {int(r[0]): r[1] for r in (await session.execute(stmt)).all()}


async def badge_rows(session: AsyncSession) -> list[tuple[Any, ...]]:
    """Every badge with its award totals."""
    totals = (
        select(
            UserBadge.badge_id,
            func.count().label("awards"),
            func.count(distinct(UserBadge.user_id)).label("holders"),
            func.min(UserBadge.awarded_at).label("first_awarded_at"),
            func.max(UserBadge.awarded_at).label("last_awarded_at"),
        )
        .group_by(UserBadge.badge_id)
        .subquery()
    )
    stmt = (
        select(
            Badge.key, Badge.name, Badge.status, Badge.visibility, Badge.points,
            func.coalesce(totals.c.holders, 0), func.coalesce(totals.c.awards, 0),
            totals.c.first_awarded_at, totals.c.last_awarded_at,
        )
        .outerjoin(totals, totals.c.badge_id == Badge.id)
    )
    return [tuple(r) for r in (await session.execute(stmt)).all()]


async def challenge_rows(session: AsyncSession) -> list[tuple[Any, ...]]:
    """Every challenge with its participations counted by status."""
    cp = ChallengeParticipation
    totals = (
        select(
            cp.challenge_id,
            func.count().label("joined"),
            func.count(distinct(cp.user_id)).label("members"),
            func.count().filter(cp.status == "active").label("active"),
            func.count().filter(cp.status == "completed").label("completed"),
            func.count().filter(cp.status == "expired").label("expired"),
        )
        .group_by(cp.challenge_id)
        .subquery()
    )
    stmt = (
        select(
            Challenge.key, Challenge.title, Challenge.status, Challenge.schedule_type,
            func.coalesce(totals.c.joined, 0), func.coalesce(totals.c.members, 0),
            func.coalesce(totals.c.active, 0), func.coalesce(totals.c.completed, 0),
            func.coalesce(totals.c.expired, 0),
        )
        .outerjoin(totals, totals.c.challenge_id == Challenge.id)
    )
    return [tuple(r) for r in (await session.execute(stmt)).all()]


async def tier_rows(session: AsyncSession, active_since: datetime) -> dict[str | None, dict[str, int]]:
    """Per member tier (None: no tier): members, active members, members holding a badge, awards and challenge
    participants. Four grouped statements, merged here."""
    out: dict[str | None, dict[str, int]] = {}

    def put(rows: Any, *names: str) -> None:
        for tier, *values in rows:
            entry = out.setdefault(tier, dict.fromkeys(
                ("members", "active_members_30d", "members_with_badges", "awards", "challenge_participants"), 0))
            entry.update(zip(names, (int(v) for v in values), strict=True))

    put(await session.execute(select(User.tier, func.count()).group_by(User.tier)), "members")
    put(await session.execute(
        select(User.tier, func.count(distinct(Event.user_id)))
        .join(User, User.id == Event.user_id)
        .where(Event.source != INTERNAL_SOURCE, Event.occurred_at >= active_since)
        .group_by(User.tier)
    ), "active_members_30d")
    put(await session.execute(
        select(User.tier, func.count(distinct(UserBadge.user_id)), func.count())
        .join(User, User.id == UserBadge.user_id)
        .group_by(User.tier)
    ), "members_with_badges", "awards")
    put(await session.execute(
        select(User.tier, func.count(distinct(ChallengeParticipation.user_id)))
        .join(User, User.id == ChallengeParticipation.user_id)
        .group_by(User.tier)
    ), "challenge_participants")
    return out


async def members_in_segment(session: AsyncSession, user_ids: list[int], segment: str) -> set[int]:
    """Which of these members carry a segment tag (checked here: the tags are a JSON list on both backends)."""
    found: set[int] = set()
    for i in range(0, len(user_ids), 5000):  # bounded IN lists
        rows = await session.execute(select(User.id, User.segments).where(User.id.in_(user_ids[i:i + 5000])))
        found.update(int(uid) for uid, tags in rows.all() if segment in (tags or ()))
    return found
