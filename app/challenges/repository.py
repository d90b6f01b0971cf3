"""Challenge and participation queries. State changes of a participation are guarded by its status,
so the expiry job and an engine run can never both move the same participation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.cache import DefinitionCache
from app.kit.dialect import dialect_name, execute_raw, insert_ignore, skip_locked
from app.models import Badge, Challenge, ChallengeParticipation, User, UserBadge


async def by_key(session: AsyncSession, key: str, *, lock: bool = False) -> Challenge | None:
    """`lock`: FOR UPDATE, so status changes (publish, archive) of one challenge take turns."""
    stmt = select(Challenge).where(Challenge.key == key)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def shared(session: AsyncSession, challenge_id: int) -> Challenge | None:
    """The challenge re-read under a shared lock (FOR SHARE): joins do not wait for one another, and an archive or
    an edit (FOR UPDATE) waits for the joins in flight, or they wait for it and then see what it committed."""
    stmt = (select(Challenge).where(Challenge.id == challenge_id).with_for_update(read=True)
            .execution_options(populate_existing=True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def page(
    session: AsyncSession, limit: int, offset: int, status: str | None = None
) -> tuple[list[Challenge], int]:
    stmt = select(Challenge)
    count = select(func.count()).select_from(Challenge)
    if status:
        stmt = stmt.where(Challenge.status == status)
        count = count.where(Challenge.status == status)
    rows = await session.execute(stmt.order_by(Challenge.id).limit(limit).offset(offset))
    return list(rows.scalars()), (await session.execute(count)).scalar_one()


async def any_published(session: AsyncSession) -> bool:
    return bool((await session.execute(select(exists().where(Challenge.status == "published")))).scalar())


# Whether any challenge is published, cached briefly: with none, ingestion skips the participations query.
LIVE: DefinitionCache[bool] = DefinitionCache(any_published)


def forget_live(session: AsyncSession) -> None:
    """A challenge was published: drop the cached answer now and again once the change is committed (so no
    request can cache the old answer in between)."""
    LIVE.invalidate_with(session)


async def published(session: AsyncSession) -> list[Challenge]:
    rows = await session.execute(select(Challenge).where(Challenge.status == "published").order_by(Challenge.id))
    return list(rows.scalars())


async def keys_rewarding_voucher(session: AsyncSession, voucher_key: str) -> list[str]:
    rows = await session.execute(
        select(Challenge.key).where(Challenge.reward_voucher == voucher_key, Challenge.status != "archived")
    )
    return list(rows.scalars())


async def keys_naming_badge(session: AsyncSession, badge_key: str) -> list[str]:
    """Challenges (not archived) that reward the badge or require it to join. Eligibility is JSON, and challenges
    are few, so the filter runs here rather than in dialect-specific JSON SQL."""
    rows = await session.execute(
        select(Challenge.key, Challenge.reward_badge, Challenge.eligibility)
        .where(Challenge.status != "archived")
        .order_by(Challenge.key)
    )
    return [key for key, reward, eligibility in rows
            if reward == badge_key or (eligibility or {}).get("required_badge") == badge_key]


async def keys_requiring_levels(session: AsyncSession) -> dict[str, list[str]]:
    """Level name → the challenges (not archived) that require it to join (eligibility is JSON: see above)."""
    rows = await session.execute(
        select(Challenge.key, Challenge.eligibility).where(Challenge.status != "archived").order_by(Challenge.key)
    )
    required: dict[str, list[str]] = {}
    for key, eligibility in rows:
        level = (eligibility or {}).get("min_level")
        if level:
            required.setdefault(level, []).append(key)
    return required


async def insert_participation(
    session: AsyncSession, *, challenge_id: int, instance_key: str, user_id: int, joined_at: datetime,
    deadline: datetime | None, progress: list[dict[str, Any]],
) -> int | None:
    """The new participation's id, or None when the member already joined this instance."""
    stmt = (
        insert_ignore(session, ChallengeParticipation.__table__,  # type: ignore[arg-type]
                      ["challenge_id", "instance_key", "user_id"])
        .values(challenge_id=challenge_id, instance_key=instance_key, user_id=user_id, status="active",
                joined_at=joined_at, deadline=deadline, steps_done=0, progress=progress)
        .returning(ChallengeParticipation.__table__.c.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def participation(
    session: AsyncSession, challenge_id: int, instance_key: str, user_id: int
) -> ChallengeParticipation | None:
    return (
        await session.execute(
            select(ChallengeParticipation).where(
                ChallengeParticipation.challenge_id == challenge_id,
                ChallengeParticipation.instance_key == instance_key,
                ChallengeParticipation.user_id == user_id,
            ).execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def current_for_user(session: AsyncSession, user_id: int, challenge_ids: Sequence[int]) -> dict[
    tuple[int, str], ChallengeParticipation
]:
    if not challenge_ids:
        return {}
    rows = await session.execute(
        select(ChallengeParticipation).where(
            ChallengeParticipation.user_id == user_id, ChallengeParticipation.challenge_id.in_(challenge_ids)
        )
    )
    return {(p.challenge_id, p.instance_key): p for p in rows.scalars()}


async def active_for_user(session: AsyncSession, user_id: int) -> list[tuple[Any, Challenge]]:
    """The member's active participations in published challenges (what an engine run may advance)."""
    return await active_for_users(session, [user_id])


_CP: Any = ChallengeParticipation.__table__
_ACTIVE = (
    select(_CP.c.id, _CP.c.user_id, _CP.c.challenge_id, _CP.c.instance_key, _CP.c.joined_at, _CP.c.deadline,
           _CP.c.progress)
    .where(_CP.c.user_id.in_(bindparam("user_ids", expanding=True)), _CP.c.status == "active",
           _CP.c.challenge_id.in_(select(Challenge.id).where(Challenge.status == "published").scalar_subquery()))
    .order_by(_CP.c.id)
    .with_for_update(key_share=True)
)


async def active_for_users(session: AsyncSession, user_ids: Sequence[int]) -> list[tuple[Any, Challenge]]:
    """Participation rows (not ORM objects: a batch reads thousands) with their challenges. Locked (FOR NO KEY
    UPDATE) until the transaction ends: the engine writes their progress at its flush, and the deadline job
    (which skips locked rows) must not expire them in between."""
    rows = (await session.execute(_ACTIVE, {"user_ids": list(user_ids)})).all()
    if not rows:
        return []
    ids = sorted({r.challenge_id for r in rows})
    challenges = {c.id: c for c in (await session.execute(select(Challenge).where(Challenge.id.in_(ids)))).scalars()}
    return [(r, challenges[r.challenge_id]) for r in rows if r.challenge_id in challenges]


_SET_PROGRESS = (
    update(_CP).where(_CP.c.id == bindparam("pid")).values(progress=bindparam("progress"), steps_done=bindparam("done"))
)
_SET_PROGRESS_PG = """
UPDATE challenge_participations AS p SET progress = x.progress, steps_done = x.done
FROM unnest($1::bigint[], $2::jsonb[], $3::int[]) AS x(id, progress, done) WHERE p.id = x.id
"""


async def set_progress_many(session: AsyncSession, rows: list[tuple[int, list[dict[str, Any]], int]]) -> None:
    """Write progress of participations this transaction holds locked (see active_for_users)."""
    if dialect_name(session) == "postgresql":
        # One statement over arrays: a batch moves thousands of participations.
        await execute_raw(session, _SET_PROGRESS_PG, [r[0] for r in rows], [json.dumps(r[1]) for r in rows],
                          [r[2] for r in rows])
        return
    await session.execute(_SET_PROGRESS, [{"pid": pid, "progress": p, "done": d} for pid, p, d in rows])


async def mark_completed(session: AsyncSession, pid: int, at: datetime) -> bool:
    res = await session.execute(
        update(ChallengeParticipation)
        .where(ChallengeParticipation.id == pid, ChallengeParticipation.status == "active")
        .values(status="completed", completed_at=at)
    )
    return bool(res.rowcount)  # type: ignore[attr-defined]


async def mark_expired(session: AsyncSession, pid: int, at: datetime) -> bool:
    res = await session.execute(
        update(ChallengeParticipation)
        .where(ChallengeParticipation.id == pid, ChallengeParticipation.status == "active")
        .values(status="expired", expired_at=at)
    )
    return bool(res.rowcount)  # type: ignore[attr-defined]


async def due_for_expiry(
    session: AsyncSession, now: datetime, limit: int, user_id: int | None = None
) -> list[tuple[ChallengeParticipation, Challenge, User]]:
    """Active participations whose deadline has passed, locked (skipping rows another worker holds)."""
    ids_stmt = (
        select(ChallengeParticipation.id)
        .where(ChallengeParticipation.status == "active", ChallengeParticipation.deadline <= now)
        .order_by(ChallengeParticipation.deadline, ChallengeParticipation.id)
        .limit(limit)
        .with_for_update(**skip_locked(session))
    )
    if user_id is not None:
        ids_stmt = ids_stmt.where(ChallengeParticipation.user_id == user_id)
    ids = (await session.execute(ids_stmt)).scalars().all()
    return await _with_challenge_and_user(session, ids)


async def active_of_challenge(
    session: AsyncSession, challenge_id: int
) -> list[tuple[ChallengeParticipation, Challenge, User]]:
    ids = (
        await session.execute(
            select(ChallengeParticipation.id).where(
                ChallengeParticipation.challenge_id == challenge_id, ChallengeParticipation.status == "active"
            )
        )
    ).scalars().all()
    return await _with_challenge_and_user(session, ids)


async def _with_challenge_and_user(
    session: AsyncSession, ids: Sequence[int]
) -> list[tuple[ChallengeParticipation, Challenge, User]]:
    if not ids:
        return []
    rows = await session.execute(
        select(ChallengeParticipation, Challenge, User)
        .join(Challenge, Challenge.id == ChallengeParticipation.challenge_id)
        .join(User, User.id == ChallengeParticipation.user_id)
        .where(ChallengeParticipation.id.in_(ids))
        .order_by(ChallengeParticipation.id)
        .execution_options(populate_existing=True)
    )
    return [(r[0], r[1], r[2]) for r in rows.all()]


async def set_deadline(session: AsyncSession, pid: int, deadline: datetime | None) -> None:
    await session.execute(
        update(ChallengeParticipation)
        .where(ChallengeParticipation.id == pid, ChallengeParticipation.status == "active")
        .values(deadline=deadline)
    )


async def for_user(
    session: AsyncSession, user_id: int, limit: int, offset: int, status: str | None = None
) -> tuple[list[tuple[ChallengeParticipation, Challenge]], int]:
    cond = [ChallengeParticipation.user_id == user_id]
    if status:
        cond.append(ChallengeParticipation.status == status)
    rows = await session.execute(
        select(ChallengeParticipation, Challenge)
        .join(Challenge, Challenge.id == ChallengeParticipation.challenge_id)
        .where(*cond)
        .order_by(ChallengeParticipation.joined_at.desc(), ChallengeParticipation.id.desc())
        .limit(limit).offset(offset)
        .execution_options(populate_existing=True)
    )
    total = (await session.execute(select(func.count()).select_from(ChallengeParticipation).where(*cond))).scalar_one()
    return [(r[0], r[1]) for r in rows.all()], total


async def participation_count(session: AsyncSession, challenge_id: int) -> int:
    return (
        await session.execute(select(func.count()).where(ChallengeParticipation.challenge_id == challenge_id))
    ).scalar_one()


async def stats_rows(session: AsyncSession, challenge_id: int) -> Sequence[Row[Any]]:
    rows = await session.execute(
        select(
            ChallengeParticipation.instance_key, ChallengeParticipation.status, ChallengeParticipation.joined_at,
            ChallengeParticipation.completed_at, ChallengeParticipation.progress,
        ).where(ChallengeParticipation.challenge_id == challenge_id)
    )
    return rows.all()


async def held_badge_keys(session: AsyncSession, user_id: int) -> frozenset[str]:
    rows = await session.execute(
        select(Badge.key).join(UserBadge, UserBadge.badge_id == Badge.id).where(UserBadge.user_id == user_id).distinct()
    )
    return frozenset(rows.scalars())
