"""Member queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.clock import utcnow
from app.kit.dialect import dialect_name, insert_for, insert_ignore, insert_once
from app.models import Friendship, User, UserBadge


async def by_external_id(session: AsyncSession, external_id: str) -> User | None:
    return (await session.execute(select(User).where(User.external_id == external_id))).scalar_one_or_none()


async def by_openid(session: AsyncSession, openid: str) -> User | None:
    return (await session.execute(select(User).where(User.openid == openid))).scalar_one_or_none()


async def by_unionid(session: AsyncSession, unionid: str) -> User | None:
    return (await session.execute(select(User).where(User.unionid == unionid))).scalar_one_or_none()


async def ensure_external(session: AsyncSession, external_id: str) -> User:
    """Get or create a member by integrator id; the insert is ON CONFLICT DO NOTHING, so racing creators agree."""
    return (await create_external(session, external_id))[0]


async def create_external(session: AsyncSession, external_id: str) -> tuple[User, bool]:
    """`ensure_external`, and whether this call created the member (of racing creators, exactly one did)."""
    user = await by_external_id(session, external_id)
    if user is not None:
        return user, False
    inserted = await insert_once(
        session, User, ["external_id"], {"external_id": external_id, "segments": [], "preferences": {}, "points": 0}
    )
    user = await by_external_id(session, external_id)
    assert user is not None
    return user, inserted is not None


async def lock_member(session: AsyncSession, user_id: int) -> int:
    """Serialise this member's engine work until the transaction ends; returns the fresh points balance.

    A row lock (FOR NO KEY UPDATE, so rows referencing the member can still be inserted) doubles as the
    read of the balance: after waiting it sees the latest committed row. SQLite serialises writers anyway.
    """
    stmt = select(User.points).where(User.id == user_id).with_for_update(key_share=True)
    return (await session.execute(stmt)).scalar_one()


async def lock_member_state(session: AsyncSession, user_id: int) -> tuple[int, str | None]:
    """`lock_member`, returning the fresh balance and city: what an engine run reads of the member (points
    leaderboards score in the member's city view, which a sync may have just changed)."""
    stmt = select(User.points, User.city).where(User.id == user_id).with_for_update(key_share=True)
    points, city = (await session.execute(stmt)).one()
    return points, city


async def lock_or_create(session: AsyncSession, external_id: str) -> User:
    """The member by integrator id, created when unknown, locked as by `lock_member` — one statement.

    The no-op update of `points` (not a key column) is what makes PostgreSQL lock an existing row FOR NO KEY
    UPDATE and return it; a new row is returned (and locked) by the insert itself.
    """
    ins = insert_for(session, User.__table__).values(  # type: ignore[arg-type]
        external_id=external_id, segments=[], preferences={}, points=0, created_at=utcnow(), updated_at=utcnow()
    )
    stmt = ins.on_conflict_do_update(index_elements=["external_id"], set_={"points": User.__table__.c.points})
    orm = select(User).from_statement(stmt.returning(*User.__table__.c)).execution_options(populate_existing=True)
    return (await session.execute(orm)).scalar_one()


async def lock_many(session: AsyncSession, external_ids: Sequence[str]) -> tuple[dict[str, User], set[str]]:
    """Members by integrator id, created when unknown and locked as by `lock_member`, in external-id order
    (one lock order for every batch, so concurrent batches cannot deadlock on each other's members); and the
    external ids of those this call created (their `created_at` is this call's instant: an existing row keeps
    its own)."""
    ids = sorted(set(external_ids))
    if not ids:
        return {}, set()
    # One statement, rows in id order: each member is created or locked in turn (an inserted row is its
    # creator's until commit), so every batch takes its locks in the same order. The no-op update of
    # `points` (not a key column) is what locks an existing row FOR NO KEY UPDATE and returns it.
    now = utcnow()
    ins = insert_for(session, User.__table__).values(  # type: ignore[arg-type]
        [{"external_id": e, "segments": [], "preferences": {}, "points": 0, "created_at": now, "updated_at": now}
         for e in ids]
    )
    stmt = ins.on_conflict_do_update(index_elements=["external_id"], set_={"points": User.__table__.c.points})
    orm = select(User).from_statement(stmt.returning(*User.__table__.c)).execution_options(populate_existing=True)
    members = {u.external_id: u for u in (await session.execute(orm)).scalars() if u.external_id is not None}
    return members, {e for e, u in members.items() if u.created_at == now}


# What a member who has only logged in through WeChat can own (no integrator id: no event, award or admin action
# can reach them): consent, their inbox and its WeChat sends, challenges joined, and rows that only mention them.
_ENGINE_HISTORY = ("events", "user_badges", "points_ledger", "user_levels", "rule_counters", "leaderboard_scores",
                   "member_vouchers")
_MOVED = ("notifications", "wechat_deliveries", "outbox", "webhook_deliveries", "audit_log")


async def lock_city(session: AsyncSession, user_id: int) -> str | None:
    """The member's stored city, read under the lock an engine run takes (FOR NO KEY UPDATE); the loaded User
    and its pending changes are left as they are."""
    stmt = select(User.city).where(User.id == user_id).with_for_update(key_share=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_row(session: AsyncSession, user_id: int, *, exclusive: bool = False) -> User | None:
    """The member, re-read and locked: FOR NO KEY UPDATE as an engine run locks it, or with `exclusive` FOR
    UPDATE, which also waits for (and then holds off) rows being inserted that reference it. None if gone."""
    stmt = (select(User).where(User.id == user_id).with_for_update(key_share=not exclusive)
            .execution_options(populate_existing=True))
    return (await session.execute(stmt)).scalar_one_or_none()


_HAS_HISTORY = text("SELECT " + " OR ".join(f"EXISTS (SELECT 1 FROM {t} WHERE user_id = :u)" for t in _ENGINE_HISTORY))


async def has_engine_history(session: AsyncSession, user_id: int) -> bool:
    """One round trip, however many tables."""
    return bool((await session.execute(_HAS_HISTORY, {"u": user_id})).scalar())


async def move_member_rows(session: AsyncSession, source: int, target: int) -> None:
    """Hand a login-only member's rows to the member they turn out to be (see users.service.upsert). Where the
    target has the same row already (a consent request, a challenge instance joined, a template's credits), the
    target's stays, credits are added up, and the source's goes with the source."""
    params = {"s": source, "t": target}
    await session.execute(text(
        "UPDATE subscription_credits SET credits = credits + COALESCE((SELECT c.credits FROM subscription_credits c "
        "WHERE c.user_id = :s AND c.template_id = subscription_credits.template_id), 0) WHERE user_id = :t"
    ), params)
    await session.execute(text(
        "UPDATE subscription_credits SET user_id = :t WHERE user_id = :s AND template_id NOT IN "
        "(SELECT template_id FROM subscription_credits WHERE user_id = :t)"
    ), params)
    await session.execute(text(
        "UPDATE subscription_reports SET user_id = :t WHERE user_id = :s AND request_id NOT IN "
        "(SELECT request_id FROM subscription_reports WHERE user_id = :t)"
    ), params)
    await session.execute(text(
        "UPDATE challenge_participations SET user_id = :t WHERE user_id = :s AND NOT EXISTS (SELECT 1 FROM "
        "challenge_participations p WHERE p.user_id = :t AND p.challenge_id = challenge_participations.challenge_id "
        "AND p.instance_key = challenge_participations.instance_key)"
    ), params)
    for table in _MOVED:
        await session.execute(text(f"UPDATE {table} SET user_id = :t WHERE user_id = :s"), params)


async def delete_new(session: AsyncSession, user_ids: Sequence[int]) -> None:
    """Remove members this transaction has just created and given nothing (see events.service)."""
    await session.execute(delete(User).where(User.id.in_(list(user_ids))))


async def ensure_openid(session: AsyncSession, openid: str, unionid: str | None) -> User:
    await session.execute(
        insert_ignore(session, User.__table__, ["openid"]).values(  # type: ignore[arg-type]
            openid=openid, segments=[], preferences={}, points=0
        )
    )
    user = await by_openid(session, openid)
    assert user is not None
    return user


async def friend_ids(session: AsyncSession, user_id: int) -> list[int]:
    rows = await session.execute(select(Friendship.friend_id).where(Friendship.user_id == user_id))
    return list(rows.scalars())


async def replace_friends(session: AsyncSession, user_id: int, friend_ids: Sequence[int]) -> None:
    await session.execute(delete(Friendship).where(Friendship.user_id == user_id))
    if friend_ids:
        await session.execute(
            insert_ignore(session, Friendship.__table__, ["user_id", "friend_id"]),  # type: ignore[arg-type]
            [{"user_id": user_id, "friend_id": f} for f in sorted(set(friend_ids))],
        )


async def in_lock_order(session: AsyncSession, external_ids: Sequence[str]) -> list[str]:
    """External ids in the order the batch statements lock members (`ORDER BY external_id`, the database's
    collation, which need not be Python's: under an ICU collation "a1" sorts before "B1")."""
    ids = sorted(set(external_ids))
    if dialect_name(session) != "postgresql" or len(ids) < 2:
        return ids  # SQLite compares text by code point, as Python does
    rows = await session.execute(
        text("SELECT x FROM unnest(CAST(:ids AS text[])) AS t(x) ORDER BY x"), {"ids": ids}
    )
    return [str(r[0]) for r in rows.all()]


async def award_count(session: AsyncSession, user_id: int) -> int:
    return int((await session.execute(
        select(func.count()).select_from(UserBadge).where(UserBadge.user_id == user_id)
    )).scalar_one())
