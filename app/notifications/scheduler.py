"""Time-based notifications: a challenge published (to eligible members), a joined challenge about to end.

Each check is idempotent: notifications carry a source key (`challenge_expiring:<participation>`…) that is
unique, and a publication is marked done once announced, so running a check twice sends nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, exists, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.challenges import progress as challenge_progress
from app.challenges import service as challenges_service
from app.config import Settings
from app.kit.clock import utcnow
from app.kit.dialect import insert_ignore
from app.models import (
    Badge,
    Challenge,
    ChallengeParticipation,
    Notification,
    NotificationMark,
    User,
    UserBadge,
)
from app.notifications import repository as repo
from app.notifications.fanout import notify_members
from app.notifications.kinds import local_time
from app.points import levels as levels_service

# Publications older than this are not announced (so enabling the job does not announce old challenges).
ANNOUNCE_WITHIN = timedelta(days=7)
MEMBER_BATCH = 1000


async def _mark(session: AsyncSession, key: str, now: datetime) -> bool:
    stmt = (
        insert_ignore(session, NotificationMark.__table__, ["key"])  # type: ignore[arg-type]
        .values(key=key, created_at=now)
        .returning(NotificationMark.key)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def _eligible_members(session: AsyncSession, ch: Challenge) -> list[int]:
    """Members meeting the challenge's eligibility (tiers, segments, min level, required badge)."""
    rules = ch.eligibility or {}
    level_points = {lv.name: lv.points_required for lv in await levels_service.ladder(session)}
    holders: set[int] = set()
    badge_key = rules.get("required_badge")
    if badge_key:
        holders = set((await session.execute(
            select(UserBadge.user_id).join(Badge, Badge.id == UserBadge.badge_id).where(Badge.key == badge_key)
        )).scalars())
    out: list[int] = []
    last = 0
    while True:
        rows = (await session.execute(
            select(User.id, User.tier, User.segments, User.points)
            .where(User.id > last).order_by(User.id).limit(MEMBER_BATCH)
        )).all()
        if not rows:
            return out
        for uid, tier, segments, points in rows:
            facts = challenge_progress.MemberFacts(
                tier=tier, segments=list(segments or []), points=points,
                held_badges=frozenset({str(badge_key)}) if uid in holders else frozenset(),
            )
            if not challenge_progress.unmet_rules(rules, facts, level_points, {}):
                out.append(uid)
        last = rows[-1][0]


def _opened_at(ch: Challenge) -> datetime | None:
    """When members could first join: its publication, or its `starts_at` if that is later."""
    if ch.published_at is None:
        return None
    return max(ch.published_at, ch.starts_at) if ch.starts_at is not None else ch.published_at


async def challenge_available(session: AsyncSession, settings: Settings, now: datetime | None = None) -> int:
    """Announce each recent opening of a challenge to its eligible members, once: at its publication, or, for
    one published before its `starts_at`, once it starts ("a new challenge is open, come and join" sent before
    that led to a join refused with 409 challenge_not_started, and nothing was sent when it did open)."""
    now = now or utcnow()
    templates = {t.kind: t for t in await repo.templates(session, enabled_only=True)}
    created = 0
    since = now - ANNOUNCE_WITHIN
    candidates = (await session.execute(
        select(Challenge).where(Challenge.status == "published",
                                or_(Challenge.published_at >= since, Challenge.starts_at >= since))
        .order_by(Challenge.id)
    )).scalars().all()
    rows = [ch for ch in candidates if (opened := _opened_at(ch)) is not None and since <= opened <= now]
    marks = {ch.id: f"challenge_available:{ch.id}:{int(ch.published_at.timestamp())}" for ch in rows
             if ch.published_at is not None}
    # Publications already announced are skipped with one read (the job runs every few seconds).
    done = set((await session.execute(
        select(NotificationMark.key).where(NotificationMark.key.in_(list(marks.values())))
    )).scalars()) if marks else set()
    for ch in rows:
        assert ch.published_at is not None
        if marks[ch.id] in done:
            continue
        if challenge_progress.open_state(challenges_service.schedule_of(ch), now) == "ended":
            continue
        stamp = int(ch.published_at.timestamp())
        if not await _mark(session, marks[ch.id], now):
            continue
        params: dict[str, Any] = {
            "challenge": ch.key, "challenge_name": ch.title, "title": ch.title,
            "ends_at": local_time(ch.ends_at, settings.tz) if ch.ends_at else None,
            "time": local_time(now, settings.tz), "date": now.astimezone(settings.tz).strftime("%Y-%m-%d"),
        }
        members = await _eligible_members(session, ch)
        for i in range(0, len(members), MEMBER_BATCH):
            items = [
                (uid, "challenge_available", params, f"challenge_available:{ch.id}:{stamp}:{uid}")
                for uid in members[i : i + MEMBER_BATCH]
            ]
            created += await notify_members(session, items, templates, now)
    return created


async def challenge_expiring(session: AsyncSession, settings: Settings, now: datetime | None = None) -> int:
    """Warn members whose active participation ends within LAUREL_CHALLENGE_EXPIRING_HOURS, once each."""
    now = now or utcnow()
    horizon = now + timedelta(hours=settings.challenge_expiring_hours)
    rows = (await session.execute(
        select(ChallengeParticipation, Challenge)
        .join(Challenge, Challenge.id == ChallengeParticipation.challenge_id)
        .where(
            ChallengeParticipation.status == "active",
            ChallengeParticipation.deadline.is_not(None),
            ChallengeParticipation.deadline > now,
            ChallengeParticipation.deadline <= horizon,
            # Already warned (the notification's unique source key): skipped in SQL, so a frequent run stays cheap.
            ~exists().where(
                Notification.source_key == literal("challenge_expiring:") + cast(ChallengeParticipation.id, String)
            ),
        )
        .order_by(ChallengeParticipation.id)
    )).all()
    if not rows:
        return 0
    templates = {t.kind: t for t in await repo.templates(session, enabled_only=True)}
    items = []
    for p, ch in rows:
        assert p.deadline is not None
        params = {
            "challenge": ch.key, "challenge_name": ch.title, "title": ch.title, "instance": p.instance_key,
            "participation_id": p.id, "deadline": local_time(p.deadline, settings.tz),
            "steps_done": p.steps_done, "steps_total": len(ch.steps),
            "time": local_time(now, settings.tz), "date": now.astimezone(settings.tz).strftime("%Y-%m-%d"),
        }
        items.append((p.user_id, "challenge_expiring", params, f"challenge_expiring:{p.id}"))
    return await notify_members(session, items, templates, now)

